"""ResNeXt architectures as data, their analytic complexity, the search spaces and the FLOPs budget.

This root is the package's public API: other packages import from here, not from its modules.
torch is imported only by `build_model` (on purpose: counting, sampling and the command lines'
validation never need it).

Modules:
    architecture.py  Architecture and Stage as frozen data; resnext-arch/1 JSON (load/save_architecture)
    complexity.py    exact FLOPs, parameters and activations per stage; feature-map sizes per resolution
    memory.py        a training's peak memory estimated from the architecture, batch and resolution
    spaces.py        SearchSpace, the built-in spaces (space_files/*.json) and resnext-space/1 files
    budget.py        Budget: the FLOPs string parsed, and its feasibility window
    sampling.py      FeasibleSampler: Optuna proposals feasible by construction; capacity-matched grids
    references.py    the reference designs every search trains: the paper's, or the space file's
    model.py         build_model: the torch module (torchvision's ResNeXt names)
    latency.py       a device's latency table (stem, blocks, head) and the predictor: nas.profile's
"""

from .architecture import (
    FORMAT,
    Architecture,
    ArchitectureError,
    Stage,
    load_architecture,
    save_architecture,
    template,
    with_io,
)
from .budget import Budget, format_flops, parse_flops
from .complexity import Complexity, complexity, smallest_resolution, stage_map_sizes
from .latency import (
    LatencyError,
    LatencyTable,
    TableMeta,
    architecture_keys,
    cache_dir,
    current_meta,
    latency_cost,
    load_table,
    measure_architecture,
    measure_table,
    open_table,
    space_keys,
    time_per_gflop,
)
from .memory import MemoryEstimate, training_memory
from .references import Reference, references
from .sampling import (
    AdditiveCost,
    BudgetError,
    FeasibleSampler,
    MatchedPoint,
    capacity_matched,
    feasible_widths,
    flops_range,
    propose_many,
)
from .spaces import SPACES, ReferenceDesign, SearchSpace, SpaceFileError, get_space, load_space, space_to_dict


def build_model(arch: Architecture):
    """Build the torch module (torch is imported only here, so counting never needs it)."""
    from .model import build_model as _build

    return _build(arch)


__all__ = [
    "Architecture", "ArchitectureError", "Budget", "BudgetError", "Complexity", "FORMAT", "FeasibleSampler",
    "MatchedPoint", "MemoryEstimate", "Reference", "ReferenceDesign", "SPACES", "SearchSpace", "SpaceFileError",
    "Stage", "build_model", "capacity_matched", "complexity", "flops_range", "format_flops", "get_space",
    "load_architecture", "load_space", "parse_flops", "propose_many", "references", "save_architecture",
    "smallest_resolution", "space_to_dict", "stage_map_sizes", "template", "training_memory", "with_io",
    "AdditiveCost", "LatencyError", "LatencyTable", "latency_cost", "TableMeta", "architecture_keys",
    "cache_dir", "current_meta", "feasible_widths",
    "load_table", "measure_architecture", "measure_table", "open_table", "space_keys", "time_per_gflop",
]
