"""What a search is defined by: SearchSettings, the size presets, validation before Ray starts, the
dataset facts the orchestration needs, and the run directory's search.json (written, read back).

Bad values raise `SearchConfigError` naming the SearchSettings field; the command maps fields to flags.
optuna, ray and torch are imported inside `write_search_json` on purpose (only their versions are
wanted, and only once the search really starts).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from search_spaces import (
    Architecture,
    Budget,
    FeasibleSampler,
    MatchedPoint,
    SearchSpace,
    SpaceFileError,
    capacity_matched,
    get_space,
    load_space,
    propose_many,
    space_to_dict,
    template,
)
from search_spaces.complexity import smallest_resolution

from ..errors import SettingError
from ..report.schema import SEARCH_JSON
from .storage import RunLocation, StorageError

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
DEFAULT_KEEP_CHECKPOINTS = 3  # nas.export's default --top is 5; its best 3 keep their weights
SCHEDULERS = ("asha", "none")
OBJECTIVES = ("accuracy", "accuracy,flops")

# The CPU preset (2 cores, under 15 minutes, >= 8 trials): measured in docs/performance.md.
CPU_PRESET = {"trials": 9, "max_epochs": 2, "grace_epochs": 1, "reduction_factor": 2, "train_subset": 2000,
              "val_size": 1000}
FULL_PRESET = {"trials": 64, "max_epochs": 12, "grace_epochs": 1, "reduction_factor": 3}


class SearchConfigError(SettingError):
    """A search setting (a SearchSettings field, or `resume`) that cannot be used."""


@dataclass
class SearchSettings:
    """Everything a search run is defined by; saved to RUN_DIR/search.json so --resume reuses it."""

    budget_flops: int
    tolerance: float = 0.1
    space: str = "resnext-imagenet"
    space_file: str | None = None  # a resnext-space/1 JSON file (search_spaces.load_space); replaces `space`
    free: bool = False
    budget_resolution: int | None = None
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    train_subset: int | None = None
    val_size: int | None = None
    train_resolution: int | None = None
    sampler: str = "tpe"
    cardinality: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 32])
    match: str = "params"
    depths: list[int] | None = None
    seeds: int = 1
    objective: str = "accuracy"
    scheduler: str | None = None  # None: "asha", or "none" for the grid sweep (scheduler_of)
    max_epochs: int = 12
    grace_epochs: int = 1
    reduction_factor: int = 3
    trials: int = 64
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
        return storage_call(RunLocation.parse, self.storage_path, self.name)

    @property
    def run_dir(self) -> Path:
        """RUN_DIR as a local Path; runs on an object store have none (use `location`)."""
        local = self.location.local_dir
        if local is None:
            raise SearchConfigError("storage_path", "{path} is not a local directory", path=self.location.display)
        return local


def storage_call(fn: Callable, *args, setting: str | None = None, **kwargs):
    """Call a nas.orchestration.storage function; its StorageError becomes a SearchConfigError naming
    SETTING (default: the one the storage error names), so the command reports it as its flag."""
    try:
        return fn(*args, **kwargs)
    except StorageError as exc:
        why = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
        raise SearchConfigError(setting or exc.setting, "{why}", why=why) from None


# --- datasets: channels and classes decide the architecture's ends ---------------------------------

def dataset_shape(dataset: str, data_dir: str | None) -> tuple[int, int, int]:
    """(channels, classes, native resolution) of a dataset, without loading it (trials' registry)."""
    from trials import DatasetError, describe_dataset  # imports torch: only when a search is set up

    try:
        info = describe_dataset(dataset)
    except DatasetError as exc:
        raise SearchConfigError("dataset", "{error}", error=str(exc)) from None
    return info.channels, info.classes, info.resolution


def train_resolution(settings: SearchSettings) -> int:
    """The resolution trials train at: --train-resolution, else the dataset's own."""
    return settings.train_resolution or dataset_shape(settings.dataset, settings.data_dir)[2]


def gpu_train_resolution(settings: SearchSettings) -> int:
    """Where trials train on a GPU unless --train-resolution says otherwise: the smallest resolution, from
    the dataset's own up, at which every stage of the space's stem keeps maps of at least 2x2 (33 for
    28x28 Fashion-MNIST on the imagenet stem; the dataset's own where it already does). On 1x1 maps a
    3x3 grouped convolution is its centre tap, so the proxy would not test that stage's cardinality.
    Measured (docs/results.md, "Which proxy ranks better per unit of compute"): on 2 CPU cores, 9
    architectures, at the same training compute a 1-epoch 33x33 proxy ranked them like a 3-epoch 28x28
    validation as well as the 2-epoch 28x28 one (Kendall tau +0.67 vs +0.70, paired difference -0.04
    [-0.60, +0.31]), and picked the validation's best. The CPU preset stays at the dataset's own: 33x33
    costs 2.2x the FLOPs per epoch, which its 15-minute budget cannot pay."""
    space = resolve_space(settings)
    return smallest_resolution(template(space.default_depths, 1, 64, stem=space.stem), 2,
                               start=train_resolution(settings))


def resolve_data_paths(settings: SearchSettings) -> SearchSettings:
    """--data-dir and imagefolder:PATH made absolute against the driver's directory: Tune runs every
    trial in its own working directory, where a relative path points at nothing (review finding 1)."""
    changes: dict[str, Any] = {}
    if settings.data_dir is not None:
        changes["data_dir"] = str(Path(settings.data_dir).expanduser().resolve())
    prefix = "imagefolder:"
    if settings.dataset.startswith(prefix) and len(settings.dataset) > len(prefix):
        changes["dataset"] = prefix + str(Path(settings.dataset[len(prefix):]).expanduser().resolve())
    return replace(settings, **changes)


# Training images of the datasets whose size is fixed (an image folder's is known once it is scanned,
# nas.orchestration.data.check_sizes): --val-size is refused before Ray starts.
TRAIN_IMAGES = {"fashion-mnist": 60000, "cifar10": 50000, "cifar100": 50000, "synthetic": 2048}


# --- the space, the budget, the trials' fixed settings ----------------------------------------------

def resolve_space(settings: SearchSettings) -> SearchSpace:
    # Architectures keep the template's nominal ends (3 channels; 1000 classes for ImageNet, 10 for
    # CIFAR), so a budget means what it means in the paper (ResNet-50 = 4.09 GFLOPs at 224); each trial
    # adapts the stem's input channels and the classifier to its dataset (trials.loop).
    if settings.space_file:
        try:
            space = load_space(settings.space_file)
        except SpaceFileError as exc:
            raise SearchConfigError("space_file", "{error}", error=str(exc)) from None
        space = replace(space, shared=False, name=f"{space.name}-free") if settings.free else space
    else:
        space = get_space(settings.space, shared=not settings.free)
    dataset_shape(settings.dataset, settings.data_dir)  # a bad --dataset fails here, before Ray starts
    if settings.budget_resolution:
        space = space.with_resolution(settings.budget_resolution)
    return space


def budget_of(settings: SearchSettings) -> Budget:
    return Budget(settings.budget_flops, settings.tolerance)


def grid_points(settings: SearchSettings, space: SearchSpace, budget: Budget) -> list[MatchedPoint]:
    return capacity_matched(space, budget, settings.cardinality, settings.match, settings.depths)


def outside_lines(points: list[MatchedPoint]) -> list[str]:
    """One line per sweep point outside the budget's feasible window, saying by how much and why."""
    return [f"note: sweep point {p.outside}" for p in points if not p.in_budget]


# A sweep compares settings at equal training; ASHA would stop most of them after `grace_epochs`
# (correctness review, finding 4). So grid runs without a scheduler unless one is asked for.
GRID_ASHA_NOTE = ("note: --scheduler asha with the grid sweep: ASHA stops the settings it ranks low early, so "
                  "they are compared at unequal training (leave --scheduler out to train every point fully)")


def scheduler_of(settings: SearchSettings) -> str:
    """The scheduler a search runs: the one asked for, else ASHA, except for the grid sweep (none)."""
    if settings.scheduler is not None:
        return settings.scheduler
    return "none" if settings.sampler == "grid" else "asha"


def proposals(settings: SearchSettings, samples: int) -> list[Architecture]:
    """What a search would try first, without Ray: the grid's points, or the first `samples` proposals of
    TPE or random sampling (other samplers start with random proposals)."""
    space, budget = resolve_space(settings), budget_of(settings)
    if settings.sampler == "grid":
        return [p.arch for p in grid_points(settings, space, budget)]
    sampler = "tpe" if settings.sampler == "tpe" else "random"
    return propose_many(space, budget, samples, sampler, settings.seed)


def train_config(settings: SearchSettings, space: SearchSpace) -> dict[str, Any]:
    """The `train` part of every trial's config (trials.TrainConfig fields)."""
    config = {
        "dataset": settings.dataset, "data_dir": settings.data_dir, "epochs": settings.max_epochs,
        "train_subset": settings.train_subset, "val_size": settings.val_size,
        "train_resolution": settings.train_resolution,
        "budget_resolution": space.resolution, "seed": settings.seed,
        # Trial seeds (the grid's --seeds) vary initialisation and data order; the validation split and
        # the training subset stay those of the search's seed (correctness review, finding 20).
        "split_seed": settings.seed,
        "batch_size": settings.batch_size, "lr": settings.lr, "compile": settings.compile or None,
    }
    return {k: v for k, v in config.items() if v is not None}


# --- presets and validation ----------------------------------------------------------------------

def apply_preset(settings: SearchSettings, has_gpu: bool, full: bool) -> tuple[SearchSettings, dict[str, Any]]:
    """Fill unset sizes: full search on a GPU (or with `full`), the measured CPU preset otherwise. On a
    GPU, trials also train at gpu_train_resolution unless a training resolution is set.

    Returns the settings and, for the CPU preset, what it scaled down ({} otherwise).
    """
    preset = FULL_PRESET if (has_gpu or full) else CPU_PRESET
    changes = {k: v for k, v in preset.items() if k in asdict(settings) and not getattr(settings, k)}
    scaled: dict[str, Any] = {}
    if preset is CPU_PRESET:
        if settings.train_subset is None:
            changes["train_subset"] = preset["train_subset"]
        if settings.dataset != "fashion-mnist":
            changes.pop("train_subset", None)
        if TRAIN_IMAGES.get(settings.dataset, 0) < 10 * preset["val_size"]:
            # a small or unknown-size dataset (image folders): the trials' min(5000, n // 10) instead
            changes.pop("val_size", None)
        scaled = dict(changes)
    elif has_gpu and settings.train_resolution is None and gpu_train_resolution(settings) != train_resolution(settings):
        changes["train_resolution"] = gpu_train_resolution(settings)
    settings = replace(settings, **changes, scheduler=scheduler_of(settings))
    _check_grace(settings)
    return settings, scaled


def _check_grace(settings: SearchSettings) -> None:
    if settings.grace_epochs and settings.max_epochs and settings.grace_epochs > settings.max_epochs:
        raise SearchConfigError("grace_epochs", "{grace} exceeds {max_epochs} {max}",
                                grace=settings.grace_epochs, max=settings.max_epochs)


def validate(settings: SearchSettings) -> None:
    """Everything that can be refused before Ray starts is refused here (nothing is written yet)."""
    if settings.data_dir is not None and not Path(settings.data_dir).expanduser().is_dir():
        raise SearchConfigError("data_dir", "{path} is not a directory", path=settings.data_dir)
    _check_grace(settings)
    if settings.scheduler is not None and settings.scheduler not in SCHEDULERS:
        raise SearchConfigError("scheduler", "unknown scheduler {value!r}; accepted: {accepted}",
                                value=settings.scheduler, accepted=", ".join(SCHEDULERS))
    n_train = TRAIN_IMAGES.get(settings.dataset)
    if settings.val_size is not None and n_train is not None and settings.val_size >= n_train:
        raise SearchConfigError("val_size", "{val} must be below the {n} training images of {dataset}",
                                val=settings.val_size, n=n_train, dataset=settings.dataset)
    check_tracking(settings)
    space = resolve_space(settings)
    budget = budget_of(settings)
    if settings.sampler == "grid":
        grid_points(settings, space, budget)  # wrong depths, unreachable budget
    else:
        FeasibleSampler(space, budget)  # unreachable budget: the error gives the space's range


def check_tracking(settings: SearchSettings) -> None:
    """--log targets known (and MLflow installed); --optuna-storage a URL or a path (opened later)."""
    from .tracking import TrackingError, parse_log

    try:
        parse_log(settings.log)
    except TrackingError as exc:  # its message starts with "--log...: "; ours names the field instead
        raise SearchConfigError("log", "{error}", error=str(exc).split(": ", 1)[-1]) from None
    if settings.optuna_storage is not None and not settings.optuna_storage.strip():
        raise SearchConfigError("optuna_storage", "empty; give a path (journal file) or an RDB URL")


# --- the run directory and its search.json ----------------------------------------------------------

def check_run_dir(settings: SearchSettings, resume: bool) -> RunLocation:
    """Refuse early, before Ray starts: unwritable storage, clobbering a run, resuming a non-run."""
    loc = settings.location
    if resume:
        if not storage_call(loc.is_file, SEARCH_JSON, setting="resume"):
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
    storage_call(loc.check_writable)  # creates RUN_DIR (a local directory; nothing on an object store)
    return loc


def run_location(run: str | RunLocation) -> RunLocation:
    """The location of an existing run, from what `--resume` was given (a directory or a URI)."""
    if isinstance(run, RunLocation):
        return run
    return storage_call(RunLocation.from_run_uri, str(run), setting="resume")


def load_settings(run: str | Path | RunLocation) -> SearchSettings:
    """The settings a run was started with, at the location it is now (it may have been moved or be
    reached through another mount); refuses directories that a resume could not continue."""
    loc = run_location(run)
    try:
        text = loc.read_text(SEARCH_JSON)
    except FileNotFoundError:
        raise SearchConfigError("resume", "{path} is not a search run directory (no {file})", path=loc.display,
                                file=SEARCH_JSON) from None
    except (OSError, ValueError) as exc:  # a directory named search.json, a decode error, a refused read
        raise SearchConfigError("resume", "{path} is unreadable ({exc})", path=f"{loc.display}/{SEARCH_JSON}",
                                exc=exc) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SearchConfigError("resume", "{path} is unreadable ({exc})", path=f"{loc.display}/{SEARCH_JSON}",
                                exc=exc) from None
    try:
        settings = SearchSettings(**data["settings"])
    except (KeyError, TypeError) as exc:
        raise SearchConfigError("resume", "{path} is not from this version of nas.search ({exc})",
                                path=f"{loc.display}/{SEARCH_JSON}", exc=exc) from None
    if not any(f.startswith("experiment_state-") and f.endswith(".json") for f in loc.list()):
        raise SearchConfigError("resume", "{path} has no Ray Tune experiment state to resume (it was stopped "
                                "before its first trial was recorded); start a new search instead",
                                path=loc.display)
    return replace(settings, storage_path=loc.storage_path, name=loc.name)


def write_search_json(settings: SearchSettings, space: SearchSpace, budget: Budget) -> None:
    import optuna
    import ray
    import torch

    info = {
        "budget_flops": budget.flops, "tolerance": budget.tolerance,
        "space": space.name.removesuffix("-free") if settings.space_file else settings.space,
        "space_definition": space_to_dict(space),  # the space as searched, whichever file it came from
        "free": settings.free, "budget_resolution": space.resolution,
        "train_resolution": train_resolution(settings),
        "dataset": settings.dataset, "objective": settings.objective, "sampler": settings.sampler,
        "match": settings.match if settings.sampler == "grid" else None, "max_epochs": settings.max_epochs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "ray": ray.__version__, "optuna": optuna.__version__},
        "settings": asdict(settings),
    }
    settings.location.write_text(SEARCH_JSON, json.dumps(info, indent=2) + "\n")


__all__ = [
    "CPU_PRESET", "FULL_PRESET", "OBJECTIVES", "SAMPLERS", "SCHEDULERS", "TRAIN_IMAGES", "SearchConfigError",
    "SearchSettings", "GRID_ASHA_NOTE", "apply_preset", "budget_of", "check_run_dir", "check_tracking",
    "dataset_shape", "gpu_train_resolution", "grid_points", "load_settings", "outside_lines", "proposals",
    "resolve_data_paths",
    "resolve_space", "run_location", "scheduler_of", "storage_call", "train_config", "train_resolution",
    "validate", "write_search_json",
]
