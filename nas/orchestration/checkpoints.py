"""Disk: a search keeps checkpoints only where they can still be needed, and says how big its run is.

A trial's checkpoint serves two purposes: resuming the trial (running, paused or errored trials, which
`--resume` restarts) and exporting its weights (nas.export; the best finished trials). Ray Tune's
CheckpointConfig(num_to_keep=1) bounds the checkpoints *per trial*, not per search: a 9-trial CPU search
left 1.4 GB (about 170 MB per ResNeXt-50-class trial, optimizer state included), a 64-trial GPU search
would leave ~10 GB. `KeepBestCheckpoints` deletes the checkpoint directories of finished trials outside
the best K (by best val_accuracy); it never touches a trial that is not finished.

Written by hand because Ray has no cross-trial checkpoint retention (CheckpointConfig's num_to_keep and
checkpoint_score_attribute rank one trial's checkpoints among themselves). Deleting a TERMINATED trial's
checkpoint is safe for Tuner.restore in ray 2.60: restore re-creates TERMINATED trials from the
experiment state and skips them (tune_controller.py, _requeue_restored_trials: ResumeConfig.finished
is SKIP unless restart is asked for; nas.search never asks), and their Checkpoint objects are only
handles (path + filesystem), never opened for a skipped trial; tests/test_checkpoints.py resumes a
search whose finished trials' checkpoints were deleted.
"""

from __future__ import annotations

import logging
import math

import pyarrow.fs as pafs
from ray.tune import Callback

from .settings import DEFAULT_KEEP_CHECKPOINTS as DEFAULT_KEEP

logger = logging.getLogger(__name__)


def _score(trial) -> tuple[float, float]:
    """(best val_accuracy, epochs) as nas.search ranks trials (finish(): best accuracy, then epochs)."""
    analysis = trial.metric_analysis.get("val_accuracy", {}) if trial.metric_analysis else {}
    best = analysis.get("max")
    best = float(best) if isinstance(best, int | float) and not math.isnan(best) else -math.inf
    epochs = (trial.last_result or {}).get("training_iteration") or 0
    return best, float(epochs)


class KeepBestCheckpoints(Callback):
    """On every trial completion: delete the checkpoint directories of finished (TERMINATED) trials outside
    the best `keep`. Running, paused, pending and errored trials are never touched."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.keep = keep
        self.deleted: set[str] = set()  # trial ids whose checkpoint this callback removed

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        from ray.tune.experiment import Trial

        # Tune calls this while the completing trial is still RUNNING; it is set TERMINATED right after
        # (tune_controller.py, stop_trial -> _schedule_graceful_trial_stop).
        finished = [t for t in trials if t is trial or t.status == Trial.TERMINATED]
        ranked = sorted(finished, key=_score, reverse=True)
        for old in ranked[self.keep:]:
            if old.trial_id not in self.deleted:
                self._delete(old)

    def _delete(self, trial) -> None:
        ckpt = trial.checkpoint
        if ckpt is None:
            return
        try:
            if ckpt.filesystem.get_file_info(ckpt.path).type == pafs.FileType.Directory:
                ckpt.filesystem.delete_dir(ckpt.path)
            self.deleted.add(trial.trial_id)
        except OSError as exc:  # disk space is no reason to fail a search
            logger.warning("could not delete the checkpoint of trial %s at %s: %s", trial.trial_id, ckpt.path, exc)

    # Tune saves callback state with the experiment state and restores it on --resume (callback.py,
    # Callback.get_state/set_state), so a resumed search does not retry deletions.
    def get_state(self) -> dict:
        return {"keep": self.keep, "deleted": sorted(self.deleted)}

    def set_state(self, state: dict) -> None:
        self.keep, self.deleted = state["keep"], set(state["deleted"])


def run_size(location) -> int:
    """Bytes under RUN_DIR (a nas.orchestration.storage.RunLocation; any pyarrow filesystem)."""
    infos = location.fs.get_file_info(pafs.FileSelector(location.path(), allow_not_found=True, recursive=True))
    return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)


def format_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


__all__ = ["DEFAULT_KEEP", "KeepBestCheckpoints", "format_size", "run_size"]
