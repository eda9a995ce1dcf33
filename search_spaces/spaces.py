"""Search spaces: which dimensions of a ResNeXt vary, and over what.

A space follows the paper's template: stage i outputs `base * 2**i` channels and its paths are
`d * 2**i` wide. The base output width is searched too (`base_widths`, default 64, 128, 256): with the
template's fixed 256 a budget far from the template's (0.5 GFLOPs on ImageNet) leaves room only for
d = 1-2, because the 1x1 convolutions into and out of 256..2048 channels alone take most of it.
`base_out` (256) stays the template's value: the capacity-matched grid sweep (Table 2) uses it.

With `shared=True` (the paper's rule) one cardinality C and one bottleneck width d
hold for every stage and only the depths vary per stage; with `shared=False` each stage picks its
own C and d as well.

A space may name its reference designs (`references`: the designs its author would pick by hand;
search_spaces.references trains them in every search); without them, the paper's capacity-matched C = 1
and C = 32 points are the references.

A space is a JSON file (`load_space`, format resnext-space/1; `nas.search --space-file SPACE.json`); the
built-in spaces are such files, shipped in search_spaces/space_files/ and read by the same code. Every
field is checked with a one-line error naming the file and the field (`SPACE.json: depth_ranges[2]: ...`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .architecture import STEMS, Architecture, Stage

SPACE_FORMAT = "resnext-space/1"
SPACE_FILES = Path(__file__).with_name("space_files")
# The sampler tabulates every combination of per-stage depths (sampling.py): resnext-imagenet has 8,640;
# a space far beyond that is more likely a typo than a wish, and would take minutes and gigabytes.
MAX_DEPTH_COMBINATIONS = 200_000
MAX_WIDTH = 1024  # bottleneck width d, cardinality C and base widths: far beyond any ResNeXt


@dataclass(frozen=True)
class ReferenceDesign:
    """A design a space file marks as a reference: shared C and d (stage-1 units), per-stage depths, and
    the first stage's output width (None: the space's base_out)."""

    name: str
    cardinality: int
    width: int
    depths: tuple[int, ...]
    base_width: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "cardinality": self.cardinality, "width": self.width, "depths": list(self.depths)}
        return out if self.base_width is None else {**out, "base_width": self.base_width}


@dataclass(frozen=True)
class SearchSpace:
    name: str
    stem: str
    resolution: int  # where a budget is measured (the template's nominal input size)
    depth_ranges: tuple[tuple[int, int], ...]  # inclusive (min, max) blocks per stage
    default_depths: tuple[int, ...]  # the template's (3,4,6,3) / (3,3,3): the grid sweep's default
    cardinalities: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    width_range: tuple[int, int] = (1, 128)  # bottleneck width d of stage 1 (inclusive)
    shared: bool = True
    base_out: int = 256  # the template's (grid sweep, default architecture)
    base_widths: tuple[int, ...] = (64, 128, 256)  # what the samplers choose from
    in_channels: int = 3
    num_classes: int = 1000
    references: tuple[ReferenceDesign, ...] | None = None  # None: the paper's capacity-matched C=1, C=32

    def __post_init__(self) -> None:
        if len(self.depth_ranges) != len(self.default_depths):
            raise ValueError("depth_ranges and default_depths must have one entry per stage")
        for lo, hi in (*self.depth_ranges, self.width_range):
            if not 1 <= lo <= hi:
                raise ValueError(f"bad range ({lo}, {hi}) in search space {self.name}")
        if not self.cardinalities or min(self.cardinalities) < 1:
            raise ValueError("cardinalities must be positive")
        if not self.base_widths or min(self.base_widths) < 1 or list(self.base_widths) != sorted(set(self.base_widths)):
            raise ValueError(f"base_widths must be positive and increasing, got {self.base_widths}")
        if self.base_out < 1:
            raise ValueError(f"base_out must be positive, got {self.base_out}")

    @property
    def num_stages(self) -> int:
        return len(self.depth_ranges)

    def with_io(self, in_channels: int, num_classes: int) -> SearchSpace:
        """The same space for a dataset with other channels/classes (the budget counts them too)."""
        return replace(self, in_channels=in_channels, num_classes=num_classes)

    def with_resolution(self, resolution: int) -> SearchSpace:
        if resolution < 1:
            raise ValueError(f"resolution must be a positive integer, got {resolution}")
        return replace(self, resolution=resolution)

    def architecture(self, cardinalities, widths, depths, base_out: int | None = None) -> Architecture:
        """Architecture from per-stage C, d (stage-1 units: path width d * 2**i) and depths; stage i
        outputs `base_out * 2**i` channels (default: the template's `self.base_out`).

        A single int for `cardinalities` or `widths` is shared by all stages (the paper's rule).
        """
        n = self.num_stages
        base_out = self.base_out if base_out is None else int(base_out)
        cs = [cardinalities] * n if isinstance(cardinalities, int) else list(cardinalities)
        ds = [widths] * n if isinstance(widths, int) else list(widths)
        return Architecture(
            stem=self.stem,
            in_channels=self.in_channels,
            num_classes=self.num_classes,
            stages=tuple(
                Stage(depth=int(depths[i]), cardinality=int(cs[i]), group_width=int(ds[i]) * 2**i,
                      out_channels=base_out * 2**i)
                for i in range(n)
            ),
        )


class SpaceFileError(ValueError):
    """A space file that cannot be used; the message is `FILE: FIELD: why`."""


_REQUIRED = ("stem", "resolution", "depth_ranges", "cardinalities", "width_range", "base_widths")
_OPTIONAL = ("format", "name", "description", "default_depths", "base_out", "in_channels", "num_classes", "shared",
             "references")
_REFERENCE_FIELDS = ("name", "cardinality", "width", "depths", "base_width")


def _int(value: Any, where: str, lo: int = 1, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpaceFileError(f"{where}: expected an integer, got {json.dumps(value)}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise SpaceFileError(f"{where}: expected an integer {bound}, got {value}")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise SpaceFileError(f"{where}: expected a non-empty list, got {json.dumps(value)}")
    return value


def _range(value: Any, where: str, hi: int) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise SpaceFileError(f"{where}: expected [min, max], got {json.dumps(value)}")
    lo_, hi_ = (_int(v, where, 1, hi) for v in value)
    if lo_ > hi_:
        raise SpaceFileError(f"{where}: min {lo_} exceeds max {hi_}")
    return lo_, hi_


def space_from_dict(data: Any, source: str) -> SearchSpace:
    """A SearchSpace from a resnext-space/1 dict; SpaceFileError `SOURCE: FIELD: why` for anything wrong."""
    def where(field: str) -> str:
        return f"{source}: {field}"

    try:
        return _space_from_dict(data, source, where)
    except SpaceFileError as exc:
        raise SpaceFileError(str(exc) if str(exc).startswith(f"{source}: ") else f"{source}: {exc}") from None


def _space_from_dict(data: Any, source: str, where) -> SearchSpace:
    if not isinstance(data, dict):
        raise SpaceFileError(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise SpaceFileError(f"{unknown[0]}: unknown field; accepted: {', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [f for f in _REQUIRED if f not in data]
    if missing:
        raise SpaceFileError(f"{missing[0]}: required field missing")
    if data.get("format", SPACE_FORMAT) != SPACE_FORMAT:
        raise SpaceFileError(f"format: expected {SPACE_FORMAT!r}, got {json.dumps(data['format'])}")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        raise SpaceFileError(f"name: expected a non-empty string, got {json.dumps(name)}")
    if data["stem"] not in STEMS:
        raise SpaceFileError(f"stem: expected one of {', '.join(STEMS)}, got {json.dumps(data['stem'])}")
    resolution = _int(data["resolution"], "resolution", 1, 4096)
    depth_ranges = tuple(_range(r, f"depth_ranges[{i}]", 1000)
                         for i, r in enumerate(_list(data["depth_ranges"], "depth_ranges")))
    if len(depth_ranges) > 8:
        raise SpaceFileError(f"depth_ranges: at most 8 stages (each halves the maps), got {len(depth_ranges)}")
    combos = 1
    for lo, hi in depth_ranges:
        combos *= hi - lo + 1
    if combos > MAX_DEPTH_COMBINATIONS:
        raise SpaceFileError(f"depth_ranges: {combos:,} depth combinations; at most {MAX_DEPTH_COMBINATIONS:,} "
                             "(the sampler tabulates each one)")
    if "default_depths" in data:
        defaults = _list(data["default_depths"], "default_depths")
        if len(defaults) != len(depth_ranges):
            raise SpaceFileError(f"default_depths: expected one depth per stage ({len(depth_ranges)}), "
                                 f"got {len(defaults)}")
        for i, (d, (lo, hi)) in enumerate(zip(defaults, depth_ranges, strict=True)):
            _int(d, f"default_depths[{i}]", lo, hi)
        default_depths = tuple(defaults)
    else:  # the grid sweep's fixed depths: 3 per stage (the templates' typical count) within each range
        default_depths = tuple(min(hi, max(lo, 3)) for lo, hi in depth_ranges)
    cards = [_int(c, f"cardinalities[{i}]", 1, MAX_WIDTH)
             for i, c in enumerate(_list(data["cardinalities"], "cardinalities"))]
    if len(set(cards)) != len(cards):
        raise SpaceFileError(f"cardinalities: values must be distinct, got {cards}")
    width_range = _range(data["width_range"], "width_range", MAX_WIDTH)
    widths = [_int(w, f"base_widths[{i}]", 1, 16 * MAX_WIDTH)
              for i, w in enumerate(_list(data["base_widths"], "base_widths"))]
    if widths != sorted(set(widths)):
        raise SpaceFileError(f"base_widths: expected increasing values, got {widths}")
    shared = data.get("shared", True)
    if not isinstance(shared, bool):
        raise SpaceFileError(f"shared: expected true or false, got {json.dumps(shared)}")
    references = None
    if "references" in data:
        if not isinstance(data["references"], list):
            raise SpaceFileError(f"references: expected a list (possibly empty), got {json.dumps(data['references'])}")
        references = tuple(_reference(r, f"references[{i}]", cards, depth_ranges)
                           for i, r in enumerate(data["references"]))
        names = [r.name for r in references]
        if len(set(names)) != len(names):
            raise SpaceFileError(f"references: names must be distinct, got {names}")
    return SearchSpace(
        references=references,
        name=name, stem=data["stem"], resolution=resolution, depth_ranges=depth_ranges,
        default_depths=default_depths, cardinalities=tuple(sorted(cards)), width_range=width_range, shared=shared,
        base_out=_int(data.get("base_out", 256), "base_out", 1, 16 * MAX_WIDTH), base_widths=tuple(widths),
        in_channels=_int(data.get("in_channels", 3), "in_channels", 1, 1024),
        num_classes=_int(data.get("num_classes", 1000), "num_classes", 1, 1_000_000),
    )


def _reference(value: Any, where: str, cards: list[int], depth_ranges) -> ReferenceDesign:
    """One entry of `references`: {"name", "cardinality", "width", "depths", optional "base_width"}. The
    cardinality must be the space's (a reference outside the budget's window is moved to its nearest
    feasible variant of the same C at search time); the width and depths only need to be sensible."""
    if not isinstance(value, dict):
        raise SpaceFileError(f"{where}: expected an object with {', '.join(_REFERENCE_FIELDS)}, "
                             f"got {json.dumps(value)}")
    unknown = sorted(set(value) - set(_REFERENCE_FIELDS))
    if unknown:
        raise SpaceFileError(f"{where}.{unknown[0]}: unknown field; accepted: {', '.join(_REFERENCE_FIELDS)}")
    missing = [f for f in _REFERENCE_FIELDS[:4] if f not in value]
    if missing:
        raise SpaceFileError(f"{where}.{missing[0]}: required field missing")
    name = value["name"]
    if not isinstance(name, str) or not name.strip():
        raise SpaceFileError(f"{where}.name: expected a non-empty string, got {json.dumps(name)}")
    c = _int(value["cardinality"], f"{where}.cardinality", 1, MAX_WIDTH)
    if c not in cards:
        raise SpaceFileError(f"{where}.cardinality: {c} is not among the space's cardinalities {sorted(cards)}")
    width = _int(value["width"], f"{where}.width", 1, MAX_WIDTH)
    depths = _list(value["depths"], f"{where}.depths")
    if len(depths) != len(depth_ranges):
        raise SpaceFileError(f"{where}.depths: expected one depth per stage ({len(depth_ranges)}), got {len(depths)}")
    depths = tuple(_int(d, f"{where}.depths[{i}]", 1, 1000) for i, d in enumerate(depths))
    base = value.get("base_width")
    if base is not None:
        base = _int(base, f"{where}.base_width", 1, 16 * MAX_WIDTH)
    return ReferenceDesign(name.strip(), c, width, depths, base)


def load_space(path: str | Path) -> SearchSpace:
    """The search space a resnext-space/1 JSON file defines (see search_spaces/space_files/*.json)."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceFileError(f"{shown}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceFileError(f"{shown}: unreadable ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SpaceFileError(f"{shown}: not JSON ({exc})") from None
    return space_from_dict(data, shown)


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """The space as a resnext-space/1 dict (what load_space reads back)."""
    return {"format": SPACE_FORMAT, "name": space.name, "stem": space.stem, "resolution": space.resolution,
            "depth_ranges": [list(r) for r in space.depth_ranges], "default_depths": list(space.default_depths),
            "cardinalities": list(space.cardinalities), "width_range": list(space.width_range),
            "base_widths": list(space.base_widths), "base_out": space.base_out, "in_channels": space.in_channels,
            "num_classes": space.num_classes, "shared": space.shared,
            **({} if space.references is None else {"references": [r.to_dict() for r in space.references]})}


# The built-in spaces: the JSON files shipped with the package, loaded by the code users' files go through.
SPACES: dict[str, SearchSpace] = {name: load_space(SPACE_FILES / f"{name}.json")
                                   for name in ("resnext-imagenet", "resnext-cifar")}


def get_space(name: str, *, shared: bool = True) -> SearchSpace:
    try:
        space = SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; accepted: {', '.join(SPACES)}") from None
    return space if shared else replace(space, shared=False, name=f"{name}-free")
