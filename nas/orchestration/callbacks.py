"""Tune callbacks of the search's driver: the results table and the progress table.

ResultsTable keeps RUN_DIR/trials.csv (one row per trial) and RUN_DIR/epochs.csv (one row per
trial-epoch) current while the search runs, in the format of nas.rundir.schema. Ray already keeps
every result (ResultGrid, each trial's progress.csv), but scattered over trial directories and keyed
by config paths; users and the report want one flat table with the architecture's own columns (C, d,
depths, FLOPs), which is what this module adds. ProgressTable prints a live, readable table of the
search instead of Ray's per-result log lines.

This module imports ray at the top: it is imported (by nas.orchestration.tuner) only once Ray is up.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from ray.tune import Callback

from search_spaces import Architecture, complexity

from ..rundir.location import RunLocation, ThrottledWriter
from ..rundir.schema import EPOCH_COLUMNS, EPOCHS_CSV, RENAMED_COLUMNS, TRIAL_COLUMNS, TRIALS_CSV, json_value
from .eta import FINISHED, AshaPlan
from .worker_faults import failure_of


def finished_outcome(result: dict, max_epochs: int) -> str:
    """The outcome (schema.OUTCOMES) of a trial Tune ended normally, from its last result."""
    status = result.get("status", "ok")
    if status in ("diverged", "oom"):
        return status
    if int(result.get("epoch", 0) or 0) >= max_epochs:
        return "completed"
    return "stopped"  # cut by ASHA (or by the search's time budget)


def arch_columns(arch: Architecture, budget_resolution: int) -> dict[str, Any]:
    """The architecture's own columns: what the report groups and plots by."""
    cx = complexity(arch, budget_resolution)
    row = {
        "name": arch.describe(),
        "cardinality": arch.stages[0].cardinality,
        "width": arch.stages[0].group_width,
        "base_width": arch.stages[0].out_channels,
        "depths": ",".join(map(str, arch.depths)),
        "depth_total": sum(arch.depths),
        "cardinalities": ",".join(map(str, arch.cardinalities)),
        "group_widths": ",".join(map(str, arch.group_widths)),
        "flops_nominal": cx.flops,  # what the budget counts (schema.COST_COLUMNS); the trial reports *_trained
        "params_nominal": cx.params,
        "arch": json.dumps(arch.to_dict(), separators=(",", ":")),
    }
    row.update({f"depth_{i + 1}": d for i, d in enumerate(arch.depths)})
    return row


def _failure(trial) -> tuple[str, str]:
    """(outcome, reason) of a failed trial from the error Tune saved: `oom` when memory ran out (Ray's
    memory monitor killed its worker, an allocation failed), else `error`; the reason is one line."""
    try:
        return failure_of(Path(trial.error_file).read_text())
    except (OSError, TypeError):
        return "error", "trial raised an error (see error.txt in the trial's directory)"


def _error_line(trial) -> str:
    return _failure(trial)[1]


def _read_csv(location: RunLocation, rel: str) -> pd.DataFrame | None:
    try:
        text = location.read_text(rel)
    except FileNotFoundError:
        return None
    return pd.read_csv(io.StringIO(text), dtype={"trial_id": str})


class ResultsTable(Callback):
    """Tune callback that keeps trials.csv and epochs.csv up to date."""

    def __init__(self, location: RunLocation | str | Path, budget_resolution: int, max_epochs: int) -> None:
        # RUN_DIR anywhere storage.RunLocation reaches (a local or shared path, s3://, gs://): the
        # tables live beside Tune's experiment state. A RunLocation pickles (Tune pickles callbacks).
        self.location = location if isinstance(location, RunLocation) else RunLocation.from_run_uri(location)
        self.budget_resolution = budget_resolution
        self.max_epochs = max_epochs
        self._init_state()

    @property
    def run_dir(self) -> Path | None:
        """RUN_DIR as a local Path (None on an object store)."""
        return self.location.local_dir

    def _init_state(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self._pruned = False
        # Locally every write goes through at once; on an object store each write is a PUT, so the
        # per-epoch rewrites are throttled (storage.ThrottledWriter) and trial starts/ends flushed at once.
        self._writer = ThrottledWriter(self.location)
        self._load_existing()

    # --- resume: rows of finished trials survive a killed driver ---------------------------------
    # Tune pickles the callbacks with the Tuner when the search starts and unpickles them on
    # Tuner.restore: the table then starts from what the files hold now, not from that first moment.
    def __getstate__(self) -> dict:
        return {"location": self.location, "budget_resolution": self.budget_resolution,
                "max_epochs": self.max_epochs}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_state()

    def relocate(self, location: RunLocation) -> None:
        """After Tuner.restore: the run is at `location` now (moved, renamed, or where it started)."""
        self.location = location
        self._init_state()

    def _load_existing(self) -> None:
        trials, epochs = _read_csv(self.location, TRIALS_CSV), _read_csv(self.location, EPOCHS_CSV)
        if trials is not None:
            # a run from before schema.COST_COLUMNS goes on with the names of now
            trials = trials.rename(columns={k: v for k, v in RENAMED_COLUMNS.items() if v not in trials})
            for row in trials.to_dict("records"):
                self.rows[str(row["trial_id"])] = {k: json_value(v) for k, v in row.items()}
        if epochs is not None:
            for row in epochs.to_dict("records"):
                self.epochs[(str(row["trial_id"]), int(row["epoch"]))] = row

    def _catch_up(self, trials) -> bool:
        """After a resume: what Tune recorded but the tables had not been written with yet when the
        driver died (a throttled write on an object store, or a kill between Tune's state save and our
        write): epochs from each trial's result.json (Tune's own log, beside its experiment state),
        and the final outcome of trials Tune already counts as ended (it will not run them again)."""
        changed = False
        for trial in trials:
            rel = self.location.relative(trial.path) if trial.path else None
            if rel is None or not trial.last_result:
                continue
            try:
                lines = self.location.read_text(f"{rel}/result.json").splitlines()
            except (FileNotFoundError, OSError):
                lines = []
            for line in lines:
                try:
                    result = json.loads(line)
                except ValueError:
                    continue  # a line cut by the kill
                epoch = int(result.get("epoch", result.get("training_iteration", 0)) or 0)
                if epoch and (trial.trial_id, epoch) not in self.epochs:
                    self.epochs[(trial.trial_id, epoch)] = {
                        "trial_id": trial.trial_id, "epoch": epoch,
                        **{k: result.get(k) for k in list(EPOCH_COLUMNS)[2:]}}
                    changed = True
            row = self.rows.get(trial.trial_id, {})
            if trial.status == "TERMINATED" and row.get("status") != "TERMINATED":
                self.on_trial_complete(0, trials, trial)
                changed = True
            elif trial.status == "ERROR" and row.get("status") != "ERROR":
                self.on_trial_error(0, trials, trial)
                changed = True
        return changed

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
        if self._catch_up(trials) or ghosts:
            self.write(flush=True)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.rows.setdefault(trial.trial_id, {"trial_id": trial.trial_id})["started"] = time.time()
        self._update(trial, status="RUNNING", outcome="running", flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        self.epochs[(trial.trial_id, epoch)] = {"trial_id": trial.trial_id, "epoch": epoch,
                                                **{k: result.get(k) for k in list(EPOCH_COLUMNS)[2:]}}
        self._update(trial, status="RUNNING", outcome="running", result=result)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        outcome = finished_outcome(result, self.max_epochs)
        reason = result.get("reason") or ("stopped early by the scheduler" if outcome == "stopped" else "")
        earlier = self.rows.get(trial.trial_id, {})
        if earlier.get("failures"):  # keep why it had to be retried
            reason = "; ".join(r for r in (reason, f"retried after: {earlier.get('reason')}") if r)
        self._update(trial, status="TERMINATED", outcome=outcome, result=result, reason=reason, flush=True)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        # A failed attempt that Tune retries from the trial's last checkpoint (--max-failures).
        row = self.rows.setdefault(trial.trial_id, {"trial_id": trial.trial_id})
        row["failures"] = int(row.get("failures") or 0) + 1
        self._update(trial, status="PENDING", outcome="retrying", reason=_error_line(trial), flush=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        row = self.rows.setdefault(trial.trial_id, {"trial_id": trial.trial_id})
        row["failures"] = int(row.get("failures") or 0) + 1
        outcome, reason = _failure(trial)
        self._update(trial, status="ERROR", outcome=outcome, result=trial.last_result or {}, reason=reason,
                     flush=True)

    def on_experiment_end(self, trials, **info) -> None:
        self.write(flush=True)

    # --- table ------------------------------------------------------------------------------------
    def _update(self, trial, *, status: str, outcome: str, result: dict | None = None,
                reason: str | None = None, flush: bool = False) -> None:
        row = self.rows.setdefault(trial.trial_id, {"trial_id": trial.trial_id})
        config = trial.config
        if "name" not in row or row.get("arch") is None:
            arch = Architecture.from_dict(config["arch"])
            row.update(arch_columns(arch, self.budget_resolution))
            train = config.get("train", {})
            row.update({"seed": train.get("seed"), "lr": train.get("lr"), "batch_size": train.get("batch_size")})
            row.update({f"param_{k}": v for k, v in config.items() if isinstance(v, int | float | str)
                        and k not in ("arch", "train", "role", "reference")})
            row.update(role=config.get("role", "sampled"), reference=config.get("reference", ""))
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
                **{k: result.get(k) for k in ("flops_trained", "params_trained")},
            })
            # What the trial resolved (trials.loop reports its recipe), when the config left it unset.
            for column, key in (("lr", "peak_lr"), ("batch_size", "batch_size")):
                if row.get(column) is None and result.get(key) is not None:
                    row[column] = result[key]
            checkpoint = getattr(trial, "checkpoint", None)
            path = getattr(checkpoint, "path", None)
            if path:
                row["checkpoint"] = self.location.relative(path) or str(path)
        self.write(flush=flush)

    def frame(self) -> pd.DataFrame:
        extra = sorted({k for row in self.rows.values() for k in row} - set(TRIAL_COLUMNS))
        return pd.DataFrame(list(self.rows.values()), columns=list(TRIAL_COLUMNS) + extra)

    def write(self, flush: bool = False) -> None:
        """Write both tables (atomically: readers never see half a table); `flush` also sends what a
        throttled object-store write still holds back."""
        epochs = sorted(self.epochs.values(), key=lambda e: (e["trial_id"], e["epoch"]))
        self._writer.write_text(EPOCHS_CSV, pd.DataFrame(epochs, columns=list(EPOCH_COLUMNS)).to_csv(index=False))
        self._writer.write_text(TRIALS_CSV, self.frame().to_csv(index=False))
        if flush:
            self._writer.flush()


# --- the progress table ---------------------------------------------------------------------------

def format_progress(frame: pd.DataFrame, elapsed: float, limit: int = 20) -> str:
    """Trial table sorted by validation accuracy, with a one-line summary on top."""
    counts = frame["outcome"].value_counts().to_dict() if len(frame) else {}
    parts = [f"{n} {k}" for k, n in sorted(counts.items())]
    header = f"[{time.strftime('%H:%M:%S', time.gmtime(elapsed))}] {len(frame)} trials: {', '.join(parts)}"
    done = frame.dropna(subset=["best_val_accuracy"]) if len(frame) else frame
    if len(done):
        best = done.loc[done["best_val_accuracy"].astype(float).idxmax()]
        header += f" | best {100 * float(best['best_val_accuracy']):.1f}% {best['name']}"
    lines = [header, f"  {'trial':<18} {'outcome':<9} {'C':>3} {'d':>4} {'depths':<12} {'GFLOPs':>6} "
                     f"{'epoch':>5} {'val acc':>7} {'img/s':>6}"]
    shown = frame.assign(_key=frame["best_val_accuracy"].astype(float).fillna(-1)).sort_values(
        "_key", ascending=False).head(limit) if len(frame) else frame
    for row in shown.itertuples():
        acc = "" if pd.isna(row.val_accuracy) else f"{100 * float(row.val_accuracy):.1f}%"
        epoch = "" if pd.isna(row.epochs) else str(int(row.epochs))
        speed = "" if pd.isna(row.images_per_second) else f"{float(row.images_per_second):.0f}"
        lines.append(f"  {str(row.trial_id)[-18:]:<18} {row.outcome:<9} {int(row.cardinality):>3} "
                     f"{int(row.width):>4} {row.depths:<12} {float(row.flops_nominal) / 1e9:>6.2f} {epoch:>5} "
                     f"{acc:>7} {speed:>6}")
    if len(frame) > limit:
        lines.append(f"  ... {len(frame) - limit} more in {TRIALS_CSV}")
    return "\n".join(lines)


# The time-left estimate is recomputed when a trial reports or ends, and at least this often (each takes
# ~20 ms for 9 trials, nas.orchestration.eta); in between, the terminal's redraw counts it down.
ETA_REFRESH_S = 10.0


class ProgressTable(Callback):
    """Prints the table with the time elapsed and an estimate of what remains (nas.orchestration.live).

    On a terminal the table is redrawn in place, about every second (elapsed time ticks); piped (a log
    file, the Ray job's logs) it is printed at most every `interval` seconds and whenever a trial ends.
    `total`: the trials the search will run; `time_budget_s`: the search's time budget.
    """

    def __init__(self, table: ResultsTable, interval: float = 20.0, stream: TextIO | None = None,
                 total: int | None = None, time_budget_s: float | None = None, clock=time.monotonic,
                 tty_interval: float = 1.0, plan: AshaPlan | None = None, wall=time.time) -> None:
        from .live import Screen

        # None means sys.stdout at print time: Tune pickles callbacks, and a stream does not pickle.
        self.table, self.interval, self.stream = table, interval, stream
        self.total, self.time_budget_s, self.clock, self.tty_interval = total, time_budget_s, clock, tty_interval
        # plan: the epochs a trial may run and ASHA's rungs (none: every trial runs max_epochs)
        self.plan, self.wall = plan or AshaPlan(table.max_epochs), wall
        self.start = clock()
        self.last: float | None = None
        self.concurrency = 1  # the most trials seen running at once: the slots the estimate fills
        self._eta, self._eta_key, self._eta_at = None, None, 0.0  # the last estimate, counted down between
        self.screen = Screen()

    def render(self, now: float) -> str:
        from .live import remaining_seconds, time_line

        frame = self.table.frame()
        running = int(frame["outcome"].isin(["running", "retrying"]).sum()) if len(frame) else 0
        done = int(frame["outcome"].isin(FINISHED).sum()) if len(frame) else 0
        self.concurrency = max(self.concurrency, running)
        elapsed, wall = now - self.start, self.wall()
        key = (len(self.table.epochs), tuple(frame["outcome"]) if len(frame) else ())
        if key != self._eta_key or wall - self._eta_at >= ETA_REFRESH_S:
            epochs = pd.DataFrame(list(self.table.epochs.values()), columns=list(EPOCH_COLUMNS))
            self._eta = remaining_seconds(frame, epochs, self.total, self.plan, self.concurrency, elapsed,
                                          now=wall, time_budget_s=self.time_budget_s)
            self._eta_key, self._eta_at = key, wall
        remaining = None if self._eta is None else max(0.0, self._eta - (wall - self._eta_at))
        return time_line(done, self.total, elapsed, remaining) + "\n" + format_progress(frame, elapsed)

    def _print(self, force: bool = False, tick: bool = False) -> None:
        from .live import is_terminal

        stream = self.stream or sys.stdout
        tty = is_terminal(stream)
        if tick and not tty:
            return
        now = self.clock()
        interval = self.tty_interval if tty else self.interval
        if not force and self.last is not None and now - self.last < interval:
            return
        self.last = now
        self.screen.draw(self.render(now), stream)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "stream": None}

    def __setstate__(self, state: dict) -> None:
        from .live import Screen

        self.__dict__.update(state)
        self.start, self.last = self.clock(), None  # a restored driver's own clock
        self.screen = Screen()

    def on_step_end(self, iteration, trials, **info) -> None:
        self._print(tick=True)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._print()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._print(force=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._print(force=True)




class TrialLines(Callback):
    """One line per ended trial, "[3/10] 8x21d [2,2,12,6] seed 1: 81.5% after 3 epochs (2 min 10 s)", for
    runs without the search's table (nas.validate). `total`: the trials of the experiment."""

    def __init__(self, total: int, clock=time.monotonic) -> None:
        self.total, self.clock, self.done = total, clock, None
        self.started: dict[str, float] = {}

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.done is None:  # a resumed experiment counts the trials it ended before
            self.done = sum(t.status in ("TERMINATED", "ERROR") for t in trials)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.started[trial.trial_id] = self.clock()

    def _line(self, trial, what: str) -> None:
        self.done = (self.done or 0) + 1
        name = Architecture.from_dict(trial.config["arch"]).describe()
        seconds = self.clock() - self.started.get(trial.trial_id, self.clock())
        print(f"[{self.done}/{self.total}] {name} seed {trial.config['train']['seed']}: {what} "
              f"({int(seconds // 60)} min {int(seconds % 60)} s)", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        acc, epochs = result.get("val_accuracy"), result.get("training_iteration", 0)
        self._line(trial, f"{100 * acc:.1f}% after {epochs} epoch{'s' * (epochs != 1)}"
                   if acc is not None else f"ended ({result.get('status', 'no result')})")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._line(trial, "error (see its folder's error.txt)")


__all__ = ["ProgressTable", "ResultsTable", "TrialLines", "arch_columns", "finished_outcome", "format_progress"]
