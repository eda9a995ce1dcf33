"""Disk: a search keeps checkpoints only where they can still be needed, and says how big its run is.

A trial's checkpoint serves two purposes: resuming the trial (running, paused or errored trials, which
`--resume` restarts) and exporting its weights (nas.export; the best finished trials). A 9-trial CPU
search that kept one checkpoint per trial left 1.4 GB (about 170 MB per ResNeXt-50-class trial,
optimizer state included); a 64-trial GPU search would leave ~10 GB. `KeepBestCheckpoints` keeps each
trial's latest checkpoint while it can still resume, and of the finished trials only the best K.
"""

from __future__ import annotations

import functools
import json
import logging
import sys

import pyarrow.fs as pafs
from ray.tune import Callback

from ..rundir.schema import rank_key
from .callbacks import finished_outcome
from .settings import DEFAULT_KEEP_CHECKPOINTS as DEFAULT_KEEP

logger = logging.getLogger(__name__)


class KeepBestCheckpoints(Callback):
    """Deletes superseded checkpoints, and those of finished trials outside the best `keep` (schema.rank_key),
    once an experiment state that no longer names them is on storage. Hand-written because Ray has no
    cross-trial retention, and its `num_to_keep` deletes before that state is even written: a driver killed
    in between leaves a state that `--resume` cannot restore ("checkpoint ... does not exist on storage")."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.keep = keep
        self.deleted: set[str] = set()  # trial ids whose last checkpoint this callback let go
        self.latest: dict[str, object] = {}  # trial id -> its newest ray.tune.Checkpoint
        self.waiting: list[tuple[int, object]] = []  # (the snapshot that records its replacement, checkpoint)
        self.snapshots = 0  # experiment snapshots Tune wrote in this session (get_state calls)
        self.stored = 0  # the newest of them known to be on storage
        self._upload = None  # (Tune's latest experiment upload seen, the snapshot it carries)
        self._manager = None  # Tune's _ExperimentCheckpointManager, as seen by the latest snapshot
        self._final = False  # the latest snapshot was Tune's last one (force=True, wait=True)
        self._restored = False
        self._location = None  # the run's location when it was resumed (relocate): the saved paths may be older

    def __getstate__(self) -> dict:  # Tune pickles its callbacks (tuner.pkl); an upload's thread does not pickle
        return {**self.__dict__, "_upload": None, "_manager": None}

    def relocate(self, location) -> None:
        """After Tuner.restore: the run is at `location` now; the state Tune restores next (set_state) names
        the checkpoints where they were saved, maybe before the run moved."""
        self._location = location

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint, **info) -> None:
        older = self.latest.get(trial.trial_id)
        self.latest[trial.trial_id] = checkpoint
        if older is not None and older.path != checkpoint.path:
            self._let_go(older)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        from ray.tune.experiment import Trial

        # Tune calls this while the completing trial is still RUNNING; it is set TERMINATED right after
        # (tune_controller.py, stop_trial -> _schedule_graceful_trial_stop), before the next snapshot.
        finished = [t for t in trials if t is trial or t.status == Trial.TERMINATED]
        for old in sorted(finished, key=_rank)[self.keep:]:
            if old.trial_id not in self.deleted:
                self.deleted.add(old.trial_id)
                last = self.latest.pop(old.trial_id, None) or old.checkpoint
                if last is not None:
                    self._let_go(last)

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if self._restored:  # the stored trial states may be older than the callback state they came with
            self._restored = False
            live = {t.checkpoint.path: t for t in trials if t.status != "TERMINATED" and t.checkpoint}
            self.waiting = [(n, c) for n, c in self.waiting if c.path not in live]
            for t in live.values():
                self.latest[t.trial_id] = t.checkpoint
                self.deleted.discard(t.trial_id)

    def get_state(self) -> dict:
        # Tune calls this while it writes a snapshot (TuneController.save_to_dir, after the trial states),
        # and launches that snapshot's upload afterwards (skipped while another one is in flight).
        manager, self._final = _snapshot_manager()
        self._manager = manager or self._manager
        self._track_upload(manager)
        self.snapshots += 1
        self._delete_stored()
        return {"keep": self.keep, "deleted": sorted(self.deleted), "latest": dict(self.latest),
                "waiting": [c for _, c in self.waiting]}

    def set_state(self, state: dict) -> None:
        self.keep, self.deleted = state["keep"], set(state["deleted"])
        self.latest = dict(state.get("latest", {}))
        # Snapshot numbers of the killed session mean nothing now: wait for this session's first stored one.
        waiting = state.get("waiting", [])
        self.waiting = [(1, c) for w in waiting for c in (w if isinstance(w, list) else [w])]
        if self._location is not None:  # a moved run: delete the checkpoints where they are now
            from .relocation import repoint_checkpoint

            self.latest = {t: repoint_checkpoint(c, self._location) for t, c in self.latest.items()}
            self.waiting = [(n, repoint_checkpoint(c, self._location)) for n, c in self.waiting]
        self.snapshots, self.stored, self._upload, self._final, self._restored = 0, 0, None, False, True

    def on_experiment_end(self, trials: list, **info) -> None:
        # Tune's last snapshot (force=True, wait=True) logs a failed upload but does not raise: upload its
        # staged state once more and wait. After an exception Tune writes no last snapshot: what was let go
        # since the newest stored one stays on disk (a resume deletes what the stored callback state lists).
        if self._final and self._manager is not None and _upload_now(self._manager):
            self.stored = self.snapshots
        self._delete_stored()

    def _let_go(self, ckpt) -> None:
        self.waiting.append((self.snapshots + 1, ckpt))  # the next snapshot records what replaced it

    def _track_upload(self, manager) -> None:
        """Which snapshot Tune's experiment upload carries, and whether it finished without an error."""
        proc = getattr(getattr(getattr(manager, "_storage", None), "syncer", None), "_sync_process", None)
        if proc is not None and (self._upload is None or proc is not self._upload[0]):
            self._upload = (proc, self.snapshots)  # launched after the previous snapshot was written
        if self._upload is not None and _uploaded(self._upload[0]):
            self.stored = max(self.stored, self._upload[1])

    def _delete_stored(self) -> None:
        ready = [c for n, c in self.waiting if n <= self.stored]
        self.waiting = [(n, c) for n, c in self.waiting if n > self.stored]
        for ckpt in ready:
            _delete(ckpt)


def _rank(trial) -> tuple:
    """schema.rank_key of a finished Tune trial, from what trials.csv records of it."""
    result, train = trial.last_result or {}, (trial.config or {}).get("train", {})
    epochs = result.get("epoch", result.get("training_iteration"))
    best = ((trial.metric_analysis or {}).get("val_accuracy") or {}).get("max")
    outcome = finished_outcome(result, train.get("epochs") or epochs or 0)
    return rank_key(outcome, best, epochs, _flops(trial), trial.trial_id)


def _flops(trial) -> int | None:
    config = trial.config or {}
    if "arch" not in config or "budget_resolution" not in config.get("train", {}):
        return None
    return _arch_flops(json.dumps(config["arch"], sort_keys=True), config["train"]["budget_resolution"])


@functools.lru_cache(maxsize=4096)
def _arch_flops(arch: str, resolution: int) -> int:
    from search_spaces import Architecture, complexity

    return complexity(Architecture.from_dict(json.loads(arch)), resolution).flops


def _snapshot_manager() -> tuple[object | None, bool]:
    """The _ExperimentCheckpointManager whose sync_up_experiment_state is writing this snapshot, and its
    `wait` (Tune's last snapshot); (None, False) when get_state was not called by Tune (Ray has no API)."""
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

    frame = sys._getframe(2)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, _ExperimentCheckpointManager):
            return owner, bool(frame.f_locals.get("wait"))
        frame = frame.f_back
    return None, False


def _uploaded(proc) -> bool:
    """An upload (ray.train._internal.syncer._BackgroundProcess) that finished and did not fail."""
    thread, result = getattr(proc, "_process", None), getattr(proc, "_result", None) or {}
    return thread is not None and not thread.is_alive() and "result" in result and "exception" not in result


def _upload_now(manager) -> bool:
    """Upload Tune's staged experiment state and wait: True once it is on storage."""
    storage = manager._storage
    try:
        storage.syncer.wait()
        storage.syncer.sync_up(storage.experiment_driver_staging_path, storage.experiment_fs_path)
        storage.syncer.wait()
        return True
    except Exception as exc:  # a storage failure leaves checkpoints behind, never breaks a resume
        logger.warning("experiment state not uploaded, superseded checkpoints kept: %s", exc)
        return False


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
