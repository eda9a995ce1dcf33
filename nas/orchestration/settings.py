"""What a search is defined by: SearchSettings, the size presets, validation before Ray starts, the
dataset facts the orchestration needs, and the run directory's search.json (written, read back).

Bad values raise `SearchConfigError` naming the SearchSettings field; the command maps fields to flags.
optuna, ray and torch are imported inside `write_search_json` on purpose (only their versions are
wanted, and only once the search really starts).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from search_spaces import (
    Architecture,
    Budget,
    FeasibleSampler,
    MatchedPoint,
    SearchSpace,
    capacity_matched,
    get_space,
    propose_many,
)

from ..errors import SettingError
from ..report.schema import SEARCH_JSON

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
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
    scheduler: str = "asha"
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
    storage_path: str = "nas_runs"
    name: str = ""

    @property
    def run_dir(self) -> Path:
        return Path(self.storage_path).expanduser().resolve() / self.name


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
    space = get_space(settings.space, shared=not settings.free)
    dataset_shape(settings.dataset, settings.data_dir)  # a bad --dataset fails here, before Ray starts
    if settings.budget_resolution:
        space = space.with_resolution(settings.budget_resolution)
    return space


def budget_of(settings: SearchSettings) -> Budget:
    return Budget(settings.budget_flops, settings.tolerance)


def grid_points(settings: SearchSettings, space: SearchSpace, budget: Budget) -> list[MatchedPoint]:
    return capacity_matched(space, budget, settings.cardinality, settings.match, settings.depths)


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
        "batch_size": settings.batch_size, "lr": settings.lr,
    }
    return {k: v for k, v in config.items() if v is not None}


# --- presets and validation ----------------------------------------------------------------------

def apply_preset(settings: SearchSettings, has_gpu: bool, full: bool) -> tuple[SearchSettings, dict[str, Any]]:
    """Fill unset sizes: full search on a GPU (or with `full`), the measured CPU preset otherwise.

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
    settings = replace(settings, **changes)
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
    n_train = TRAIN_IMAGES.get(settings.dataset)
    if settings.val_size is not None and n_train is not None and settings.val_size >= n_train:
        raise SearchConfigError("val_size", "{val} must be below the {n} training images of {dataset}",
                                val=settings.val_size, n=n_train, dataset=settings.dataset)
    space = resolve_space(settings)
    budget = budget_of(settings)
    if settings.sampler == "grid":
        grid_points(settings, space, budget)  # wrong depths, unreachable budget
    else:
        FeasibleSampler(space, budget)  # unreachable budget: the error gives the space's range


# --- the run directory and its search.json ----------------------------------------------------------

def check_run_dir(settings: SearchSettings, resume: bool) -> Path:
    """Refuse early, before Ray starts: unwritable storage, clobbering a run, resuming a non-run."""
    run_dir = settings.run_dir
    storage = run_dir.parent
    if resume:
        if not (run_dir / SEARCH_JSON).is_file():
            raise SearchConfigError("resume", "{path} is not a search run directory (no {file})", path=run_dir,
                                    file=SEARCH_JSON)
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        raise SearchConfigError("name", "run directory {path} already exists; use {resume} to continue it "
                                "or another {name}", path=run_dir)
    probe = storage
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK) or not probe.is_dir():
        raise SearchConfigError("storage_path", "cannot write to {path} ({probe} is not a writable directory)",
                                path=storage, probe=probe)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ".write-test").write_text("ok")
        (run_dir / ".write-test").unlink()
    except OSError as exc:
        raise SearchConfigError("storage_path", "cannot write to {path} ({why})", path=storage,
                                why=exc.strerror or exc) from None
    return run_dir


def load_settings(run_dir: Path) -> SearchSettings:
    """The settings a run was started with; refuses directories that a resume could not continue."""
    path = run_dir / SEARCH_JSON
    if not path.is_file():
        raise SearchConfigError("resume", "{path} is not a search run directory (no {file})", path=run_dir,
                                file=SEARCH_JSON)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SearchConfigError("resume", "{path} is unreadable ({exc})", path=path, exc=exc) from None
    try:
        settings = SearchSettings(**data["settings"])
    except (KeyError, TypeError) as exc:
        raise SearchConfigError("resume", "{path} is not from this version of nas.search ({exc})", path=path,
                                exc=exc) from None
    if not any(run_dir.glob("experiment_state-*.json")):
        raise SearchConfigError("resume", "{path} has no Ray Tune experiment state to resume (it was stopped "
                                "before its first trial was recorded); start a new search instead", path=run_dir)
    return settings


def write_search_json(settings: SearchSettings, space: SearchSpace, budget: Budget) -> None:
    import optuna
    import ray
    import torch

    info = {
        "budget_flops": budget.flops, "tolerance": budget.tolerance, "space": settings.space,
        "free": settings.free, "budget_resolution": space.resolution,
        "train_resolution": train_resolution(settings),
        "dataset": settings.dataset, "objective": settings.objective, "sampler": settings.sampler,
        "match": settings.match if settings.sampler == "grid" else None, "max_epochs": settings.max_epochs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "ray": ray.__version__, "optuna": optuna.__version__},
        "settings": asdict(settings),
    }
    (settings.run_dir / SEARCH_JSON).write_text(json.dumps(info, indent=2) + "\n")


__all__ = [
    "CPU_PRESET", "FULL_PRESET", "OBJECTIVES", "SAMPLERS", "SCHEDULERS", "TRAIN_IMAGES", "SearchConfigError",
    "SearchSettings",
    "apply_preset", "budget_of", "check_run_dir", "dataset_shape", "grid_points", "load_settings", "proposals",
    "resolve_data_paths", "resolve_space", "train_config", "train_resolution", "validate", "write_search_json",
]
