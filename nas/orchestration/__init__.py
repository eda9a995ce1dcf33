"""Running a search on Ray Tune. One module per job:

    settings.py    what a search is: SearchSettings, what each setting accepts, search.json
    plan.py        what it will try: space, budget, grid points, references, proposals, presets, checks
    ray_env.py     Ray itself: its environment, starting or joining it, each trial's resources
    tuner.py       assembling the Tuner: searcher, scheduler, callbacks (or restoring it)
    driver.py      running it: run_search, from settings to summary, in the order it happens
    data.py        the dataset, loaded once by the driver and shipped to every trial
    callbacks.py   trials.csv / epochs.csv while it runs, the progress table, one line per trial
    live.py        the live report.html, the progress table's redraw and time estimate
    schedulers.py  ResumableASHA: ASHA that keeps its rungs across --resume
    checkpoints.py KeepBestCheckpoints: checkpoints kept only where still needed; the run's size
    gpu_retry.py   a trial that ran out of GPU memory on a shared GPU retries on a whole one
    tracking.py    Optuna storage, TensorBoard, MLflow, the Ray dashboard's labels
    validation.py  nas.validate: the top K and controls retrained at a higher fidelity
    memory_budget.py each trial's estimated peak memory as Ray's `memory` resource; refusal if none fits
    worker_faults.py a trial whose worker is killed ends as an oom/error row, not the search

Importing this package imports neither ray nor torch (see each module); errors are
`SearchConfigError`s naming the SearchSettings field, which the commands turn into `--flag: ...`.
"""

from .driver import RayOptions, finish, run_search
from .memory_budget import memory_line
from .plan import (
    CPU_PRESET,
    FULL_FLAGS,
    FULL_PRESET,
    GRID_ASHA_NOTE,
    GRID_REFERENCES_NOTE,
    apply_preset,
    budget_of,
    check_settings,
    dataset_shape,
    grid_points,
    latency_cost_of,
    outside_lines,
    proposals,
    reference_designs,
    resolve_space,
    scheduler_of,
    train_resolution,
)
from .ray_env import configure_ray_env, start_ray, trial_resources
from .settings import (
    ACCEPTS,
    DEFAULT_KEEP_CHECKPOINTS,
    MATCHES,
    OBJECTIVES,
    REFERENCES,
    SAMPLERS,
    SCHEDULERS,
    SearchConfigError,
    SearchSettings,
    from_keywords,
    load_settings,
    with_absolute_paths,
)

__all__ = [
    "ACCEPTS", "CPU_PRESET", "DEFAULT_KEEP_CHECKPOINTS", "FULL_FLAGS", "FULL_PRESET", "GRID_ASHA_NOTE",
    "GRID_REFERENCES_NOTE", "MATCHES", "OBJECTIVES", "REFERENCES", "RayOptions", "SAMPLERS", "SCHEDULERS",
    "SearchConfigError", "SearchSettings", "apply_preset", "budget_of", "latency_cost_of", "check_settings",
    "configure_ray_env",
    "dataset_shape", "finish", "from_keywords", "grid_points", "load_settings", "memory_line", "outside_lines",
    "proposals", "reference_designs", "resolve_space", "run_search", "scheduler_of", "start_ray", "train_resolution",
    "trial_resources", "with_absolute_paths",
]
