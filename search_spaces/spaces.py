"""Search spaces: which dimensions of a ResNeXt vary, and over what.

A space follows the paper's template: stage i outputs `base * 2**i` channels and its paths are
`d * 2**i` wide. The base output width is searched too (`base_widths`, default 64, 128, 256): with the
template's fixed 256 a budget far from the template's (0.5 GFLOPs on ImageNet) leaves room only for
d = 1-2, because the 1x1 convolutions into and out of 256..2048 channels alone take most of it.
`base_out` (256) stays the template's value: the capacity-matched grid sweep (Table 2) uses it.

With `shared=True` (the paper's rule) one cardinality C and one bottleneck width d
hold for every stage and only the depths vary per stage; with `shared=False` each stage picks its
own C and d as well.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .architecture import Architecture, Stage


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


SPACES: dict[str, SearchSpace] = {
    # ResNeXt-50/101 family: ImageNet stem, 4 stages, budgets measured at 224x224.
    "resnext-imagenet": SearchSpace(
        name="resnext-imagenet", stem="imagenet", resolution=224,
        depth_ranges=((1, 6), (1, 8), (1, 30), (1, 6)), default_depths=(3, 4, 6, 3),
    ),
    # The paper's CIFAR ResNeXt-29 family: 3x3 stem, 3 stages, budgets measured at 32x32.
    "resnext-cifar": SearchSpace(
        name="resnext-cifar", stem="cifar", resolution=32,
        depth_ranges=((1, 9), (1, 9), (1, 9)), default_depths=(3, 3, 3), num_classes=10,
    ),
}


def get_space(name: str, *, shared: bool = True) -> SearchSpace:
    try:
        space = SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; accepted: {', '.join(SPACES)}") from None
    return space if shared else replace(space, shared=False, name=f"{name}-free")
