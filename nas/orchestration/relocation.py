"""Resuming a run where it is now, after its directory was moved, renamed or copied (`--resume NEWDIR`).

Ray Tune re-points what it restores itself: the trials' storage and their checkpoints
(TuneController._restore_trials, ray 2.60). Everything else that names the run's location was pickled
with the location the run started at, and would write there (recreating the old folder) or fail:
- the callbacks, the scheduler and the searcher pickled in tuner.pkl, which Tuner.restore unpickles
  (ResultsTable, LiveReport, ResumableASHA / ResumableFIFO, TrackedOptunaSearch);
- the searcher's and KeepBestCheckpoints' saved states, which Tuner.fit restores later (the journal
  file of the Optuna study, the checkpoints still to delete);
- the search algorithm's saved Experiment, from which every *new* trial takes its storage: Ray leaves
  it at the old location (its trials failed with "Unable to set up cluster storage"); the schedulers
  re-point each trial as it is added (`repoint_trial`).

`relocate_restored` gives each of them the run's current location right after Tuner.restore; those whose
state Tuner.fit restores later keep it and apply it to that state. A run resumed where it started goes
through the same calls, which then change nothing. No ray import here: the schedulers import this module.
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from ..rundir.location import RunLocation


def restored_parts(tuner) -> list[Any]:
    """The searcher, the scheduler and the callbacks of a Tuner from Tuner.restore, as unpickled.

    Tuner has no public accessor for its configuration: TunerInternal's (ray 2.60) are read here only.
    """
    config = tuner._local_tuner._tune_config
    return [config.search_alg, config.scheduler, *restored_callbacks(tuner)]


def restored_callbacks(tuner) -> list[Any]:
    """The callbacks list the restored Tuner's fit will run (TunerInternal's run config, ray 2.60: the same
    list object, so a callback appended to it runs too; Tune does not save it in tuner.pkl again)."""
    run_config = tuner._local_tuner.get_run_config()
    if run_config.callbacks is None:
        run_config.callbacks = []
    return run_config.callbacks


def relocate_restored(tuner, location: RunLocation, journal: str | None) -> None:
    """Point everything Tuner.restore unpickled at `location`, and the searcher's study at `journal` (the
    journal file the settings name now; None for a study in a database or in memory, left as it is)."""
    for part in restored_parts(tuner):
        if hasattr(part, "relocate"):
            part.relocate(location)
        if journal is not None and hasattr(part, "relocate_journal"):
            part.relocate_journal(journal)


def repoint_trial(trial, location: RunLocation) -> bool:
    """Keep a trial's storage at `location`, as TuneController._restore_trials does for restored trials;
    True if it pointed elsewhere (a trial created from the search algorithm's state of a moved run)."""
    storage = getattr(trial, "storage", None)  # None: a trial Tune has not given storage (or a test's stand-in)
    parent = posixpath.dirname(location.root)
    if storage is None or (storage.storage_fs_path == parent and storage.experiment_dir_name == location.name
                           and storage.storage_filesystem.type_name == location.fs.type_name):
        return False
    moved = copy.copy(storage)
    moved.storage_filesystem, moved.storage_fs_path, moved.experiment_dir_name = location.fs, parent, location.name
    trial.set_storage(moved)  # also re-points the checkpoints it tracks
    return True


def repoint_checkpoint(checkpoint, location: RunLocation):
    """A ray.tune.Checkpoint of the run (RUN_DIR/trial_<id>/checkpoint_<n>) at `location`."""
    from ray.tune import Checkpoint

    trial_dir, name = posixpath.split(checkpoint.path.rstrip("/"))
    target = location.path(f"{posixpath.basename(trial_dir)}/{name}")
    if target == checkpoint.path and checkpoint.filesystem.type_name == location.fs.type_name:
        return checkpoint
    return Checkpoint(path=target, filesystem=location.fs)


__all__ = ["relocate_restored", "repoint_checkpoint", "repoint_trial", "restored_callbacks", "restored_parts"]
