"""ASHA that survives `--resume`: its rungs are rebuilt from RUN_DIR/epochs.csv.

Ray Tune does not save the scheduler's state: TuneController.__getstate__ leaves `_scheduler_alg`
out of the experiment state (ray 2.60, ray/tune/execution/tune_controller.py), and Tuner.restore
takes neither a scheduler nor a TuneConfig. The scheduler that runs after a resume is the one
pickled in tuner.pkl when the search started, i.e. with empty rungs. A resumed search would then
promote its first new trials unconditionally, and a trial resumed at epoch 5 would record its
epoch-5 accuracy in the rungs of epochs 3 and 1 (async_hyperband.py, _Bracket.on_result), raising
the cutoffs new trials must beat.

The supported hook we have is the unpickling itself: Tuner.restore unpickles this object from
tuner.pkl, so `__setstate__` marks it as restored and the first scheduler call after that (Tune calls
on_trial_add for every restored trial before any result) fills the rungs with what epochs.csv
recorded: each trial's accuracy at each rung's milestone epoch, exactly what _Bracket.on_result
would have recorded had the driver never stopped. Reaching into the restored Tuner's private
attributes instead would depend on more of Ray's internals than `_Bracket._rungs` does.
Written by hand because no Ray scheduler restores its own state on resume.

Both schedulers of a search (this one, and ResumableFIFO for `--scheduler none`) also keep every trial
they are given at the run's current location: after a resume from a moved run directory, the trials Tune
creates from its restored search algorithm would otherwise be set up at the old one (relocation.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from ..rundir.location import RunLocation
from ..rundir.schema import EPOCHS_CSV
from .relocation import repoint_trial


class _AtRunLocation:
    """A scheduler that knows the run's location (`relocate` after a resume) and keeps its trials there."""

    location: RunLocation

    def relocate(self, location: RunLocation) -> None:
        self.location = location

    def on_trial_add(self, tune_controller, trial) -> None:
        repoint_trial(trial, self.location)  # before Tune sets the trial up: on_trial_add comes first
        super().on_trial_add(tune_controller, trial)


def _location(run_dir: str | Path | RunLocation) -> RunLocation:
    # RUN_DIR on a local path or an object store (storage.RunLocation pickles)
    return run_dir if isinstance(run_dir, RunLocation) else RunLocation.from_run_uri(str(run_dir))


class ResumableFIFO(_AtRunLocation, FIFOScheduler):
    """Tune's FIFOScheduler (`--scheduler none`), keeping its trials at the run's location."""

    def __init__(self, run_dir: str | Path | RunLocation) -> None:
        super().__init__()
        self.location = _location(run_dir)


class ResumableASHA(_AtRunLocation, ASHAScheduler):
    """ASHAScheduler (one bracket, time in epochs) whose rungs are refilled from epochs.csv on resume."""

    def __init__(self, run_dir: str | Path | RunLocation, **kwargs) -> None:
        super().__init__(**kwargs)
        self.location = _location(run_dir)
        self._prefill_pending = False

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._prefill_pending = True  # unpickled: by Tuner.restore, the rungs are whatever was pickled

    def _prefill_once(self) -> None:
        if self._prefill_pending:
            self._prefill_pending = False
            try:
                text = self.location.read_text(EPOCHS_CSV)
            except FileNotFoundError:
                return
            self.prefill(io.StringIO(text))

    def prefill(self, epochs_csv: str | Path | io.StringIO) -> int:
        """Record every trial's accuracy at each rung milestone it reached; returns how many entries."""
        if isinstance(epochs_csv, str | Path) and not Path(epochs_csv).is_file():
            return 0
        epochs = pd.read_csv(epochs_csv, dtype={"trial_id": str}).dropna(subset=[self._metric])
        # The accuracy a trial reported at epoch e, as Tune's time attribute (training_iteration) counts
        # them: one report per epoch.
        at = {(row.trial_id, int(row.epoch)): float(getattr(row, self._metric)) for row in epochs.itertuples()}
        added = 0
        for bracket in self._brackets:
            for milestone, recorded in bracket._rungs:
                for (trial_id, epoch), value in at.items():
                    if epoch == milestone and trial_id not in recorded:
                        recorded[trial_id] = self._metric_op * value
                        added += 1
        return added

    def on_trial_add(self, tune_controller, trial) -> None:
        self._prefill_once()
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self._prefill_once()
        return super().on_trial_result(tune_controller, trial, result)


__all__ = ["ResumableASHA", "ResumableFIFO"]
