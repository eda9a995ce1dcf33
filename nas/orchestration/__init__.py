"""Running a search on Ray Tune: what it is defined by, Ray itself, the Tuner, and the driver's callbacks.

    settings.py   SearchSettings, presets, validation, dataset facts, search.json
    ray_env.py    Ray's environment, starting Ray, each trial's resources
    tuner.py      searcher, scheduler, Tuner; run and finish a search
    callbacks.py  ResultsTable (trials.csv, epochs.csv) and ProgressTable (imports ray: used by tuner.py only)

Importing this package imports neither ray nor torch (see each module); errors are
`SearchConfigError`s naming the SearchSettings field, which nas.search turns into `--flag: ...`.
"""

from .ray_env import configure_ray_env, start_ray, trial_resources
from .settings import (
    CPU_PRESET,
    FULL_PRESET,
    GRID_ASHA_NOTE,
    OBJECTIVES,
    SAMPLERS,
    SCHEDULERS,
    SearchConfigError,
    SearchSettings,
    apply_preset,
    budget_of,
    check_run_dir,
    dataset_shape,
    grid_points,
    load_settings,
    outside_lines,
    proposals,
    resolve_space,
    scheduler_of,
    validate,
)
from .tuner import build_tuner, finish, run

__all__ = [
    "CPU_PRESET", "FULL_PRESET", "GRID_ASHA_NOTE", "OBJECTIVES", "SAMPLERS", "SCHEDULERS", "SearchConfigError",
    "SearchSettings", "apply_preset", "budget_of", "build_tuner", "check_run_dir", "configure_ray_env",
    "dataset_shape", "finish", "grid_points", "load_settings", "outside_lines", "proposals", "resolve_space", "run",
    "scheduler_of", "start_ray", "trial_resources", "validate",
]
