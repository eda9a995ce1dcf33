"""What a search is: `SearchSettings`, what each setting accepts (checked here once, for the command
and the Python API alike), and the run directory's search.json (written, read back for --resume).

Bad values raise `SearchConfigError` naming the SearchSettings field; the command maps fields to flags.
What the settings make a search try (the space, the budget, the presets) is nas.orchestration.plan's.
optuna, ray and torch are imported inside `write_search_json` on purpose (only their versions are
wanted, and only once the search really starts).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import SettingError
from ..rundir.location import RunLocation
from ..rundir.schema import SEARCH_JSON

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
SCHEDULERS = ("asha", "none")
OBJECTIVES = ("accuracy", "accuracy,flops")
MATCHES = ("params", "flops")
REFERENCES = ("paper", "none")  # the reference designs a search trains (nas.orchestration.plan.reference_designs)
DEFAULT_KEEP_CHECKPOINTS = 3  # nas.export's default --top is 5; its best 3 keep their weights


class SearchConfigError(SettingError):
    """A search setting (a SearchSettings field, or `resume`) that cannot be used."""


@dataclass
class SearchSettings:
    """Everything a search run is defined by; saved to RUN_DIR/search.json so --resume reuses it.

    `trials`, `max_epochs`, `grace_epochs` and `reduction_factor` left None are filled by the size
    preset when the search starts (nas.orchestration.plan.apply_preset): the full search on a GPU, the
    measured CPU preset without one."""

    budget_flops: int | None = None  # None: a latency budget alone (the FLOPs window is the space's range)
    tolerance: float = 0.1
    space: str = "resnext-imagenet"
    space_file: str | None = None  # a resnext-space/1 JSON file (search_spaces.load_space); replaces `space`
    free: bool = False
    budget_resolution: int | None = None
    # A latency budget in milliseconds (window [(1 - tolerance) * B, B]) predicted by a latency table
    # (search_spaces.latency; `python -m nas.profile` builds it): None, FLOPs only. `latency_table`: the
    # table's file (None: the cache's table for this machine, batch 1, torch's threads).
    latency_budget_ms: float | None = None
    latency_table: str | None = None
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    train_subset: int | None = None
    val_size: int | None = None
    train_resolution: int | None = None
    sampler: str = "tpe"
    # "paper": the space's reference designs (search_spaces.references) train first, within `trials`
    references: str = "paper"
    cardinality: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 32])
    match: str = "params"
    depths: list[int] | None = None
    seeds: int = 1
    objective: str = "accuracy"
    scheduler: str | None = None  # None: "asha", or "none" for the grid sweep (plan.scheduler_of)
    max_epochs: int | None = None
    grace_epochs: int | None = None
    reduction_factor: int | None = None
    trials: int | None = None
    time_budget_s: float | None = None
    max_concurrent: int | None = None
    seed: int = 0
    batch_size: int | None = None
    lr: float | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    max_failures: int = 2
    compile: bool = False  # torch.compile each trial's model (trials.TrainConfig.compile)
    storage_path: str = "nas_runs"
    name: str = ""
    # Tracking (nas.orchestration.tracking): the Optuna study's storage (None: RUN_DIR/optuna.journal),
    # and extra trackers, e.g. ["mlflow"] or ["mlflow=sqlite:///m.db"].
    optuna_storage: str | None = None
    log: list[str] = field(default_factory=list)
    # Checkpoints kept for finished trials: the best K (nas.orchestration.checkpoints); unfinished keep theirs.
    keep_checkpoints: int = DEFAULT_KEEP_CHECKPOINTS

    @cached_property
    def location(self) -> RunLocation:
        """RUN_DIR = STORAGE_PATH/NAME on a local path, a shared mount or an object store (s3://, gs://)."""
        return RunLocation.parse(self.storage_path, self.name)

    @property
    def run_dir(self) -> Path:
        """RUN_DIR as a local Path; runs on an object store have none (use `location`)."""
        local = self.location.local_dir
        if local is None:
            raise SearchConfigError("storage_path", "{path} is not a local directory", path=self.location.display)
        return local


# --- what each setting accepts -----------------------------------------------------------------------

@dataclass(frozen=True)
class Accepts:
    """What a number-valued setting accepts: its type, the rule, and the rule in words (for errors)."""

    kind: type
    words: str
    ok: Callable[[Any], bool]

    def check(self, setting: str, value: Any) -> None:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind is int and number and float(value).is_integer():
            value = int(value)
        if not number or (self.kind is int and not isinstance(value, int)) or not math.isfinite(value) \
                or not self.ok(value):
            raise SearchConfigError(setting, "expected {words}, got {value!r}", words=self.words, value=value)


_POSITIVE_INT = Accepts(int, "a positive integer", lambda v: v > 0)
_NON_NEGATIVE_INT = Accepts(int, "an integer >= 0", lambda v: v >= 0)
_POSITIVE = Accepts(float, "a positive number", lambda v: v > 0)

# The one table of numeric rules: check_fields applies it to SearchSettings (the API's path), and the
# command's flag types apply the same entries to the text they parse (nas.cli.setting_type).
ACCEPTS: dict[str, Accepts] = {
    "budget_flops": _POSITIVE_INT,
    "tolerance": Accepts(float, "a fraction in (0, 1)", lambda v: 0 < v < 1),
    "latency_budget_ms": _POSITIVE,
    "budget_resolution": _POSITIVE_INT, "train_subset": _POSITIVE_INT, "val_size": _POSITIVE_INT,
    "train_resolution": _POSITIVE_INT, "batch_size": _POSITIVE_INT, "lr": _POSITIVE,
    "seeds": _POSITIVE_INT, "max_epochs": _POSITIVE_INT, "grace_epochs": _POSITIVE_INT,
    "reduction_factor": Accepts(int, "an integer >= 2 (ASHA keeps 1/factor of the trials per rung)",
                                lambda v: v >= 2),
    "trials": _POSITIVE_INT, "time_budget_s": Accepts(float, "at least 1 second", lambda v: v >= 1),
    "max_concurrent": _POSITIVE_INT, "seed": _NON_NEGATIVE_INT,
    "gpus_per_trial": Accepts(float, "a number in [0, 1] (a share of one GPU)", lambda v: 0 <= v <= 1),
    "cpus_per_trial": _POSITIVE, "max_failures": _NON_NEGATIVE_INT, "keep_checkpoints": _NON_NEGATIVE_INT,
}
CHOICES: dict[str, tuple[str, ...]] = {"sampler": SAMPLERS, "scheduler": SCHEDULERS, "objective": OBJECTIVES,
                                       "match": MATCHES, "references": REFERENCES}


def check_fields(settings: SearchSettings) -> None:
    """Each setting on its own: numbers in range, names among the choices, lists of positive integers.
    A field left None keeps its default meaning (the preset, the dataset's own, ...)."""
    for name, accepts in ACCEPTS.items():
        value = getattr(settings, name)
        if value is not None:
            accepts.check(name, value)
    for name, options in CHOICES.items():
        value = getattr(settings, name)
        if value is not None and value not in options:
            raise SearchConfigError(name, "unknown value {value!r}; accepted: {accepted}", value=value,
                                    accepted=", ".join(options))
    for name in ("cardinality", "depths"):
        value = getattr(settings, name)
        if value is not None and (not isinstance(value, list | tuple) or not value
                                  or any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in value)):
            raise SearchConfigError(name, "expected a list of positive integers, got {value!r}", value=value)
    if not settings.name or "/" in settings.name or settings.name in (".", ".."):
        raise SearchConfigError("name", "must be a plain directory name, got {value!r}", value=settings.name)


def with_absolute_paths(settings: SearchSettings) -> SearchSettings:
    """--data-dir, imagefolder:PATH and --space-file made absolute against the driver's directory: Tune
    runs every trial in its own working directory, and --resume may run elsewhere; a relative path
    would point at nothing there."""
    from trials import IMAGEFOLDER  # the dataset prefix is the trials' (imports torch: only here)

    changes: dict[str, Any] = {}
    if settings.data_dir is not None:
        changes["data_dir"] = str(Path(settings.data_dir).expanduser().resolve())
    if settings.dataset.startswith(IMAGEFOLDER) and len(settings.dataset) > len(IMAGEFOLDER):
        changes["dataset"] = IMAGEFOLDER + str(Path(settings.dataset[len(IMAGEFOLDER):]).expanduser().resolve())
    if settings.space_file:
        changes["space_file"] = os.path.abspath(os.path.expanduser(settings.space_file))
    return replace(settings, **changes)


def from_keywords(settings: SearchSettings | None = None, /, **keywords: Any) -> SearchSettings:
    """SearchSettings from a settings object and/or field keywords; an unknown keyword is refused
    naming what is accepted."""
    known = {f.name for f in fields(SearchSettings)}
    for key in keywords:
        if key not in known:
            raise SearchConfigError(key, "not a search setting; accepted: {accepted}",
                                    accepted=", ".join(sorted(known)))
    if settings is None:
        if keywords.get("budget_flops") is None and keywords.get("latency_budget_ms") is None:
            raise SearchConfigError("budget_flops", "required (e.g. budget=\"4GFLOPs\"), unless latency_budget_ms "
                                    "is given")
        return SearchSettings(**keywords)
    return replace(settings, **keywords)


# --- the run directory's search.json ---------------------------------------------------------------------

def check_run_dir(settings: SearchSettings, resume: bool) -> RunLocation:
    """Refuse early, before Ray starts: unwritable storage, clobbering a run, resuming a non-run."""
    loc = settings.location
    if resume:
        if not _is_file(loc, SEARCH_JSON):
            raise SearchConfigError("resume", "{path} is not a search run directory (no {file})", path=loc.display,
                                    file=SEARCH_JSON)
        return loc
    try:
        existing = loc.list()
    except OSError:  # STORAGE_PATH under a file, unreadable, ...: check_writable says which
        existing = []
    if existing:
        raise SearchConfigError("name", "run directory {path} already exists; use {resume} to continue it "
                                "or another {name}", path=loc.display)
    loc.check_writable()  # creates RUN_DIR (a local directory; nothing on an object store)
    return loc


def _is_file(loc: RunLocation, rel: str) -> bool:
    try:
        return loc.is_file(rel)
    except OSError as exc:
        raise SearchConfigError("resume", "cannot read {path} ({exc})", path=loc.display, exc=exc) from None


def run_location(run: str | os.PathLike | RunLocation) -> RunLocation:
    """The location of an existing run, from what `--resume` was given (a directory or a URI)."""
    if isinstance(run, RunLocation):
        return run
    try:
        return RunLocation.from_run_uri(str(run))
    except SettingError as exc:
        raise SearchConfigError("resume", exc.message, **exc.values) from None


def load_settings(run: str | os.PathLike | RunLocation) -> SearchSettings:
    """The settings a run was started with, read from its search.json, at the location it is now (it
    may have been moved or renamed since); refuses directories that a resume could not continue."""
    loc = run_location(run)
    where = f"{loc.display}/{SEARCH_JSON}"
    try:
        data = json.loads(loc.read_text(SEARCH_JSON))
    except FileNotFoundError:
        raise SearchConfigError("resume", "{path} is not a search run directory (no {file})", path=loc.display,
                                file=SEARCH_JSON) from None
    except (OSError, ValueError) as exc:  # a directory named search.json, not JSON, a refused read
        raise SearchConfigError("resume", "{path} is unreadable ({exc})", path=where, exc=exc) from None
    try:
        settings = SearchSettings(**data["settings"])
    except (KeyError, TypeError) as exc:
        raise SearchConfigError("resume", "{path} is not from this version of nas.search ({exc})",
                                path=where, exc=exc) from None
    if not any(f.startswith("experiment_state-") and f.endswith(".json") for f in loc.list()):
        raise SearchConfigError("resume", "{path} has no Ray Tune experiment state to resume (it was stopped "
                                "before its first trial was recorded); start a new search instead",
                                path=loc.display)
    settings = replace(settings, storage_path=loc.storage_path, name=loc.name)
    started_at = data.get("run_dir")  # absent in runs started before it was recorded
    if started_at is not None and started_at != loc.display:
        settings = _moved(settings, started_at, loc)
    return settings


def _moved(settings: SearchSettings, started_at: str, loc: RunLocation) -> SearchSettings:
    """The settings of a run moved (or renamed, or copied) from `started_at` to `loc`: a study journal kept
    inside the run follows it (into a bucket: as a local working copy, nas.orchestration.bucket_journal);
    what cannot follow is refused. The driver re-points Tune's restored objects
    (nas.orchestration.relocation)."""
    if any(value.split("=", 1)[0] == "mlflow" for value in settings.log):
        # MLflow's store names the run's artifact folder (RUN_DIR) in every run it holds
        raise SearchConfigError("resume", "{path} was started at {old} and logs to MLflow, whose runs name that "
                                "folder: move it back to resume it", path=loc.display, old=started_at)
    journal = settings.optuna_storage
    if settings.sampler == "grid" or (journal is not None and "://" in journal):
        return settings  # no study, or one in a database that stays where it is
    if journal is None:
        inside = "optuna.journal" if "://" not in started_at else None  # a run on an object store has none
    else:
        path = Path(journal).expanduser().resolve()
        inside = path.relative_to(started_at).as_posix() if path.is_relative_to(started_at) else None
    if inside is None:
        return settings
    if not loc.is_local:  # copied into a bucket: the study works on a local copy of its journal (bucket_journal)
        if not _is_file(loc, inside):
            raise SearchConfigError("resume", "{path} was started at {old} with its Optuna study in {file}, which "
                                    "is not in {path}: copy it there too", path=loc.display, old=started_at,
                                    file=inside)
        from .bucket_journal import working_journal

        return replace(settings, optuna_storage=str(working_journal(loc, inside)))
    return settings if journal is None else replace(settings, optuna_storage=str(loc.local_dir / inside))


def write_search_json(settings: SearchSettings, space, budget, train_resolution: int,
                      val_images: int | None = None) -> None:
    """RUN_DIR/search.json: the settings (what --resume continues), the space as searched, versions."""
    import optuna
    import ray
    import torch

    from search_spaces import space_to_dict

    info = {
        "budget_flops": budget.flops, "tolerance": budget.tolerance,
        "space": space.name.removesuffix("-free") if settings.space_file else settings.space,
        "space_definition": space_to_dict(space),  # the space as searched, whichever file it came from
        "free": not space.shared, "budget_resolution": space.resolution,
        "train_resolution": train_resolution,
        "val_images": val_images,  # what the report's intervals of one trial's accuracy count on
        "dataset": settings.dataset, "objective": settings.objective, "sampler": settings.sampler,
        "match": settings.match if settings.sampler == "grid" else None, "max_epochs": settings.max_epochs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run_dir": settings.location.display,  # where it started (a moved run resumes where it is now)
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "ray": ray.__version__, "optuna": optuna.__version__},
        "settings": asdict(settings),
    }
    settings.location.write_text(SEARCH_JSON, json.dumps(info, indent=2) + "\n")


__all__ = [
    "ACCEPTS", "CHOICES", "DEFAULT_KEEP_CHECKPOINTS", "MATCHES", "OBJECTIVES", "REFERENCES", "SAMPLERS",
    "SCHEDULERS", "Accepts", "SearchConfigError", "SearchSettings", "check_fields", "check_run_dir",
    "from_keywords", "load_settings", "run_location", "with_absolute_paths", "write_search_json",
]
