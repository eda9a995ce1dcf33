"""The section "Search vs the reference designs": did the search find anything better than the designs a
user would have picked by hand (the paper's, trained in the same search: search_spaces.references)?

At the common epoch (every live trial measured there: ASHA's cuts do not decide it), the best sampled
trial against the best reference, with an interval from the validation images' sampling error; after
`nas.validate --references`, each retrained architecture's difference to the best reference over seeds,
on held-out images. The verdict is said in words, "cannot tell" included.
"""

from __future__ import annotations

import io

import pandas as pd

from ...rundir.schema import VALIDATION, VALIDATION_CSV
from .. import evidence as ev
from .._plotting import Section
from ..run_data import RunData

KEY, TITLE = "references", "Search vs the reference designs"


def validation_images(run: RunData) -> int | None:
    """How many images the search validated on (search.json), None when unknown."""
    settings = run.search.get("settings") or {}
    images = run.search.get("val_images") or settings.get("val_size")
    return int(images) if images else None


def validated(run: RunData) -> pd.DataFrame | None:
    """nas.validate's rows (arch, role, name, seed, accuracy) when it retrained the references."""
    rel = f"{VALIDATION}/{VALIDATION_CSV}"
    if not run.location.is_file(rel):
        return None
    v = pd.read_csv(io.StringIO(run.location.read_text(rel)), dtype={"arch_id": str})
    if v.empty or "reference" not in set(v["role"]):
        return None
    return v.rename(columns={"arch_id": "arch", "validated_accuracy": "accuracy"})


def verdict_line(run: RunData) -> str | None:
    """The search-alone verdict in one line (the search's summary prints it), None without references."""
    if "reference" not in set(run.trials["role"]) or "grid" in set(run.trials["role"]):
        return None
    return f"{TITLE}: " + ev.versus_references(run.trials, run.epochs, validation_images(run)).describe()


def search_vs_references(run: RunData) -> Section:
    roles = set(run.trials["role"])
    if "grid" in roles:
        return Section(KEY, TITLE, skip=True)  # the sweep's points are the paper's designs: "matched" compares them
    if "reference" not in roles:
        off = (run.search.get("settings") or {}).get("references") == "none"
        return Section(KEY, TITLE, note="This search trained no reference designs" + (
            " (--references none)." if off else ": nothing says whether it beat the designs a user would pick "
            "by hand (searches train them first unless --references none)."))
    vs = ev.versus_references(run.trials, run.epochs, validation_images(run))
    rows = []
    for what, row, n in (("best sampled", vs.sampled, vs.n_sampled), ("best reference", vs.reference, vs.n_reference)):
        if row is not None:
            rows.append({"": what, "architecture": row["name"], "trial": row["trial_id"],
                         "reference design": row.get("reference", "") or "", "of": n,
                         f"accuracy % {vs.fidelity.label}": round(100 * float(row["accuracy"]), 2)})
    note = vs.describe()
    table = pd.DataFrame(rows)
    v = validated(run)
    if v is not None:
        per = ev.versus_best_reference(v)
        epochs = ", ".join(str(int(e)) for e in sorted(v["epochs"].dropna().unique()))
        split = ", ".join(sorted(set(v["eval_split"].dropna()))) if "eval_split" in v else "val"
        top = per[per["role"] == "top"]
        if len(top) and top["difference"].notna().any():
            best = top.loc[top["mean"].idxmax()]
            ref = per.loc[per["verdict"] == "the best reference"].iloc[0]
            note += (f" Retrained by nas.validate ({epochs} epoch{'s' * (epochs != '1')}, {int(best['seeds'])} "
                     f"seed{'s' * (int(best['seeds']) != 1)}, evaluated on the "
                     f"{split} images): " + ev.verdict(best["difference"], best["lo"], best["hi"],
                                                        f"the best of the search's top ({best['name']})",
                                                        f"the best reference ({ref['name']})",
                                                        "fewer than 2 seeds each"))
        table = pd.DataFrame({
            "": "validated (" + per["role"] + ")", "architecture": per["name"], "trial": per["arch"],
            "seeds": per["seeds"].astype(int), "accuracy % (mean)": (100 * per["mean"]).round(2),
            "± std": (100 * per["std"]).round(2), "vs best reference (points)": (100 * per["difference"]).round(2),
            "95% interval": [("" if pd.isna(lo) else f"[{100 * lo:+.2f}, {100 * hi:+.2f}]")
                             for lo, hi in zip(per["lo"], per["hi"], strict=True)],
            "verdict": per["verdict"]})
        # counts stay integers beside the other block's empty cells
        table = pd.concat([pd.DataFrame(rows).astype(object), table.astype(object)], ignore_index=True).fillna("")
    return Section(KEY, TITLE, note=note, table=table)
