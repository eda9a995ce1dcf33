"""The run directory's format, defined once: file names, the columns of trials.csv and epochs.csv with
their dtypes, the trial outcomes and their colours, and the one NaN/numpy -> JSON conversion.

The search writes it (nas.orchestration.callbacks), the report and the export read it
(nas.report.run_data); tests/helpers/fake_run.py writes it too.
"""

from __future__ import annotations

import math
from typing import Any

SEARCH_JSON = "search.json"  # the settings a search was started with (nas.orchestration.settings)
TRIALS_CSV = "trials.csv"  # one row per trial
EPOCHS_CSV = "epochs.csv"  # one row per trial per epoch
BEST_JSON = "best.json"  # the best architecture, resnext-arch/1
REPORT_HTML = "report.html"
TRIALS_PARQUET = "trials.parquet"
ARCHITECTURES = "architectures"  # architectures/<trial_id>.json, one per trial
EXPORT = "export"  # nas.export's default output folder
VALIDATION = "validation"  # nas.validate's Tune experiment, plan.json and validation.csv
VALIDATION_CSV = "validation.csv"  # one row per (architecture, seed) retrained at a higher fidelity
VALIDATION_EPOCHS_CSV = "validation_epochs.csv"  # one row per (architecture, seed, epoch) of those
VALIDATION_SUMMARY_CSV = "summary.csv"  # one row per architecture: mean, std, difference to the best reference

# trials.csv, in the order the search writes it. Readers get every column with this dtype; int columns
# are read as floats with NaN for empty cells (pandas' nullable ints do not survive plotly). The search
# adds `depth_<i>` (one per stage) and `param_<name>` (the searcher's parameters) after these.
# `base_width` is the first stage's output width (256 in the paper's template; doubling per stage).
# FLOPs and parameters have one vocabulary in trials.csv, the Tune results, Optuna, MLflow and TensorBoard
# (COST_COLUMNS): `*_nominal` is the architecture the budget counts (the space's channels and classes at
# its resolution, e.g. 3 and 1000 at 224x224), `*_trained` the model a trial trained (the dataset's
# channels and classes at the training resolution).
COST_COLUMNS = ("flops_nominal", "params_nominal", "flops_trained", "params_trained")
# Runs written before that vocabulary: their column -> its name now (readers rename on load).
RENAMED_COLUMNS = {"flops": "flops_nominal", "params": "params_nominal", "flops_train": "flops_trained"}
TRIAL_COLUMNS: dict[str, type] = {
    "trial_id": str, "status": str, "outcome": str, "reason": str, "name": str, "cardinality": int,
    "width": int, "base_width": int, "depths": str, "depth_total": int, "cardinalities": str, "group_widths": str,
    **dict.fromkeys(COST_COLUMNS, int), "val_accuracy": float, "best_val_accuracy": float, "val_loss": float,
    "train_loss": float, "epochs": int, "images_per_second": float, "seconds": float, "seed": int,
    "lr": float, "batch_size": int, "failures": int, "checkpoint": str, "arch": str, "role": str, "reference": str,
    "started": float,  # unix time the trial (last) started; with epochs.csv's timestamps a run can be replayed
}
# A trial's role (trials.csv's `role`): one of the reference designs every search trains first
# (search_spaces.references; `reference` holds the design's name), a sampler's proposal, or a point of the
# grid sweep. Runs from before the column read as "sampled" (nas.report.run_data).
ROLES = ("reference", "sampled", "grid")
EPOCH_COLUMNS: dict[str, type] = {
    "trial_id": str, "epoch": int, "train_loss": float, "val_accuracy": float, "val_loss": float,
    "images_per_second": float, "epoch_seconds": float, "seconds": float,
    "timestamp": float,  # unix time the epoch was reported (Ray's result timestamp; a run can be replayed)
}


def columns_of(table: dict[str, type], *dtypes: type) -> tuple[str, ...]:
    return tuple(c for c, t in table.items() if t in dtypes)


# Outcomes, in the order the report lists them.
OUTCOMES = ("completed", "stopped", "running", "pending", "diverged", "oom", "error")
# Trials whose accuracy is a real measurement (possibly at an earlier epoch than max_epochs).
MEASURED = ("completed", "stopped", "running")
FAILED = ("diverged", "oom", "error")
# Figures and badges (white text on these) share one map; grey for anything else.
OUTCOME_COLORS = {"completed": "#1f77b4", "stopped": "#7f7f7f", "running": "#ff7f0e", "pending": "#aaaaaa",
                  "diverged": "#d62728", "oom": "#8c564b", "error": "#e377c2"}
OTHER_COLOR = "#555555"


# The one ranking behind every "best": the checkpoints a search keeps, best.json, the report and nas.export.
# Completed trials come first, because a trial stopped after one epoch has not shown it can keep up over
# the full schedule; then best validation accuracy (seen at any epoch); then more epochs (measured longer);
# then fewer FLOPs (as good, cheaper); then the trial id, so that ties never depend on row order.
def rank_key(outcome: Any, accuracy: Any, epochs: Any, flops: Any = None, trial_id: Any = "") -> tuple:
    """Sort key of one trial, best first (ascending); missing or NaN numbers rank last."""
    def number(x: Any) -> float | None:
        return None if x is None or isinstance(x, str) or math.isnan(float(x)) else float(x)

    acc, ep, fl = number(accuracy), number(epochs), number(flops)
    return (outcome != "completed", -acc if acc is not None else math.inf, -(ep or 0.0),
            fl if fl is not None else math.inf, str(trial_id))


def rank_trials(frame: Any, accuracy: str = "best_val_accuracy") -> Any:
    """A trials.csv-like DataFrame sorted by rank_key, best first (its `accuracy` column may be another)."""
    columns = [frame[c] if c in frame else [None] * len(frame)
               for c in ("outcome", accuracy, "epochs", "flops_nominal", "trial_id")]
    keys = [rank_key(*row) for row in zip(*columns, strict=True)]
    return frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)]


def json_value(value: Any) -> Any:
    """A cell as plain JSON: NaN -> None, numpy scalars -> Python, integral floats -> int."""
    if hasattr(value, "item") and not isinstance(value, float | int | str):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        value = float(value)  # np.float64 is a float, but not a plain one
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    return value


__all__ = [
    "ARCHITECTURES", "BEST_JSON", "COST_COLUMNS", "EPOCHS_CSV", "EPOCH_COLUMNS", "EXPORT", "FAILED", "MEASURED",
    "OTHER_COLOR", "OUTCOMES", "OUTCOME_COLORS", "RENAMED_COLUMNS", "REPORT_HTML", "ROLES", "SEARCH_JSON",
    "TRIALS_CSV", "TRIALS_PARQUET", "TRIAL_COLUMNS", "VALIDATION", "VALIDATION_CSV", "VALIDATION_EPOCHS_CSV",
    "VALIDATION_SUMMARY_CSV", "columns_of",
    "json_value", "rank_key", "rank_trials",
]
