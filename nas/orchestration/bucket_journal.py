"""The Optuna study of a run resumed from an object store that holds its journal file.

A run started on a filesystem keeps its study in RUN_DIR/optuna.journal (or a journal file inside the run
given with --optuna-storage). Copied into a bucket (`aws s3 sync nas_runs/NAME s3://bucket/runs/NAME`)
that file is an object there, and Optuna's JournalFileBackend needs a filesystem: it appends to a local
file and locks it. Resumed from the bucket, the study therefore works on a local copy, in a cache folder
named after the run's URI (`working_journal`; settings._moved points the settings' optuna_storage at it),
which optuna-dashboard can read while the search runs. `JournalWriteBack` puts it back into the bucket:
whenever Tune saves its experiment state (before Tune uploads that state, so the bucket's journal is never
older than the searcher state that names its trials, even after a kill -9), after each trial, and at the end.

A run started on a bucket has no journal (without --optuna-storage its study is in memory, saved with
Tune's searcher state): nothing here applies to it.

Importing this module does not import Ray: load_settings (before Ray's environment is configured) takes
`working_journal` from it; JournalWriteBack, a Tune callback, is built on first use.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..rundir.location import RunLocation
from .relocation import restored_callbacks

CACHE_ENV_VAR = "NAS_CACHE_DIR"  # the cache folder trials.datasets.image_decode uses too


def studies_dir() -> Path:
    """Where the working copies of bucket runs' journals are kept ($NAS_CACHE_DIR/studies)."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "resnext-nas").expanduser() / "studies"


def working_dir(location: RunLocation) -> Path:
    """The local folder of one bucket run's working copies: named after the run, and a hash of its URI
    without the query (an endpoint given another way is still the same run)."""
    digest = hashlib.sha256(location.display.encode()).hexdigest()[:12]
    return studies_dir() / f"{location.name}-{digest}"


def working_journal(location: RunLocation, rel: str) -> Path:
    """The local working copy of the journal RUN_DIR/REL of a run on an object store."""
    return working_dir(location) / rel


@dataclass
class BucketJournal:
    """The journal RUN_DIR/REL of a run on an object store, and its local working copy `local`."""

    location: RunLocation
    rel: str
    local: Path
    _written: tuple[int, int] | None = field(default=None, repr=False)  # (size, mtime_ns) last pulled or pushed

    def pull(self) -> Path:
        """Copy the bucket's journal over the working copy (atomically: a dashboard may be reading it).

        The bucket's copy wins even over a longer local one left by a killed resume: Tune's state on the
        bucket is at most as new as the bucket's journal, and a longer journal would hold reports that the
        resumed trials make again."""
        data = self.location.read_bytes(self.rel)
        self.local.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.local.with_name(f"{self.local.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.local)
        finally:
            tmp.unlink(missing_ok=True)
        self._written = self._stamp()
        return self.local

    def push(self) -> bool:
        """Write the working copy back into the bucket if it changed since (one PUT: atomic). True if it did."""
        stamp = self._stamp()
        if stamp is None or stamp == self._written:
            return False
        self.location.write_bytes(self.rel, self.local.read_bytes())
        self._written = stamp
        return True

    def _stamp(self) -> tuple[int, int] | None:
        try:
            info = self.local.stat()
        except FileNotFoundError:
            return None
        return info.st_size, info.st_mtime_ns


def bucket_journal(settings) -> BucketJournal | None:
    """The bucket journal a resumed run's study works on a copy of (settings._moved chose the copy), else
    None: a local run, a study in a database or in memory, a journal outside the run."""
    location, journal = settings.location, settings.optuna_storage
    if location.is_local or not journal or "://" in journal:
        return None
    local = Path(journal)
    if not local.is_relative_to(working_dir(location)):
        return None
    return BucketJournal(location, local.relative_to(working_dir(location)).as_posix(), local)


def work_on_journal_copy(tuner, settings, log=print) -> BucketJournal | None:
    """After Tuner.restore of a run whose journal a bucket holds: copy it here, have `tuner` write it back
    as the search goes, and say where the live study is. None (and nothing done) for any other run."""
    journal = bucket_journal(settings)
    if journal is None:
        return None
    journal.pull()
    restored_callbacks(tuner).append(__getattr__("JournalWriteBack")(journal))
    log(f"Optuna study: {journal.location.display}/{journal.rel} copied to {journal.local}, written back after "
        f"each trial (optuna-dashboard {journal.local})")
    return journal


@functools.cache
def _write_back_class():
    from ray.tune import Callback

    class JournalWriteBack(Callback):
        """Writes a BucketJournal's working copy back into the bucket as the search goes (appended to the
        callbacks Tuner.restore unpickled; Tune saves none of it: a later resume starts from the bucket)."""

        def __init__(self, journal: BucketJournal) -> None:
            self.journal = journal

        def get_state(self) -> None:
            # Tune calls this while it writes a snapshot of its state (after the searcher's), and uploads
            # that snapshot afterwards: the journal goes first.
            self.journal.push()
            return None  # nothing of ours to restore

        def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
            self.journal.push()  # optuna-dashboard on the bucket's copy sees each finished trial

        def on_experiment_end(self, trials: list, **info) -> None:
            self.journal.push()

    return JournalWriteBack


def __getattr__(name: str):
    # JournalWriteBack subclasses ray.tune.Callback: built on first use, kept at module level by its name.
    if name != "JournalWriteBack":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = _write_back_class()
    cls.__module__, cls.__qualname__ = __name__, name
    return cls


# JournalWriteBack (module __getattr__) is left out: listing it would import Ray on `import *`.
__all__ = ["BucketJournal", "bucket_journal", "studies_dir", "work_on_journal_copy", "working_dir", "working_journal"]
