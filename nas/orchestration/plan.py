"""What a search will try: the space and the budget its settings name, the grid's points, the first
proposals (for --dry-run), each trial's fixed training settings, the resolutions trials train at, and
the size presets; `check_settings`, everything that can be refused before Ray starts.

trials (torch) is imported inside `dataset_shape` on purpose: `nas.search --dry-run` stays fast.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from search_spaces import (
    AdditiveCost,
    Architecture,
    Budget,
    BudgetError,
    FeasibleSampler,
    LatencyError,
    LatencyTable,
    MatchedPoint,
    Reference,
    SearchSpace,
    SpaceFileError,
    capacity_matched,
    current_meta,
    flops_range,
    get_space,
    latency_cost,
    load_space,
    load_table,
    open_table,
    propose_many,
    references,
    smallest_resolution,
    template,
)

from .settings import SearchConfigError, SearchSettings, check_fields

# The CPU preset (2 cores, under 15 minutes, >= 8 trials): measured in docs/performance.md.
CPU_PRESET = {"trials": 9, "max_epochs": 2, "grace_epochs": 1, "reduction_factor": 2, "train_subset": 2000,
              "val_size": 1000}
FULL_PRESET = {"trials": 64, "max_epochs": 12, "grace_epochs": 1, "reduction_factor": 3}
FULL_FLAGS = "--full (all 55,000 training images, --max-epochs 12, --trials 64)"

# An image folder's largest resolution under the CPU preset: Fashion-MNIST's, whose minutes the preset
# was measured with (docs/performance.md).
CPU_FOLDER_RESOLUTION = 28

# Training images of the datasets whose size is fixed (an image folder's is known once it is scanned,
# nas.orchestration.data.check_sizes): --val-size is refused before Ray starts.
TRAIN_IMAGES = {"fashion-mnist": 60000, "cifar10": 50000, "cifar100": 50000, "synthetic": 2048}

# A sweep compares settings at equal training; ASHA would stop most of them after `grace_epochs`. So
# grid runs without a scheduler unless one is asked for.
GRID_ASHA_NOTE = ("note: --scheduler asha with the grid sweep: ASHA stops the settings it ranks low early, so "
                  "they are compared at unequal training (leave --scheduler out to train every point fully)")


# --- datasets: channels and classes decide the architecture's ends ---------------------------------

def dataset_shape(dataset: str, data_dir: str | None) -> tuple[int, int, int]:
    """(channels, classes, native resolution) of a dataset, without loading it (trials' registry)."""
    from trials import DatasetError, describe_dataset  # imports torch: only when a search is set up

    try:
        info = describe_dataset(dataset)
    except DatasetError as exc:
        raise SearchConfigError("dataset", "{error}", error=str(exc)) from None
    return info.channels, info.classes, info.resolution


def is_folder(settings: SearchSettings) -> bool:
    return settings.dataset.startswith("imagefolder:")


def train_resolution(settings: SearchSettings) -> int:
    """The resolution trials train at: --train-resolution, else the dataset's own; for an image folder the
    space's nominal resolution, never above the images' own size (median shorter side): a CIFAR-space
    budget is at 32x32, and 32x32 images decoded at 224x224 cost 49x the budget's FLOPs per image and
    filled 20 GB in one trial."""
    if settings.train_resolution:
        return settings.train_resolution
    own = dataset_shape(settings.dataset, settings.data_dir)[2]
    return min(own, resolve_space(settings).resolution) if is_folder(settings) else own


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


def cpu_folder_resolution(settings: SearchSettings) -> int:
    """An image folder's resolution under the CPU preset: train_resolution, at most Fashion-MNIST's 28x28,
    so that a folder search takes the minutes the same search on Fashion-MNIST takes (same space, budget
    and preset sizes; 32x32 would cost 1.3x its FLOPs per image, 224x224 64x)."""
    return min(train_resolution(settings), CPU_FOLDER_RESOLUTION)


def folder_resolution_line(settings: SearchSettings, asked: int | None, cpu_preset: bool) -> str:
    """Why an image folder's trials train at settings.train_resolution (printed when the search starts)."""
    r = settings.train_resolution
    if asked:
        return f"Images: trials train at {r}x{r} (--train-resolution)"
    own = dataset_shape(settings.dataset, settings.data_dir)[2]
    nominal = resolve_space(settings).resolution
    why = f"the space's {nominal}x{nominal}, never above the images' own {own}x{own}"
    if cpu_preset and r < min(own, nominal):
        why += f"; no GPU: at most {CPU_FOLDER_RESOLUTION}x{CPU_FOLDER_RESOLUTION}, Fashion-MNIST's"
    elif r > min(own, nominal):
        why += "; on a GPU raised until every stage's maps are >= 2x2"
    return f"Images: trials train at {r}x{r} ({why}; --train-resolution to choose)"


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
        try:
            space = get_space(settings.space, shared=not settings.free)
        except (KeyError, ValueError) as exc:
            raise SearchConfigError("space", "{error}", error=str(exc).strip("'\"")) from None
    dataset_shape(settings.dataset, settings.data_dir)  # a bad --dataset fails here, before Ray starts
    if settings.budget_resolution:
        space = space.with_resolution(settings.budget_resolution)
    return space


def budget_of(settings: SearchSettings) -> Budget:
    """The FLOPs window; without a FLOPs budget (a latency budget alone) the whole space's range, so only
    the latency window constrains the proposals."""
    if settings.budget_flops is not None:
        return Budget(settings.budget_flops, settings.tolerance)
    low, high = flops_range(resolve_space(settings))
    # ceil((1 - tolerance) * high) must come out <= low: half a FLOP of slack absorbs the float rounding
    return Budget(high, min((high - low + 0.5) / high, 1 - 1e-12))


def latency_table_of(settings: SearchSettings, space: SearchSpace) -> LatencyTable | None:
    """The latency table a latency budget is predicted with (None without a latency budget): --latency-table,
    else the cache's table for this machine at the space's resolution, batch 1 and torch's thread count."""
    if settings.latency_budget_ms is None and settings.latency_table is None:
        return None
    try:
        if settings.latency_table is not None:
            return load_table(settings.latency_table)
        table, path = open_table(current_meta("cpu", None, 1, "float32", space.resolution))
    except LatencyError as exc:
        raise SearchConfigError("latency_table", "{error}", error=str(exc)) from None
    if not table.entries:
        raise SearchConfigError("latency_budget_ms", "no latency table for this machine at {res}x{res} ({path}); "
                                "build it with python -m nas.profile --space {space} --budget BUDGET, or give one "
                                "with {table}", res=space.resolution, path=path, space=space.name.removesuffix("-free"),
                                table="--latency-table")
    return table


def latency_cost_of(settings: SearchSettings, space: SearchSpace) -> AdditiveCost | None:
    """The sampler's second cost: the predicted latency and its window [(1 - tolerance) * B, B]."""
    table = latency_table_of(settings, space)
    if table is None or settings.latency_budget_ms is None:
        return None
    high = settings.latency_budget_ms
    try:
        return latency_cost(table, space, (1 - settings.tolerance) * high, high)
    except LatencyError as exc:
        raise SearchConfigError("latency_table", "{error}", error=str(exc)) from None


def sampler_of(settings: SearchSettings, space: SearchSpace, budget: Budget) -> FeasibleSampler:
    """The feasible sampler of a search: FLOPs-feasible, and inside the latency window when there is one."""
    return FeasibleSampler(space, budget, cost=latency_cost_of(settings, space))


def grid_points(settings: SearchSettings, space: SearchSpace, budget: Budget) -> list[MatchedPoint]:
    return capacity_matched(space, budget, settings.cardinality, settings.match, settings.depths)


def outside_lines(points: list[MatchedPoint]) -> list[str]:
    """One line per sweep point outside the budget's feasible window, saying by how much and why."""
    return [f"note: sweep point {p.outside}" for p in points if not p.in_budget]


def scheduler_of(settings: SearchSettings) -> str:
    """The scheduler a search runs: the one asked for, else ASHA, except for the grid sweep (none)."""
    if settings.scheduler is not None:
        return settings.scheduler
    return "none" if settings.sampler == "grid" else "asha"


def expected_trials(settings: SearchSettings) -> int:
    """How many trials the search will run (the progress table's estimate of what remains)."""
    if settings.sampler == "grid":
        return len(settings.cardinality) * settings.seeds
    return settings.trials or 0


# A grid sweep's points are the paper's capacity-matched designs at the search's own settings (C = 1 and
# C = 32 among them with the default --cardinality): references would repeat them, so a grid trains none.
GRID_REFERENCES_NOTE = "note: the grid sweep trains no separate reference designs: its points are the paper's"


def reference_designs(settings: SearchSettings) -> tuple[list[Reference], list[str]]:
    """The reference designs the search trains first (each within `trials`, enqueued to the sampler so it
    observes them like any trial), and a note for each design left out or moved. None with
    `references="none"` or the grid sweep; none either when `trials` leaves no sampled trial beside them."""
    if settings.references == "none" or settings.sampler == "grid":
        return [], []
    try:
        space = resolve_space(settings)
        refs, notes = references(space, budget_of(settings))
    except BudgetError:  # check_settings refuses the budget, naming the space's range
        return [], []
    notes = [f"note: {line}" for line in notes]
    cost = latency_cost_of(settings, space)
    if cost is not None:  # a reference trains only inside the latency window too, encoded for that sampler
        try:
            sampler = FeasibleSampler(space, budget_of(settings), cost=cost)
        except BudgetError:
            return [], notes
        kept = []
        for r in refs:
            ms = cost.of(r.arch, space)
            if cost.contains(ms):
                kept.append(replace(r, params=sampler.encode(r.arch)))
            else:
                why = (f"predicted {ms:.1f} ms" if ms != float("inf") else "the latency table lacks its parts")
                notes.append(f"note: reference {r.name} ({r.arch.describe()}) left out: {why}, outside the latency "
                             f"window {cost.low:.1f} .. {cost.high:.1f} ms")
        refs = kept
    if refs and settings.trials is not None and settings.trials <= len(refs):
        return [], notes + [f"note: --trials {settings.trials} leaves no sampled trial beside the {len(refs)} "
                            f"reference designs: none trained (--trials {len(refs) + 1} or more to train them)"]
    return refs, notes


def proposals(settings: SearchSettings, samples: int, refs: list[Reference] | None = None) -> list[Architecture]:
    """What a search would try first, without Ray: the grid's points, or the reference designs (`refs`,
    default reference_designs) followed by the first `samples` proposals of TPE or random sampling (other
    samplers start with random proposals)."""
    space, budget = resolve_space(settings), budget_of(settings)
    if settings.sampler == "grid":
        return [p.arch for p in grid_points(settings, space, budget)]
    sampler = "tpe" if settings.sampler == "tpe" else "random"
    refs = reference_designs(settings)[0] if refs is None else refs
    return propose_many(space, budget, samples, sampler, settings.seed, first=[r.params for r in refs],
                        cost=latency_cost_of(settings, space))


def validation_images(settings: SearchSettings) -> int | None:
    """How many images trials validate on: --val-size, else the trials' default for the dataset's size
    (None when that size is not known before loading: image folders)."""
    from trials import default_val_size

    if settings.val_size:
        return settings.val_size
    n = TRAIN_IMAGES.get(settings.dataset)
    return default_val_size(n) if n else None


def train_config(settings: SearchSettings, space: SearchSpace) -> dict[str, Any]:
    """The `train` part of every trial's config (trials.TrainConfig fields)."""
    config = {
        "dataset": settings.dataset, "data_dir": settings.data_dir, "epochs": settings.max_epochs,
        "train_subset": settings.train_subset, "val_size": settings.val_size,
        "train_resolution": settings.train_resolution,
        "budget_resolution": space.resolution, "seed": settings.seed,
        # Trial seeds (the grid's --seeds) vary initialisation and data order; the validation split and
        # the training subset stay those of the search's seed.
        "split_seed": settings.seed,
        "batch_size": settings.batch_size, "lr": settings.lr, "compile": settings.compile or None,
    }
    return {k: v for k, v in config.items() if v is not None}


# --- presets and validation ----------------------------------------------------------------------

def apply_preset(settings: SearchSettings, has_gpu: bool, full: bool) -> tuple[SearchSettings, dict[str, Any]]:
    """Fill unset sizes: full search on a GPU (or with `full`), the measured CPU preset otherwise. On a
    GPU, trials also train at gpu_train_resolution unless a training resolution is set. Trials kept off
    the GPU (`gpus_per_trial` 0) count as no GPU.

    Returns the settings and, for the CPU preset, what it scaled down ({} otherwise).
    """
    has_gpu = has_gpu and settings.gpus_per_trial != 0
    preset = FULL_PRESET if (has_gpu or full) else CPU_PRESET
    changes = {k: v for k, v in preset.items() if k in asdict(settings) and not getattr(settings, k)}
    scaled: dict[str, Any] = {}
    if preset is CPU_PRESET:
        if settings.train_subset is None:
            changes["train_subset"] = preset["train_subset"]
        if settings.dataset != "fashion-mnist" and not is_folder(settings):
            changes.pop("train_subset", None)
        if is_folder(settings) and settings.train_resolution is None:
            changes["train_resolution"] = cpu_folder_resolution(settings)
        if TRAIN_IMAGES.get(settings.dataset, 0) < 10 * preset["val_size"]:
            # a small or unknown-size dataset (image folders): the trials' min(5000, n // 10) instead
            changes.pop("val_size", None)
        scaled = dict(changes)
    elif has_gpu and settings.train_resolution is None and (
            is_folder(settings) or gpu_train_resolution(settings) != train_resolution(settings)):
        changes["train_resolution"] = gpu_train_resolution(settings)
    elif is_folder(settings) and settings.train_resolution is None:
        changes["train_resolution"] = train_resolution(settings)  # decoded once, at that size
    settings = replace(settings, **changes, scheduler=scheduler_of(settings))
    _check_grace(settings)
    return settings, scaled


def _check_grace(settings: SearchSettings) -> None:
    if settings.grace_epochs and settings.max_epochs and settings.grace_epochs > settings.max_epochs:
        raise SearchConfigError("grace_epochs", "{grace} exceeds {max_epochs} {max}",
                                grace=settings.grace_epochs, max=settings.max_epochs)


def check_settings(settings: SearchSettings) -> None:
    """Everything that can be refused before Ray starts is refused here (nothing is written yet): each
    setting alone, their combinations, the data, the tracking targets, the space and the budget."""
    check_fields(settings)
    if settings.data_dir is not None and not Path(settings.data_dir).expanduser().is_dir():
        raise SearchConfigError("data_dir", "{path} is not a directory", path=settings.data_dir)
    _check_grace(settings)
    if settings.sampler == "cmaes" and settings.objective != "accuracy":
        # Optuna's CmaEsSampler raises on a multi-objective study at its first proposal
        raise SearchConfigError("sampler", "cmaes optimises one objective; with {objective} {value} use "
                                "nsga2, tpe or random", value=settings.objective)
    if settings.sampler == "grid" and settings.objective != "accuracy":
        raise SearchConfigError("objective", "{value} needs a sampler; the grid sweep trains every point "
                                "(leave {objective} out)", value=settings.objective)
    n_train = TRAIN_IMAGES.get(settings.dataset)
    if settings.val_size is not None and n_train is not None and settings.val_size >= n_train:
        raise SearchConfigError("val_size", "{val} must be below the {n} training images of {dataset}",
                                val=settings.val_size, n=n_train, dataset=settings.dataset)
    from .tracking import check_tracking

    check_tracking(settings)
    if settings.budget_flops is None and settings.latency_budget_ms is None:
        raise SearchConfigError("budget_flops", "required (e.g. 4GFLOPs), unless a latency budget is given")
    if settings.latency_budget_ms is not None and settings.sampler == "grid":
        raise SearchConfigError("latency_budget_ms", "needs a sampler; the grid sweep's points are fixed")
    space = resolve_space(settings)
    try:
        if settings.sampler == "grid":
            grid_points(settings, space, budget_of(settings))  # wrong depths, unreachable budget
        else:
            FeasibleSampler(space, budget_of(settings))  # unreachable budget: the error gives the space's range
    except BudgetError as exc:
        raise SearchConfigError("budget_flops", "{error}", error=str(exc)) from None
    except ValueError as exc:  # "depths: ...", "cardinality: ...": the spaces name the setting first
        setting, _, why = str(exc).partition(": ")
        if setting not in ("depths", "cardinality", "match") or not why:
            setting, why = "space", str(exc)
        raise SearchConfigError(setting, "{why}", why=why) from None
    if settings.latency_budget_ms is not None:
        try:
            sampler_of(settings, space, budget_of(settings))
        except BudgetError as exc:
            raise SearchConfigError("latency_budget_ms", "{error}", error=str(exc)) from None


__all__ = [
    "CPU_FOLDER_RESOLUTION", "CPU_PRESET", "FULL_FLAGS", "FULL_PRESET", "GRID_ASHA_NOTE", "GRID_REFERENCES_NOTE",
    "TRAIN_IMAGES", "apply_preset", "budget_of", "check_settings", "cpu_folder_resolution", "dataset_shape",
    "expected_trials", "folder_resolution_line", "gpu_train_resolution", "grid_points", "is_folder", "outside_lines",
    "latency_cost_of", "latency_table_of", "proposals", "reference_designs", "resolve_space", "sampler_of",
    "scheduler_of", "train_config", "train_resolution",
    "validation_images",
]
