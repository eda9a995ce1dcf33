"""The search on Ray Tune: OptunaSearch over the feasible define-by-run space, ASHA, the results table.

Ray Tune does the work (Tuner, OptunaSearch, ASHAScheduler, failure retries, experiment state and
resume, the dashboard); this module only wires our space, trainable and callbacks into it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search_spaces import Architecture, complexity, save_architecture
from search_spaces.budget import Budget, format_flops
from search_spaces.sampling import FeasibleSampler, capacity_matched
from search_spaces.spaces import SearchSpace

from .cli import UsageError

SEARCH_JSON = "search.json"
BEST_JSON = "best.json"
SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
SCHEDULERS = ("asha", "none")
OBJECTIVES = ("accuracy", "accuracy,flops")


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
    """(channels, classes, native resolution) of a dataset, without loading it."""
    if dataset in _KNOWN_SHAPES:
        return _KNOWN_SHAPES[dataset]
    if dataset.startswith("imagefolder:"):
        root = Path(dataset.split(":", 1)[1]).expanduser()
        train = root / "train" if (root / "train").is_dir() else root
        classes = [p for p in train.iterdir() if p.is_dir()] if train.is_dir() else []
        if not classes:
            raise UsageError(f"--dataset: {root} holds no class folders (expected PATH/<class>/<image> "
                             "or PATH/train/<class>/<image>)")
        return 3, len(classes), 224
    raise UsageError(f"--dataset: unknown dataset {dataset!r}; accepted: {', '.join(_KNOWN_SHAPES)}, "
                     "imagefolder:PATH")


# What trials.datasets loads for each name (synthetic: its default shape).
_KNOWN_SHAPES = {"fashion-mnist": (1, 10, 28), "cifar10": (3, 10, 32), "cifar100": (3, 100, 32),
                 "synthetic": (3, 10, 32)}


def resolve_space(settings: SearchSettings) -> SearchSpace:
    from search_spaces.spaces import get_space

    # Architectures keep the template's nominal ends (3 channels; 1000 classes for ImageNet, 10 for
    # CIFAR), so a budget means what it means in the paper (ResNet-50 = 4.09 GFLOPs at 224); each trial
    # adapts the stem's input channels and the classifier to its dataset (trials.loop).
    space = get_space(settings.space, shared=not settings.free)
    dataset_shape(settings.dataset, settings.data_dir)  # a bad --dataset fails here, before Ray starts
    if settings.budget_resolution:
        space = space.with_resolution(settings.budget_resolution)
    return space


def train_config(settings: SearchSettings, space: SearchSpace) -> dict[str, Any]:
    """The `train` part of every trial's config (trials.loop.TrainConfig fields)."""
    config = {
        "dataset": settings.dataset, "data_dir": settings.data_dir, "epochs": settings.max_epochs,
        "train_subset": settings.train_subset, "val_size": settings.val_size,
        "train_resolution": settings.train_resolution,
        "budget_resolution": space.resolution, "seed": settings.seed,
        "batch_size": settings.batch_size, "lr": settings.lr,
    }
    return {k: v for k, v in config.items() if v is not None}


# --- Ray --------------------------------------------------------------------------------------------

def configure_ray_env(address: str | None) -> None:
    """Environment Ray reads when it is imported: call before the first `import ray`."""
    import sys

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress table replaces Tune's
    # Save the experiment state at every step of Tune's loop (its default waits 10 s or more): a
    # killed driver then loses no finished trial, which a resumed search would otherwise rerun.
    # The state of a few hundred trials is small; the cost is in docs/performance.md.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    host = (address or "").removeprefix("ray://").rsplit(":", 1)[0]
    if not address or host in ("127.0.0.1", "localhost", "::1"):
        # Ray rewrites a loopback address to this machine's network IP, so a head started on loopback
        # would be unreachable and our embedded instance would listen on the network. This variable
        # makes Ray keep a single-node instance on 127.0.0.1.
        if "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ and "ray" in sys.modules:
            raise RuntimeError("configure_ray_env must run before ray is imported")
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address and "RAY_AUTH_MODE" not in os.environ:
        # Ray enables token authentication by default, but a driver given an explicit address does
        # not send the token unless told to: keep authentication on when a token is at hand.
        token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        if os.environ.get("RAY_AUTH_TOKEN") or token.is_file():
            os.environ["RAY_AUTH_MODE"] = "token"


def start_ray(address: str | None, dashboard_host: str, dashboard_port: int, num_cpus: int | None = None
              ) -> dict[str, Any]:
    """Start an embedded Ray (or join a cluster) and say where its dashboard and token are."""
    configure_ray_env(address)
    import ray

    if address:
        context = ray.init(address=address, log_to_driver=True)
    else:
        # Everything on loopback: nothing listens on a public address unless the user asks for it.
        loopback = dashboard_host in ("127.0.0.1", "localhost")
        context = ray.init(
            address="local", include_dashboard=True, dashboard_host=dashboard_host,
            dashboard_port=dashboard_port, num_cpus=num_cpus, log_to_driver=True,
            **({"_node_ip_address": "127.0.0.1"} if loopback else {}),
        )
    url = context.dashboard_url or ""
    token_path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return {"dashboard": f"http://{url}" if url and not url.startswith("http") else url,
            "token_path": token_path, "resources": ray.cluster_resources()}


def gpu_fraction(flops_train: int) -> float:
    """GPU share of one trial from its cost at training resolution: small trials share a GPU (on an
    H100, 4 packed ResNeXt-50 trials at 32x32 gave 3.2x the throughput of one)."""
    if flops_train <= 0.5e9:
        return 0.25
    if flops_train <= 2e9:
        return 0.5
    return 1.0


def trial_resources(settings: SearchSettings, cluster: dict[str, float], train_resolution: int):
    """A function config -> resources, so each trial's GPU share follows its architecture."""
    gpus = cluster.get("GPU", 0.0)
    if settings.gpus_per_trial and settings.gpus_per_trial > gpus:
        raise UsageError(f"--gpus-per-trial {settings.gpus_per_trial:g}: the Ray cluster has {gpus:g} GPUs "
                         "(trials would wait forever); use --gpus-per-trial 0 or a cluster with GPUs")
    cpus = settings.cpus_per_trial or (1.0 if gpus else max(1.0, cluster.get("CPU", 1.0) //
                                                             (settings.max_concurrent or 1)))
    cpus = min(cpus, cluster.get("CPU", cpus))
    if not gpus or settings.gpus_per_trial == 0:
        return {"cpu": cpus}
    if settings.gpus_per_trial:
        return {"cpu": cpus, "gpu": settings.gpus_per_trial}
    return _GpuShare(cpus, train_resolution)


class _GpuShare:
    """Picklable `config -> resources` callable (Ray pickles the trainable with it)."""

    def __init__(self, cpus: float, train_resolution: int) -> None:
        self.cpus, self.train_resolution = cpus, train_resolution

    def __call__(self, config: dict) -> dict:
        arch = Architecture.from_dict(config["arch"])
        return {"cpu": self.cpus, "gpu": gpu_fraction(complexity(arch, self.train_resolution).flops)}


def make_searcher(settings: SearchSettings, space: SearchSpace, budget: Budget, train: dict[str, Any]):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress table says what matters
    seed = settings.seed
    startup = min(10, max(3, settings.trials // 3))
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                                  n_startup_trials=startup),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup,
                                                      warn_independent_sampling=False),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
    }
    metric, mode = ("val_accuracy", "max")
    if settings.objective == "accuracy,flops":
        metric, mode = ["val_accuracy", "flops"], ["max", "min"]
    # metric/mode go to OptunaSearch itself: a define-by-run space ignores TuneConfig's (ray 2.60).
    return OptunaSearch(space=_WithTrain(FeasibleSampler(space, budget), train), metric=metric, mode=mode,
                        sampler=samplers[settings.sampler]())


def make_scheduler(settings: SearchSettings):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if settings.scheduler == "none":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="training_iteration", metric="val_accuracy", mode="max",
                         max_t=settings.max_epochs, grace_period=settings.grace_epochs,
                         reduction_factor=settings.reduction_factor)


def grid_points(settings: SearchSettings, space: SearchSpace, budget: Budget):
    return capacity_matched(space, budget, settings.cardinality, settings.match, settings.depths)


# --- run directory ----------------------------------------------------------------------------------

def check_run_dir(settings: SearchSettings, resume: bool) -> Path:
    """Refuse early, before Ray starts: unwritable storage, clobbering a run, resuming a non-run."""
    run_dir = settings.run_dir
    storage = run_dir.parent
    if resume:
        if not (run_dir / SEARCH_JSON).is_file():
            raise UsageError(f"--resume: {run_dir} is not a search run directory (no {SEARCH_JSON})")
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(f"--name: run directory {run_dir} already exists; use --resume to continue it "
                         "or another --name")
    probe = storage
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK) or not probe.is_dir():
        raise UsageError(f"--storage-path: cannot write to {storage} ({probe} is not a writable directory)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ".write-test").write_text("ok")
        (run_dir / ".write-test").unlink()
    except OSError as exc:
        raise UsageError(f"--storage-path: cannot write to {storage} ({exc.strerror or exc})") from None
    return run_dir


def load_settings(run_dir: Path) -> SearchSettings:
    """The settings a run was started with; refuses directories that --resume could not continue."""
    try:
        data = json.loads((run_dir / SEARCH_JSON).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume: {run_dir / SEARCH_JSON} is unreadable ({exc})") from None
    try:
        settings = SearchSettings(**data["settings"])
    except (KeyError, TypeError) as exc:
        raise UsageError(f"--resume: {run_dir / SEARCH_JSON} is not from this version of nas.search "
                         f"({exc})") from None
    if not any(run_dir.glob("experiment_state-*.json")):
        raise UsageError(f"--resume: {run_dir} has no Ray Tune experiment state to resume (it was stopped "
                         "before its first trial was recorded); start a new search instead")
    return settings


def write_search_json(settings: SearchSettings, space: SearchSpace, budget: Budget, train_resolution: int
                      ) -> None:
    import optuna
    import ray
    import torch

    info = {
        "budget_flops": budget.flops, "tolerance": budget.tolerance, "space": settings.space,
        "free": settings.free, "budget_resolution": space.resolution, "train_resolution": train_resolution,
        "dataset": settings.dataset, "objective": settings.objective, "sampler": settings.sampler,
        "match": settings.match if settings.sampler == "grid" else None, "max_epochs": settings.max_epochs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "ray": ray.__version__, "optuna": optuna.__version__},
        "settings": asdict(settings),
    }
    (settings.run_dir / SEARCH_JSON).write_text(json.dumps(info, indent=2) + "\n")


# --- the search ---------------------------------------------------------------------------------------

def build_tuner(settings: SearchSettings, resume: bool, cluster: dict[str, float], trainable=None):
    """The Tuner (new, or restored from RUN_DIR), its results table, the space and the budget.

    `trainable` defaults to trials.trainable.train_trial (tests pass fault-injecting wrappers).
    """
    from ray import tune

    from trials.trainable import train_trial

    from .progress import ProgressTable
    from .results import ResultsTable

    space = resolve_space(settings)
    budget = Budget(settings.budget_flops, settings.tolerance)
    _, _, native = dataset_shape(settings.dataset, settings.data_dir)
    train_resolution = settings.train_resolution or native
    run_dir = settings.run_dir
    trainable = tune.with_resources(trainable or train_trial, trial_resources(settings, cluster, train_resolution))
    table = ResultsTable(run_dir, space.resolution, settings.max_epochs)
    callbacks = [table, ProgressTable(table)]
    if resume:
        from ray.tune import Tuner

        if not Tuner.can_restore(str(run_dir)):
            raise UsageError(f"--resume: {run_dir} has no Ray Tune experiment state to resume")
        tuner = Tuner.restore(str(run_dir), trainable=trainable, resume_unfinished=True,
                              resume_errored=True, restart_errored=False)
        return tuner, table, space, budget
    train = train_config(settings, space)
    if settings.sampler == "grid":
        points = grid_points(settings, space, budget)
        print("capacity-matched sweep (" + settings.match + "): " + ", ".join(
            f"{p.cardinality}x{p.width}d {format_flops(p.flops)} {p.params / 1e6:.2f}M" for p in points))
        param_space = {"arch": tune.grid_search([p.arch.to_dict() for p in points]),
                       "train": {**train, "seed": tune.grid_search(
                           list(range(settings.seed, settings.seed + settings.seeds)))}}
        search_alg, num_samples = None, 1
    else:
        param_space = {}
        search_alg, num_samples = make_searcher(settings, space, budget, train), settings.trials
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=make_scheduler(settings), num_samples=num_samples,
            max_concurrent_trials=settings.max_concurrent, time_budget_s=settings.time_budget_s,
            reuse_actors=True,  # ~0.4 s instead of ~1.7 s of overhead per trial (measured, ray 2.60)
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=settings.name, storage_path=str(run_dir.parent), callbacks=callbacks, verbose=0,
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # ~200 MB each for a ResNeXt-50
        ),
    )
    return tuner, table, space, budget


def trial_dirname(trial) -> str:
    # Tune's default puts the whole (nested) config in the directory name: unreadable and near the
    # file-name length limit for an architecture dict.
    return f"trial_{trial.trial_id}"


class _WithTrain:
    """Define-by-run space that also returns the trial's fixed training settings, so that a trial's
    config holds all it needs (picklable: Ray saves the searcher, a lambda would not pickle)."""

    def __init__(self, define: FeasibleSampler, train: dict[str, Any]) -> None:
        self.define, self.train = define, train

    def __call__(self, trial) -> dict:
        return {**self.define(trial), "train": dict(self.train)}


def run(settings: SearchSettings, resume: bool, cluster: dict[str, float], trainable=None) -> dict[str, Any]:
    """Run (or resume) the search on the Ray instance this process is connected to."""
    tuner, table, space, budget = build_tuner(settings, resume, cluster, trainable)
    if not resume:
        native = dataset_shape(settings.dataset, settings.data_dir)[2]
        write_search_json(settings, space, budget, settings.train_resolution or native)
    print(f"Search: {settings.trials if settings.sampler != 'grid' else 'grid'} trials, budget {budget} "
          f"at {space.resolution}x{space.resolution}, space {space.name}, sampler {settings.sampler}, "
          f"scheduler {settings.scheduler} (max {settings.max_epochs} epochs), run dir {settings.run_dir}",
          flush=True)
    tuner.fit()
    return finish(settings, table)


def finish(settings: SearchSettings, table, log=print) -> dict[str, Any]:
    """best.json, the summary table, the report."""
    from .progress import format_progress

    frame = table.frame()
    run_dir = settings.run_dir
    done = frame.dropna(subset=["best_val_accuracy"])
    done = done[done["outcome"].isin(["completed", "stopped"])]
    summary: dict[str, Any] = {"run_dir": str(run_dir), "trials": len(frame),
                               "outcomes": frame["outcome"].value_counts().to_dict()}
    if len(done):
        best = done.sort_values(["best_val_accuracy", "epochs"], ascending=False).iloc[0]
        arch = Architecture.from_dict(json.loads(best["arch"]))
        save_architecture(arch, run_dir / BEST_JSON)
        summary.update(best=str(best["name"]), best_val_accuracy=float(best["best_val_accuracy"]),
                       best_trial=str(best["trial_id"]), best_json=str(run_dir / BEST_JSON))
    log("\n" + format_progress(frame, 0, limit=10).split("\n", 1)[1])
    try:
        from .report import write_report

        summary["report"] = str(write_report(run_dir))
    except Exception as exc:  # the report must never lose a finished search
        log(f"warning: report not written: {exc}")
    return summary
