"""The validation section: does the search's ranking hold? Proxy (search) against validated accuracy per
architecture, from nas.validate's validation.csv (drawn by evidence_figures.rank_scatter)."""

from __future__ import annotations

import io

import pandas as pd

from ...rundir.schema import VALIDATION, VALIDATION_CSV
from .. import evidence as ev
from .._plotting import Section, empty_section
from ..evidence_figures import rank_scatter
from ..run_data import RunData


def ranking_holds(run: RunData) -> Section:
    """Proxy (search) vs validated accuracy per architecture, from nas.validate's validation.csv."""
    key, title = "validation", "Does the search's ranking hold?"
    rel = f"{VALIDATION}/{VALIDATION_CSV}"  # through the run's location: local, shared or s3://
    if not run.location.is_file(rel):
        return Section(key, title, skip=True)
    v = pd.read_csv(io.StringIO(run.location.read_text(rel)), dtype={"arch_id": str})
    if v.empty:
        return empty_section(key, title, f"{VALIDATION}/{VALIDATION_CSV} has no rows yet.")
    proxy = v.drop_duplicates("arch_id").set_index("arch_id")["proxy_accuracy"]
    ra = ev.rank_agreement(proxy, v.rename(columns={"arch_id": "arch", "validated_accuracy": "accuracy"}))
    epochs = ", ".join(str(int(e)) for e in sorted(v.loc[v["status"] == "ok", "epochs"].unique()))
    res = ", ".join(str(int(r)) for r in sorted(v["train_resolution"].dropna().unique()))
    fig = rank_scatter(ra, proxy_label="search (proxy) accuracy",
                       validated_label=f"validated accuracy at {epochs} epochs, {res}x{res}, mean ± std over seeds")
    names = v.drop_duplicates("arch_id").set_index("arch_id")
    per = ra.per_arch.assign(name=lambda t: t["arch"].map(names["name"]), role=lambda t: t["arch"].map(names["role"]))
    table = pd.DataFrame({
        "proxy rank": per["proxy_rank"].astype(int), "architecture": per["name"], "trial": per["arch"],
        "role": per["role"], "proxy acc. %": (100 * per["proxy"]).round(2),
        "validated acc. % (mean)": (100 * per["mean"]).round(2), "± std": (100 * per["std"]).round(2),
        "seeds": per["n_seeds"], "validated rank": per["validated_rank"].astype(int)})
    if ra.reason:
        verdict = ra.reason + "."
    else:
        verdict = (f"{ra.describe()} (95% bootstrap intervals over architectures). "
                   + ("The search's best stays best." if ra.best_stays_best else
                      f"The search's best is not the validated best: {100 * ra.best_gap:.2f} points behind it."))
        if ra.tau_lo <= 0:
            verdict += " The interval of tau includes 0: these architectures do not show that the proxy ranks."
    at = sorted(int(e) for e in v["proxy_epochs"].dropna().unique())
    proxy = (f"at epoch {at[0]} for all, the highest every one of them reached" if len(at) == 1 else
             f"at epochs {', '.join(map(str, at))}: mixed fidelities (a validation from before they were aligned)")
    caption = (f"Each architecture retrained by nas.validate ({len(v)} trials): the search's accuracy (its "
               f"proxy, {proxy}) against the accuracy after {epochs} epochs, mean and standard deviation over "
               f"seeds. {verdict}")
    return Section(key, title, fig, caption, table=table)
