"""Assembling a search's Tuner: OptunaSearch over the feasible define-by-run space (or the grid), the
scheduler, each trial's resources, the callbacks, and the run location; or the Tuner restored from it.

Ray Tune does the work (Tuner, OptunaSearch, ASHAScheduler, failure retries, experiment state and
resume, the dashboard); this module only wires our space, trainable and callbacks into it. ray,
optuna, trials (torch) and the callbacks are imported inside the functions on purpose: importing this
module must not import ray before nas.orchestration.ray_env.configure_ray_env has run.
"""

from __future__ import annotations

from typing import Any

from search_spaces import Budget, FeasibleSampler, SearchSpace, format_flops

from ..rundir.location import refuse_local_on_multinode
from .plan import (
    GRID_ASHA_NOTE,
    GRID_REFERENCES_NOTE,
    budget_of,
    expected_trials,
    grid_points,
    outside_lines,
    reference_designs,
    resolve_space,
    sampler_of,
    scheduler_of,
    train_config,
    train_resolution,
)
from .ray_env import skip_callback_telemetry_when_off, trial_resources
from .settings import SearchConfigError, SearchSettings


def make_searcher(settings: SearchSettings, space: SearchSpace, budget: Budget, train: dict[str, Any],
                  references=()):
    """OptunaSearch over the feasible space; `references` (search_spaces.Reference) are asked first."""
    import optuna

    from .tracking import optuna_storage, tracked_optuna_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress table says what matters
    seed = settings.seed
    startup = min(10, max(3, settings.trials // 3))
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                                  n_startup_trials=startup),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        # consider_pruned_trials: CMA-ES learns from ASHA-stopped (PRUNED) trials at their last epoch's value,
        # as it did when they were COMPLETE (an experimental argument in optuna 5: its warning is silenced)
        "cmaes": lambda: _quiet(lambda: optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False, consider_pruned_trials=True)),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
    }
    metric, mode = ("val_accuracy", "max")
    if settings.objective == "accuracy,flops":
        metric, mode = ["val_accuracy", "flops_nominal"], ["max", "min"]
    # The study lives in RUN_DIR/optuna.journal (or --optuna-storage): optuna-dashboard reads it live. A run
    # on an object store keeps its study only where --optuna-storage points (a journal needs a filesystem).
    target = settings.optuna_storage or settings.location.local_dir
    storage = optuna_storage(target) if target else None
    # metric/mode go to OptunaSearch itself: a define-by-run space ignores TuneConfig's (ray 2.60).
    # ASHA-stopped trials are PRUNED in the sampler's study for the samplers that learn from PRUNED trials
    # (TPE ranks them after the completed ones; random ignores values); NSGA-II learns from COMPLETE ones
    # only, so there they stay COMPLETE and are PRUNED in the architectures study alone.
    prune = settings.sampler in ("tpe", "random", "cmaes") and not isinstance(metric, list)
    return tracked_optuna_search(_WithTrain(sampler_of(settings, space, budget), train), metric=metric, mode=mode,
                                 sampler=samplers[settings.sampler](), storage=storage, run_name=settings.name,
                                 max_epochs=settings.max_epochs, references=references, arch_space=space,
                                 prune_stopped=prune)


def _quiet(make):
    """`make()` without Optuna's ExperimentalWarning."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make()


def make_scheduler(settings: SearchSettings):
    from .schedulers import ResumableASHA, ResumableFIFO

    if scheduler_of(settings) == "none":
        return ResumableFIFO(settings.location)
    return ResumableASHA(settings.location, time_attr="training_iteration", metric="val_accuracy", mode="max",
                         max_t=settings.max_epochs, grace_period=settings.grace_epochs,
                         reduction_factor=settings.reduction_factor)


def build_tuner(settings: SearchSettings, resume: bool, cluster: dict[str, float], trainable=None, log=print):
    """The Tuner of a search: new, or restored from its run location.

    `trainable` defaults to trials.train_trial (tests pass fault-injecting wrappers).
    """
    from ray import tune

    from trials import train_trial

    from .bucket_journal import work_on_journal_copy
    from .callbacks import ProgressTable, ResultsTable
    from .checkpoints import KeepBestCheckpoints
    from .data import accepts_data, shipped_dataset
    from .eta import AshaPlan
    from .gpu_retry import whole_gpu_retry
    from .live import LiveReport
    from .relocation import relocate_restored
    from .tracking import journal_path, tensorboard_callbacks, tracking_callbacks
    from .worker_faults import survive_worker_deaths

    skip_callback_telemetry_when_off()
    survive_worker_deaths()  # a trial's worker killed under a task ends that trial, not Tuner.fit
    space, budget, loc = resolve_space(settings), budget_of(settings), settings.location
    # Ray is up: a local path on a multi-node cluster fails every trial placed elsewhere at its first
    # checkpoint; refuse before anything starts.
    refuse_local_on_multinode(loc)
    trainable = trainable or train_trial
    # Found (or downloaded) once here, so a missing dataset fails now, in one line; shipped to every
    # trial through the object store (re-put by with_parameters when a resume passes the trainable).
    data = shipped_dataset(settings, log)
    if data is not None and accepts_data(trainable):
        trainable = tune.with_parameters(trainable, data=data)
    trainable = tune.with_resources(trainable, memory_resources(settings, cluster, log if not resume else None))
    table = ResultsTable(loc, space.resolution, settings.max_epochs)
    plan = (AshaPlan(settings.max_epochs) if scheduler_of(settings) == "none" else
            AshaPlan(settings.max_epochs, settings.grace_epochs, settings.reduction_factor))
    callbacks = [table, ProgressTable(table, total=expected_trials(settings), time_budget_s=settings.time_budget_s,
                                      plan=plan),
                 whole_gpu_retry(), LiveReport(loc),
                 KeepBestCheckpoints(settings.keep_checkpoints),  # after ResultsTable has recorded the trial
                 *tensorboard_callbacks(space.shared, settings.max_epochs)]
    if resume:
        if not tune.Tuner.can_restore(loc.run_uri):
            raise SearchConfigError("resume", "{path} has no Ray Tune experiment state to resume",
                                    path=loc.display)
        tuner = tune.Tuner.restore(loc.run_uri, trainable=trainable, resume_unfinished=True,
                                   resume_errored=True, restart_errored=False)
        work_on_journal_copy(tuner, settings, log)  # a local run copied into a bucket
        # What Tune unpickled names the location the run was saved at: the run may have moved since.
        relocate_restored(tuner, loc, journal_path(settings))
        return tuner
    train = train_config(settings, space)
    if settings.sampler == "grid":
        points = grid_points(settings, space, budget)
        log("capacity-matched sweep (" + settings.match + "): " + ", ".join(
            f"{p.cardinality}x{p.width}d {format_flops(p.flops)} {p.params / 1e6:.2f}M" for p in points))
        for line in outside_lines(points):
            log(line)
        if scheduler_of(settings) == "asha":
            log(GRID_ASHA_NOTE)
        if settings.references != "none":
            log(GRID_REFERENCES_NOTE)
        param_space = {"arch": tune.grid_search([p.arch.to_dict() for p in points]),
                       "train": {**train, "seed": tune.grid_search(
                           list(range(settings.seed, settings.seed + settings.seeds)))}, "role": "grid"}
        search_alg, num_samples = None, 1
    else:
        refs, notes = reference_designs(settings)
        for line in notes + [f"note: reference {r.name}: {r.note}" for r in refs if r.note]:
            log(line)
        if refs:
            log(f"references: {', '.join(f'{r.arch.describe()} ({r.name})' for r in refs)} train first, within "
                f"the {settings.trials} trials (--references none to leave them out)")
        param_space = {}
        search_alg, num_samples = make_searcher(settings, space, budget, train, refs), settings.trials
    callbacks += tracking_callbacks(settings)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=make_scheduler(settings), num_samples=num_samples,
            max_concurrent_trials=settings.max_concurrent, time_budget_s=settings.time_budget_s,
            reuse_actors=True,  # ~0.4 s instead of ~1.7 s of overhead per trial (measured, ray 2.60)
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            # the URI as given (s3://...?endpoint_override=...): pyarrow resolves it on every node
            name=loc.name, storage_path=loc.uri, callbacks=callbacks, verbose=0,
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            # every checkpoint: KeepBestCheckpoints deletes them once the experiment state no longer needs
            # them (num_to_keep deletes before the state is saved: unsafe against kill -9; checkpoints.py)
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        ),
    )


def memory_resources(settings: SearchSettings, cluster: dict[str, float], log=None):
    """Each trial's resources with its estimated peak memory as Ray's `memory` resource; a search whose
    trials cannot fit the largest node is refused here, before any trial starts. `log` prints the estimate."""
    from search_spaces import propose_many

    from .memory_budget import SAMPLE, WithMemory, check_fits, largest_node_memory, memory_line
    from .plan import dataset_shape
    from .ray_env import alive_node_resources

    resolution = train_resolution(settings)
    nodes = alive_node_resources() or [cluster]
    on_gpu = cluster.get("GPU", 0.0) > 0 and settings.gpus_per_trial != 0
    ends = dataset_shape(settings.dataset, settings.data_dir)[:2]
    space, budget = resolve_space(settings), budget_of(settings)
    archs = ([p.arch for p in grid_points(settings, space, budget)] if settings.sampler == "grid"
             else propose_many(space, budget, SAMPLE, "random", settings.seed))
    node_memory = largest_node_memory(nodes)
    check_fits(archs, settings, resolution, node_memory, ends, on_gpu)
    if log is not None:
        log("Memory: " + memory_line(archs, settings, resolution, ends, on_gpu)
            + (f"; the largest Ray node offers {node_memory / 2**30:.1f} GB" if node_memory else ""))
    base = trial_resources(settings, cluster, resolution)
    return WithMemory(base, settings, resolution, node_memory, ends, on_gpu)


def trial_dirname(trial) -> str:
    # Tune's default puts the whole (nested) config in the directory name: unreadable and near the
    # file-name length limit for an architecture dict.
    return f"trial_{trial.trial_id}"


class _WithTrain:
    """Define-by-run space that also returns the trial's fixed training settings and its role, so that a
    trial's config holds all it needs (picklable: Ray saves the searcher, a lambda would not pickle).

    `role` is "reference" for the enqueued reference designs (their Optuna trials carry it as a user
    attribute, with the design's name in `reference`), "sampled" for the sampler's proposals."""

    def __init__(self, define: FeasibleSampler, train: dict[str, Any]) -> None:
        self.define, self.train = define, train

    def __call__(self, trial) -> dict:
        attrs = trial.user_attrs
        role = {"role": attrs.get("role", "sampled"), **({"reference": attrs["reference"]} if "reference" in attrs
                                                         else {})}
        return {**self.define(trial), "train": dict(self.train), **role}


__all__ = ["build_tuner", "make_scheduler", "make_searcher", "memory_resources", "trial_dirname"]
