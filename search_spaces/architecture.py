"""A ResNeXt architecture as plain, frozen data, and its versioned JSON form (``resnext-arch/1``).

Everything else (the torch builder, the analytic complexity, the samplers, the exported results)
speaks this one type, so that what the search tried, what it exported and what `nas.train`
rebuilds are the same object.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT = "resnext-arch/1"
STEMS = ("imagenet", "cifar")
_TOP_FIELDS = ("format", "stem", "in_channels", "num_classes", "stages")
_STAGE_FIELDS = ("depth", "cardinality", "group_width", "out_channels")
# Far beyond any trainable network, small enough that counting its blocks is instant: larger is a typo.
MAX_DEPTH = 10_000
MAX_SIZE = 1_000_000
TEMPLATE_BASE_OUT = 256  # the paper's first-stage block output (Table 1); names say when it differs


class ArchitectureError(ValueError):
    """A malformed architecture; the message names the offending field."""


@dataclass(frozen=True)
class Stage:
    """Blocks that produce maps of one size and share their hyper-parameters (the paper's rule 1)."""

    depth: int  # number of blocks
    cardinality: int  # C, parallel paths = groups of the 3x3 conv
    group_width: int  # channels per path (d at stage 0; the paper doubles it per stage)
    out_channels: int  # block output width

    @property
    def width(self) -> int:
        """Bottleneck width C * group_width: the channels of the grouped 3x3 conv."""
        return self.cardinality * self.group_width


@dataclass(frozen=True)
class Architecture:
    stem: str
    in_channels: int
    num_classes: int
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        # Accept lists of Stage or dicts, store an immutable tuple of Stage (hashable, comparable).
        stages = tuple(s if isinstance(s, Stage) else Stage(**s) for s in self.stages)
        object.__setattr__(self, "stages", stages)
        validate(self.to_dict())

    # --- plain data ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "stem": self.stem,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "stages": [asdict(s) for s in self.stages],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> Architecture:
        validate(data)
        return cls(
            stem=data["stem"],
            in_channels=data["in_channels"],
            num_classes=data["num_classes"],
            stages=tuple(Stage(**{k: s[k] for k in _STAGE_FIELDS}) for s in data["stages"]),
        )

    # --- convenient views -----------------------------------------------------------------------
    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return tuple(s.cardinality for s in self.stages)

    @property
    def group_widths(self) -> tuple[int, ...]:
        return tuple(s.group_width for s in self.stages)

    def describe(self) -> str:
        """Short human name: '32x4d [3,4,6,3]' when C and d follow the paper's template, with the block
        output widths appended when they are not the template's 256, 512, ... ('8x21d [3,2,2,1] out128'):
        the base output width is searched, and two architectures differing only there must not share a name."""
        c0, d0 = self.stages[0].cardinality, self.stages[0].group_width
        templated = all(
            s.cardinality == c0 and s.group_width == d0 * 2**i for i, s in enumerate(self.stages)
        )
        depths = ",".join(str(d) for d in self.depths)
        name = (f"{c0}x{d0}d [{depths}]" if templated
                else " ".join(f"{s.cardinality}x{s.group_width}d" for s in self.stages) + f" [{depths}]")
        o0 = self.stages[0].out_channels
        if all(s.out_channels == o0 * 2**i for i, s in enumerate(self.stages)):
            return name if o0 == TEMPLATE_BASE_OUT else f"{name} out{o0}"
        return f"{name} out{','.join(str(s.out_channels) for s in self.stages)}"


def _is_int(value: Any) -> bool:
    # JSON integers only: bool is an int subclass in Python but is not a valid size.
    return isinstance(value, int) and not isinstance(value, bool)


def validate(data: Any) -> None:
    """Check a resnext-arch/1 object field by field; raise ArchitectureError naming the bad one."""
    if not isinstance(data, dict):
        raise ArchitectureError(f"architecture must be a JSON object, got {type(data).__name__}")
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise ArchitectureError(f"format: unsupported version {fmt!r}; expected {FORMAT!r}")
    for key in _TOP_FIELDS[1:]:
        if key not in data:
            raise ArchitectureError(f"{key}: missing field")
    extra = sorted(set(data) - set(_TOP_FIELDS))
    if extra:
        raise ArchitectureError(f"{extra[0]}: unknown field; accepted fields are {', '.join(_TOP_FIELDS)}")
    if data["stem"] not in STEMS:
        raise ArchitectureError(f"stem: unknown stem {data['stem']!r}; accepted: {', '.join(STEMS)}")
    for key in ("in_channels", "num_classes"):
        if not _is_int(data[key]) or not 0 < data[key] <= MAX_SIZE:
            raise ArchitectureError(f"{key}: must be a positive integer up to {MAX_SIZE:,}, got {data[key]!r}")
    stages = data["stages"]
    if not isinstance(stages, list | tuple) or not stages:
        raise ArchitectureError("stages: must be a non-empty list of stage objects")
    for i, stage in enumerate(stages):
        if isinstance(stage, Stage):
            stage = asdict(stage)
        if not isinstance(stage, dict):
            raise ArchitectureError(f"stages[{i}]: must be an object with fields {', '.join(_STAGE_FIELDS)}")
        for key in _STAGE_FIELDS:
            if key not in stage:
                raise ArchitectureError(f"stages[{i}].{key}: missing field")
            value, limit = stage[key], MAX_DEPTH if key == "depth" else MAX_SIZE
            if not _is_int(value) or not 0 < value <= limit:
                raise ArchitectureError(
                    f"stages[{i}].{key}: must be a positive integer up to {limit:,}, got {value!r}")
        extra = sorted(set(stage) - set(_STAGE_FIELDS))
        if extra:
            raise ArchitectureError(
                f"stages[{i}].{extra[0]}: unknown field; accepted fields are {', '.join(_STAGE_FIELDS)}"
            )


def load_architecture(path: str | Path) -> Architecture:
    """Read a resnext-arch/1 JSON file (plain JSON: nothing is ever unpickled)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ArchitectureError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise ArchitectureError(f"{path}: not valid JSON ({exc})") from None
    try:
        return Architecture.from_dict(data)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{path}: {exc}") from None


def _reject_constant(name: str) -> float:
    # json accepts NaN/Infinity by default; an architecture never contains them.
    raise ValueError(f"{name} is not allowed")


def save_architecture(arch: Architecture, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(arch.to_json() + "\n")
    return path


def template(
    depths: tuple[int, ...] | list[int],
    cardinality: int,
    bottleneck_width: int,
    *,
    stem: str | None = None,
    in_channels: int = 3,
    num_classes: int = 1000,
    base_out: int = 256,
) -> Architecture:
    """The paper's template: stage i has group width d * 2**i and output width 256 * 2**i.

    Four stages take the ImageNet stem (ResNeXt-50/101), three the CIFAR stem (ResNeXt-29), unless
    `stem` says otherwise.
    """
    if stem is None:
        stem = "imagenet" if len(depths) == 4 else "cifar"
    return Architecture(
        stem=stem,
        in_channels=in_channels,
        num_classes=num_classes,
        stages=tuple(
            Stage(depth=int(n), cardinality=cardinality, group_width=bottleneck_width * 2**i,
                  out_channels=base_out * 2**i)
            for i, n in enumerate(depths)
        ),
    )


def with_io(arch: Architecture, *, in_channels: int, num_classes: int) -> Architecture:
    """The same body with another input/output (a dataset's channels and classes)."""
    return Architecture(arch.stem, in_channels, num_classes, arch.stages)


__all__ = [
    "FORMAT", "STEMS", "Architecture", "ArchitectureError", "Stage", "load_architecture",
    "save_architecture", "template", "validate", "with_io",
]
