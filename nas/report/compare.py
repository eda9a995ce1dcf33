"""Compare runs in one page (`python -m nas.analyze RUN_A RUN_B ... --out`): each run's settings and a link
to its report, its best and median error with bootstrap intervals and its best architecture, and the
runs' error EDFs overlaid.

As "Designing Network Design Spaces" (Radosavovic et al., 2020) compares design spaces: each run is a
sample of its space (shared vs free C/d, two budgets, two spaces), and the error EDF of its trials says
how often that space gives a good model. Curves are drawn at one fidelity, all runs at the same epoch
(the highest epoch every trial of every run reached) and, separately, each run's completed trials;
each legend entry gives the curve's n.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from plotly.offline import get_plotlyjs

from ..rundir.schema import REPORT_HTML
from .evidence import RunSummary, edf_by_run, summarise_run
from .evidence_figures import edf_overlay
from .figures import Section
from .html import CSS, DRAW, esc, section_html
from .run_data import RunData, RunDataError, load_run

DEFAULT_OUT = Path("comparison.html")
N_BOOT = 2000  # bootstrap resamples per run and fidelity (2000 x a few dozen trials: milliseconds)


def run_labels(runs: list[RunData]) -> list[str]:
    """Each run's folder name; parent/name where two runs share a name."""
    # from the location, local or on an object store (there run_dir is None)
    paths = [PurePosixPath(r.where) for r in runs]
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]


def _budget(search: dict) -> str:
    b = search.get("budget_flops")
    return f"{b / 1e9:g} GFLOPs" if isinstance(b, int | float) and b else "unknown"


def _interval(value: float, lo: float, hi: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.2f}" + ("" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]")


def report_link(run: RunData, out: Path) -> str | None:
    """Where the comparison page links to the run's report.html: relative to the page for a local run
    (the files move together), the URI for one on an object store; None when it has no report."""
    if not run.has(REPORT_HTML):
        return None
    if not run.location.is_local:
        return f"{run.where}/{REPORT_HTML}"
    return Path(os.path.relpath(Path(run.where) / REPORT_HTML, out.resolve().parent)).as_posix()


def runs_table(runs: dict[str, RunData], out: Path) -> str:
    """One row per run: its settings and a link to its report."""
    rows = []
    for label, r in runs.items():
        link = report_link(r, out)
        cells = [f'<a href="{esc(link)}">{esc(label)}</a>' if link else esc(label),
                 esc(r.search.get("space", "unknown")), esc(_budget(r.search)),
                 esc({True: "free (per stage)", False: "shared"}.get(r.search.get("free"), "")),
                 esc(r.search.get("dataset", "unknown")), esc(r.search.get("train_resolution", "")),
                 esc(r.search.get("max_epochs", "")), str(len(r.trials)), esc(r.where)]
        rows.append("<tr>" + "".join(f"<td class='l'>{c}</td>" for c in cells) + "</tr>")
    th = "".join(f"<th class='l'>{h}</th>" for h in ("run (its report)", "space", "budget", "C/d", "dataset",
                                                     "train res.", "max epochs", "trials", "directory"))
    return f"<table id='runs-table'><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def summary_table(summaries: list[RunSummary]) -> str:
    """Per run at one fidelity: n, best and median error with their bootstrap intervals, best architecture."""
    rows = []
    for s in summaries:
        best = s.best_trial
        arch = "—" if best is None else f"{esc(best['name'])} <span class='sub'>(trial {esc(best['trial_id'])})</span>"
        cells = [f"<td class='l'>{esc(s.label)}</td>", f"<td>{s.n}</td>",
                 f"<td data-best='{'' if math.isnan(s.best) else f'{s.best:.4f}'}'>"
                 f"{_interval(s.best, s.best_lo, s.best_hi)}</td>",
                 f"<td>{_interval(s.median, s.median_lo, s.median_hi)}</td>", f"<td class='l'>{arch}</td>"]
        rows.append(f"<tr data-run='{esc(s.label)}'>{''.join(cells)}</tr>")
    th = ("<th class='l'>run</th><th>n</th><th>best error % [95% CI]</th><th>median error % [95% CI]</th>"
          "<th class='l'>best architecture</th>")
    return f"<table class='summary-table'><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


SUMMARY_CAPTION = (
    "Top-1 validation error of each run's trials at this fidelity. Brackets: 95% percentile-bootstrap "
    f"intervals ({N_BOOT} resamples of the run's trials). The median's says how far the typical trial of the "
    "space could move with other draws; the best's says how much the best depended on which trials were drawn "
    "(a resample's best is never below the observed one, so its lower end is the best itself). Few trials give "
    "wide intervals: overlapping ones do not separate the runs.")


def comparison_sections(runs: dict[str, RunData]) -> tuple[list[Section], list[tuple[str, list[RunSummary]]]]:
    """The EDF overlays (common epoch, completed) and, for each of the two fidelities, every run's summary."""
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
    summaries = [(f"every trial {common[0].fidelity.label}" if common else "common epoch",
                  [summarise_run(c, N_BOOT) for c in common]),
                 ("completed trials", [summarise_run(c, N_BOOT) for c in done])]
    return sections, summaries


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
    sections, summaries = comparison_sections(runs)
    title = f"Comparison of {len(runs)} runs"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{CSS}</style>",
             f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head><body><main>",
             f"<h1>{esc(title)}</h1>",
             f"<p class='sub'>generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
             f"<section id='runs'><h2>Runs</h2>{runs_table(runs, out)}</section>",
             "<section id='summary'><h2>Best and median error per run</h2>"
             f"<p class='caption'>{esc(SUMMARY_CAPTION)}</p>"
             + "".join(f"<h3>{esc(what)}</h3>{summary_table(rows)}" for what, rows in summaries)
             + "</section>"]
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
