"""Disk: a search keeps checkpoints only where they can still be needed, and says how big its run is.

A trial's checkpoint serves two purposes: resuming the trial (running, paused or errored trials, which
`--resume` restarts) and exporting its weights (nas.export; the best finished trials). A 9-trial CPU
search that kept one checkpoint per trial left 1.4 GB (about 170 MB per ResNeXt-50-class trial,
optimizer state included); a 64-trial GPU search would leave ~10 GB. `KeepBestCheckpoints` keeps each
trial's latest checkpoint while it can still resume, and of the finished trials only the best K (by
best val_accuracy).

Written by hand because Ray has no cross-trial checkpoint retention, and because Ray's per-trial
retention is not safe against kill -9: `CheckpointConfig(num_to_keep=1)` deletes the previous
checkpoint the moment a new one registers, and the experiment state that `--resume` restores is
written later in the same controller step. A driver killed in between leaves a state naming a deleted
checkpoint, and the resumed trial fails three times on "Could not recover from checkpoint as it does
not exist on storage anymore" (seen in CI: tests/test_tracking_search.py kills the driver as soon as
trials.csv shows a finished trial, which is inside that window). So Tune keeps every checkpoint
(num_to_keep=None) and this callback deletes one only after two later experiment snapshots: Tune
calls `get_state` while writing each snapshot (TuneController.save_to_dir), after the trial states, so
the first snapshot after a checkpoint was superseded (or its trial finished) records its replacement
(or TERMINATED, which Tuner.restore skips: ResumeConfig.finished is SKIP), and the second one finds
the first one's upload finished (Tune waits for, or skips while, an upload in flight; snapshots are at
least 10 s apart). At the end of the experiment (after Tune's last snapshot, written with wait=True)
everything superseded goes. tests/test_checkpoints.py resumes searches after the deletions.
"""

from __future__ import annotations

import logging
import math

import pyarrow.fs as pafs
from ray.tune import Callback

from .settings import DEFAULT_KEEP_CHECKPOINTS as DEFAULT_KEEP

logger = logging.getLogger(__name__)
SNAPSHOTS_BEFORE_DELETING = 2


def _score(trial) -> tuple[float, float]:
    """(best val_accuracy, epochs) as nas.search ranks trials (finish(): best accuracy, then epochs)."""
    analysis = trial.metric_analysis.get("val_accuracy", {}) if trial.metric_analysis else {}
    best = analysis.get("max")
    best = float(best) if isinstance(best, int | float) and not math.isnan(best) else -math.inf
    epochs = (trial.last_result or {}).get("training_iteration") or 0
    return best, float(epochs)


class KeepBestCheckpoints(Callback):
    """Deletes a trial's superseded checkpoints, and the checkpoints of finished (TERMINATED) trials outside
    the best `keep`, once two experiment snapshots have recorded what replaced them. The latest checkpoint
    of a running, paused, pending or errored trial is never touched."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.keep = keep
        self.deleted: set[str] = set()  # trial ids whose last checkpoint this callback let go
        self.latest: dict[str, object] = {}  # trial id -> its newest ray.tune.Checkpoint
        # checkpoints waiting to be deleted, by how many snapshots have been written since they were let go
        self.waiting: list[list] = [[] for _ in range(SNAPSHOTS_BEFORE_DELETING)]

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint, **info) -> None:
        older = self.latest.get(trial.trial_id)
        self.latest[trial.trial_id] = checkpoint
        if older is not None and older.path != checkpoint.path:
            self.waiting[0].append(older)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        from ray.tune.experiment import Trial

        # Tune calls this while the completing trial is still RUNNING; it is set TERMINATED right after
        # (tune_controller.py, stop_trial -> _schedule_graceful_trial_stop), before the next snapshot.
        finished = [t for t in trials if t is trial or t.status == Trial.TERMINATED]
        ranked = sorted(finished, key=_score, reverse=True)
        for old in ranked[self.keep:]:
            if old.trial_id not in self.deleted:
                self.deleted.add(old.trial_id)
                last = self.latest.pop(old.trial_id, None) or old.checkpoint
                if last is not None:
                    self.waiting[0].append(last)

    def get_state(self) -> dict:
        # Called while Tune writes an experiment snapshot: what waited long enough goes, the rest ages.
        for ckpt in self.waiting[-1]:
            _delete(ckpt)
        self.waiting = [[], *self.waiting[:-1]]
        return {"keep": self.keep, "deleted": sorted(self.deleted), "latest": dict(self.latest),
                "waiting": [list(w) for w in self.waiting]}

    def set_state(self, state: dict) -> None:
        self.keep, self.deleted = state["keep"], set(state["deleted"])
        self.latest = dict(state.get("latest", {}))
        self.waiting = [list(w) for w in state.get("waiting", [[] for _ in range(SNAPSHOTS_BEFORE_DELETING)])]

    def on_experiment_end(self, trials: list, **info) -> None:
        # After Tune's last snapshot (written with wait=True): nothing superseded can be needed again.
        for ckpt in (c for w in self.waiting for c in w):
            _delete(ckpt)
        self.waiting = [[] for _ in range(SNAPSHOTS_BEFORE_DELETING)]


def _delete(ckpt) -> None:
    try:
        if ckpt.filesystem.get_file_info(ckpt.path).type == pafs.FileType.Directory:
            ckpt.filesystem.delete_dir(ckpt.path)
    except OSError as exc:  # disk space is no reason to fail a search
        logger.warning("could not delete the checkpoint at %s: %s", ckpt.path, exc)


def run_size(location) -> int:
    """Bytes under RUN_DIR (a nas.rundir.location.RunLocation; any pyarrow filesystem)."""
    infos = location.fs.get_file_info(pafs.FileSelector(location.path(), allow_not_found=True, recursive=True))
    return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)


def format_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


__all__ = ["DEFAULT_KEEP", "KeepBestCheckpoints", "format_size", "run_size"]
