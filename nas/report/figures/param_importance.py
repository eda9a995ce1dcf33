"""The hyperparameter importance sections: optuna.importance of the searcher's parameters at one
fidelity, with its spread over bootstrap resamples (drawn by evidence_figures.importance_figure)."""

from __future__ import annotations

from .. import evidence as ev
from .._plotting import Section, empty_section, fid_note, fidelities
from ..evidence_figures import importance_figure
from ..importance import searched_columns
from ..run_data import RunData

N_BOOT_IMPORTANCE = 100  # each resample is one optuna evaluation, 15-30 ms (evidence.py): ~3 s a figure


def importance(run: RunData, which: str = "common") -> Section:
    """optuna.importance of the searcher's parameters at one fidelity ("common": every trial at the
    common epoch; "completed"), with its spread over bootstrap resamples of the trials; below
    evidence.MIN_IMPORTANCE_TRIALS trials the figure says so instead of drawing bars."""
    common, done = fidelities(run)
    fid = common if which == "common" else done
    key = "importance" if which == "common" else "importance-completed"
    title = f"Hyperparameter importance — {fid.title}"
    params = [c for c in searched_columns(fid.frame) if fid.frame[c].notna().any()]
    if not params:
        return empty_section(key, title, "trials.csv has no param_ columns: the sampler's parameters are unknown.")
    imp = ev.importance_with_spread(fid.frame, params, n_boot=N_BOOT_IMPORTANCE)
    fig = importance_figure(imp, fid)
    if imp.reason:
        caption = (f"{imp.reason}. A bar chart from so few trials would look confident and mean little; "
                   "run more trials (or read the trends above).")
    else:
        caption = (f"{imp.evaluator} from optuna.importance on the trials {fid.title}{fid_note(fid)}: bars are "
                   f"the mean over {imp.n_boot} bootstrap resamples of the trials, whiskers their 95% interval; "
                   "overlapping intervals mean the data do not order those parameters.")
        if imp.constant:
            caption += f" Constant, so left out: {', '.join(c.removeprefix('param_') for c in imp.constant)}."
    return Section(key, title, fig, caption)
