"""Compare runs: their error EDFs overlaid in one page (`python -m nas.analyze RUN_A RUN_B ... --out`).

As "Designing Network Design Spaces" (Radosavovic et al., 2020) compares design spaces: each run is a
sample of its space (shared vs free C/d, two budgets, two spaces), and the error EDF of its trials says
how often that space gives a good model. Curves are drawn at one fidelity, all runs at the same epoch
(the highest epoch every trial of every run reached) and, separately, each run's completed trials;
each legend entry gives the curve's n.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import pandas as pd
from plotly.offline import get_plotlyjs

from .evidence import edf_by_run
from .evidence_figures import edf_overlay
from .figures import Section
from .html import CSS, DRAW, df_table, esc, section_html
from .run_data import RunData, RunDataError, load_run

DEFAULT_OUT = Path("comparison.html")


def run_labels(runs: list[RunData]) -> list[str]:
    """Each run's folder name; parent/name where two runs share a name."""
    # from the location, local or on an object store (there run_dir is None)
    paths = [PurePosixPath(r.where) for r in runs]
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]


def _budget(search: dict) -> str:
    b = search.get("budget_flops")
    return f"{b / 1e9:g} GFLOPs" if isinstance(b, int | float) and b else "unknown"


def comparison_sections(runs: dict[str, RunData]) -> tuple[list[Section], pd.DataFrame]:
    common = edf_by_run(runs)
    done = edf_by_run(runs, "completed")
    sections = []
    for key, curves, title, what in (
            ("edf-common", common, "Error EDFs, every trial at a common epoch", "Error EDFs by run"),
            ("edf-completed", done, "Error EDFs, completed trials", "Error EDFs by run")):
        fig = edf_overlay(curves, what=what)
        caption = ("One curve per run (n = trials in it): a curve further left and higher means the run's "
                   "space gives good models more often. Runs trained for different numbers of epochs are "
                   "only comparable on the common-epoch panel; curves of few trials say little.")
        sections.append(Section(key, title, fig, caption))
    table = pd.DataFrame([{
        "run": label, "space": r.search.get("space", "unknown"), "budget": _budget(r.search),
        "free C/d": r.search.get("free", ""), "dataset": r.search.get("dataset", "unknown"),
        "train res.": r.search.get("train_resolution", ""), "trials": len(r.trials),
        f"n at {c.fidelity.label}": c.n, "n completed": d.n, "directory": r.where,
    } for (label, r), c, d in zip(runs.items(), common, done, strict=True)])
    return sections, table


def check_out(out: str | Path) -> Path:
    """The comparison page's path, if it can be written there; else RunDataError naming `out`."""
    out = Path(out)
    if out.is_dir():
        raise RunDataError("out", "{path}: is a directory (give the HTML file to write)", path=out)
    if not out.resolve().parent.is_dir():
        raise RunDataError("out", "{path}: its folder does not exist", path=out)
    return out


def write_comparison(run_dirs: list[str | Path], out: str | Path = DEFAULT_OUT) -> tuple[Path, dict[str, RunData]]:
    """Load each run, write the comparison page to `out` (atomically); raises RunDataError naming
    `run_dir` or `out`."""
    if len(run_dirs) < 2:
        raise RunDataError("run_dir", "a comparison needs at least two run directories, got {n}", n=len(run_dirs))
    out = check_out(out)
    loaded = [load_run(d) for d in run_dirs]
    runs = dict(zip(run_labels(loaded), loaded, strict=True))
    sections, table = comparison_sections(runs)
    title = f"Comparison of {len(runs)} runs"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{CSS}</style>",
             f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head><body><main>",
             f"<h1>{esc(title)}</h1>",
             f"<p class='sub'>generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
             f"<section id='runs'><h2>Runs</h2>{df_table(table)}</section>"]
    parts += [section_html(s) for s in sections]
    parts.append(f"</main><script>{DRAW}</script></body></html>")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text("\n".join(parts), encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunDataError("out", "{path}: cannot write ({why})", path=out, why=exc.strerror or exc) from None
    return out, runs


__all__ = ["DEFAULT_OUT", "check_out", "comparison_sections", "run_labels", "write_comparison"]
