"""ResNeXt architectures as data, their analytic complexity, the search spaces and the FLOPs budget."""

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
from .complexity import Complexity, complexity


def build_model(arch: Architecture):
    """Build the torch module (torch is imported only here, so counting never needs it)."""
    from .model import build_model as _build

    return _build(arch)


__all__ = [
    "FORMAT", "Architecture", "ArchitectureError", "Complexity", "Stage", "build_model", "complexity",
    "load_architecture", "save_architecture", "template", "with_io",
]
