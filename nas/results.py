"""The run's results table: RUN_DIR/trials.csv (one row per trial) and RUN_DIR/epochs.csv (one row per
trial-epoch), kept current while the search runs by a Ray Tune callback in the driver.

Ray already keeps every result (ResultGrid, each trial's progress.csv), but scattered over trial
directories and keyed by config paths; users and the report want one flat table with the
architecture's own columns (C, d, depths, FLOPs), which is what this module adds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
from ray.tune import Callback

from search_spaces import Architecture, complexity

TRIALS_CSV = "trials.csv"
EPOCHS_CSV = "epochs.csv"
EPOCH_FIELDS = ["trial_id", "epoch", "train_loss", "val_accuracy", "val_loss", "images_per_second",
                "epoch_seconds", "seconds"]
TRIAL_FIELDS = [
    "trial_id", "status", "outcome", "reason", "name", "cardinality", "width", "depths", "depth_total",
    "cardinalities", "group_widths", "flops", "flops_train", "params", "val_accuracy",
    "best_val_accuracy", "val_loss", "train_loss", "epochs", "images_per_second", "seconds", "seed", "lr",
    "batch_size", "failures", "checkpoint", "arch",
]


def arch_columns(arch: Architecture, budget_resolution: int) -> dict[str, Any]:
    """The architecture's own columns: what the report groups and plots by."""
    cx = complexity(arch, budget_resolution)
    row = {
        "name": arch.describe(),
        "cardinality": arch.stages[0].cardinality,
        "width": arch.stages[0].group_width,
        "depths": ",".join(map(str, arch.depths)),
        "depth_total": sum(arch.depths),
        "cardinalities": ",".join(map(str, arch.cardinalities)),
        "group_widths": ",".join(map(str, arch.group_widths)),
        "flops": cx.flops,
        "params": cx.params,
        "arch": json.dumps(arch.to_dict(), separators=(",", ":")),
    }
    row.update({f"depth_{i + 1}": d for i, d in enumerate(arch.depths)})
    return row


def _error_line(trial) -> str:
    """The last line of the trial's traceback (the exception), as Tune saved it."""
    try:
        lines = [ln for ln in Path(trial.error_file).read_text().strip().splitlines() if ln.strip()]
        return lines[-1][:300]
    except (OSError, TypeError, IndexError):
        return "trial raised an error (see error.txt in the trial's directory)"


def _finite(value: Any) -> Any:
    return value if not (isinstance(value, float) and math.isnan(value)) else None


def _atomic_write_csv(frame: pd.DataFrame, path: Path) -> None:
    # Readers (the report, a user's pandas) never see a half-written table.
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


class ResultsTable(Callback):
    """Tune callback that keeps trials.csv and epochs.csv up to date."""

    def __init__(self, run_dir: str | Path, budget_resolution: int, max_epochs: int) -> None:
        self.run_dir = Path(run_dir)
        self.budget_resolution = budget_resolution
        self.max_epochs = max_epochs
        self.rows: dict[str, dict[str, Any]] = {}
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self._pruned = False
        self._load_existing()

    # --- resume: rows of finished trials survive a killed driver ---------------------------------
    # Tune pickles the callbacks with the Tuner when the search starts and unpickles them on
    # Tuner.restore: the table then starts from what the files hold now, not from that first moment.
    def __getstate__(self) -> dict:
        return {"run_dir": self.run_dir, "budget_resolution": self.budget_resolution,
                "max_epochs": self.max_epochs}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.rows, self.epochs, self._pruned = {}, {}, False
        self._load_existing()

    def _load_existing(self) -> None:
        trials, epochs = self.run_dir / TRIALS_CSV, self.run_dir / EPOCHS_CSV
        if trials.exists():
            for row in pd.read_csv(trials, dtype={"trial_id": str}).to_dict("records"):
                self.rows[str(row["trial_id"])] = {k: _finite(v) for k, v in row.items()}
        if epochs.exists():
            for row in pd.read_csv(epochs, dtype={"trial_id": str}).to_dict("records"):
                self.epochs[(str(row["trial_id"]), int(row["epoch"]))] = row

    # --- Tune callback hooks ----------------------------------------------------------------------
    def on_step_begin(self, iteration, trials, **info) -> None:
        if self._pruned:
            return
        # After a resume, drop rows of trials that Tune never recorded (the driver was killed after
        # starting them but before saving its state): Tune will not run them again, it asks anew.
        self._pruned = True
        known = {t.trial_id for t in trials}
        ghosts = [tid for tid in self.rows if tid not in known]
        for tid in ghosts:
            del self.rows[tid]
        self.epochs = {k: v for k, v in self.epochs.items() if k[0] not in ghosts}
        if ghosts:
            self.write()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._update(trial, status="RUNNING", outcome="running")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        self.epochs[(trial.trial_id, epoch)] = {"trial_id": trial.trial_id, "epoch": epoch,
                                                **{k: result.get(k) for k in EPOCH_FIELDS[2:]}}
        self._update(trial, status="RUNNING", outcome="running", result=result)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        status = result.get("status", "ok")
        if status in ("diverged", "oom"):
            outcome = status
        elif int(result.get("epoch", 0) or 0) >= self.max_epochs:
            outcome = "completed"
        else:
            outcome = "stopped"  # cut by ASHA (or by the search's time budget)
        reason = result.get("reason") or ("stopped early by the scheduler" if outcome == "stopped" else "")
        earlier = self.rows.get(trial.trial_id, {})
        if earlier.get("failures"):  # keep why it had to be retried
            reason = "; ".join(r for r in (reason, f"retried after: {earlier.get('reason')}") if r)
        self._update(trial, status="TERMINATED", outcome=outcome, result=result, reason=reason)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        # A failed attempt that Tune retries from the trial's last checkpoint (--max-failures).
        row = self.rows.setdefault(trial.trial_id, {"trial_id": trial.trial_id})
        row["failures"] = int(row.get("failures") or 0) + 1
        self._update(trial, status="PENDING", outcome="retrying", reason=_error_line(trial))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        row = self.rows.setdefault(trial.trial_id, {"trial_id": trial.trial_id})
        row["failures"] = int(row.get("failures") or 0) + 1
        self._update(trial, status="ERROR", outcome="error", result=trial.last_result or {},
                     reason=_error_line(trial))

    def on_experiment_end(self, trials, **info) -> None:
        self.write()

    # --- table ------------------------------------------------------------------------------------
    def _update(self, trial, *, status: str, outcome: str, result: dict | None = None,
                reason: str | None = None) -> None:
        row = self.rows.setdefault(trial.trial_id, {"trial_id": trial.trial_id})
        config = trial.config
        if "name" not in row or row.get("arch") is None:
            arch = Architecture.from_dict(config["arch"])
            row.update(arch_columns(arch, self.budget_resolution))
            train = config.get("train", {})
            row.update({"seed": train.get("seed"), "lr": train.get("lr"), "batch_size": train.get("batch_size")})
            row.update({f"param_{k}": v for k, v in config.items() if isinstance(v, int | float | str)
                        and k not in ("arch", "train")})
        row.update(status=status, outcome=outcome)
        if reason is not None:
            row["reason"] = reason
        if result:
            accuracies = [e["val_accuracy"] for (tid, _), e in self.epochs.items()
                          if tid == trial.trial_id and e.get("val_accuracy") is not None]
            speeds = [e["images_per_second"] for (tid, _), e in self.epochs.items()
                      if tid == trial.trial_id and e.get("images_per_second")]
            row.update({
                "val_accuracy": result.get("val_accuracy"),
                "best_val_accuracy": max(accuracies) if accuracies else result.get("val_accuracy"),
                "val_loss": result.get("val_loss"),
                "train_loss": result.get("train_loss"),
                "epochs": result.get("epoch", result.get("training_iteration")),
                "images_per_second": sum(speeds) / len(speeds) if speeds else None,
                "seconds": result.get("seconds"),
                "flops_train": result.get("flops_train"),
            })
            checkpoint = getattr(trial, "checkpoint", None)
            path = getattr(checkpoint, "path", None)
            if path:
                row["checkpoint"] = os.path.relpath(path, self.run_dir) if str(path).startswith(
                    str(self.run_dir)) else str(path)
        self.write()

    def frame(self) -> pd.DataFrame:
        extra = sorted({k for row in self.rows.values() for k in row} - set(TRIAL_FIELDS))
        return pd.DataFrame(list(self.rows.values()), columns=TRIAL_FIELDS + extra)

    def write(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write_csv(self.frame(), self.run_dir / TRIALS_CSV)
        epochs = sorted(self.epochs.values(), key=lambda e: (e["trial_id"], e["epoch"]))
        _atomic_write_csv(pd.DataFrame(epochs, columns=EPOCH_FIELDS), self.run_dir / EPOCHS_CSV)
