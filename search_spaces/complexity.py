"""Analytic complexity of an Architecture: FLOPs, parameters and activations, per stage.

Conventions (the ResNeXt paper's, torchvision's `_ops` and pycls'): FLOPs are multiply-adds of
conv and linear layers (BN, ReLU, pooling and the residual add are not counted); params are exact,
BN's affine weights included; activations are the output elements of conv and linear layers
(pycls). Nothing here builds a model or needs torch: counting one architecture takes microseconds,
which is what lets the sampler test feasibility of thousands of candidates per suggestion.

The block formulas also accept numpy arrays for `cardinality`/`group_width`, which the sampler
uses to tabulate every (C, d) at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .architecture import Architecture

STEM_CHANNELS = 64


@dataclass(frozen=True)
class Cost:
    """FLOPs, params and activations of a part. The fields are ints, or numpy int arrays when the block
    formulas are evaluated for many (C, d) at once (search_spaces.sampling)."""

    flops: int
    params: int
    activations: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.params + other.params,
                    self.activations + other.activations)


@dataclass(frozen=True)
class StageComplexity:
    name: str
    cost: Cost
    out_resolution: int  # spatial size of the maps this part produces (square inputs)

    @property
    def flops(self) -> int:
        return self.cost.flops

    @property
    def params(self) -> int:
        return self.cost.params

    @property
    def activations(self) -> int:
        return self.cost.activations


@dataclass(frozen=True)
class Complexity:
    resolution: int
    flops: int
    params: int
    activations: int
    parts: tuple[StageComplexity, ...]  # stem, stage1..N, head

    def as_dict(self) -> dict:
        return {
            "resolution": self.resolution,
            "flops": self.flops,
            "params": self.params,
            "activations": self.activations,
            "parts": [{"name": p.name, **asdict(p.cost), "out_resolution": p.out_resolution}
                      for p in self.parts],
        }


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def conv_cost(c_in, c_out, kernel: int, out_hw: int, groups=1) -> Cost:
    """Cost of a bias-free conv producing out_hw x out_hw maps."""
    params = c_in * c_out * kernel * kernel // groups
    return Cost(params * out_hw * out_hw, params, c_out * out_hw * out_hw)


def bn_cost(channels) -> Cost:
    """BatchNorm: its affine weight and bias; no FLOPs or activations by the conventions above."""
    return Cost(0, 2 * channels, 0)


def block_cost(c_in: int, c_out: int, cardinality, group_width, stride: int, in_hw: int) -> tuple[Cost, int]:
    """Cost of one bottleneck block and the spatial size it produces."""
    width = cardinality * group_width
    out_hw = conv_out(in_hw, 3, stride, 1)
    cost = (conv_cost(c_in, width, 1, in_hw)
            # grouped 3x3: each of the C paths maps group_width -> group_width channels
            + conv_cost(width, width, 3, out_hw, groups=cardinality)
            + conv_cost(width, c_out, 1, out_hw)
            + bn_cost(width + width + c_out))
    if stride != 1 or c_in != c_out:
        cost = cost + conv_cost(c_in, c_out, 1, out_hw) + bn_cost(c_out)
    return cost, out_hw


def stem_cost(stem: str, in_channels: int, resolution: int) -> tuple[Cost, int]:
    """Cost of the stem and the spatial size it hands to stage 1."""
    if stem == "imagenet":  # 7x7/2 conv, BN, ReLU, 3x3/2 max-pool
        hw = conv_out(resolution, 7, 2, 3)
        return conv_cost(in_channels, STEM_CHANNELS, 7, hw) + bn_cost(STEM_CHANNELS), conv_out(hw, 3, 2, 1)
    hw = resolution  # cifar: 3x3/1 conv, BN, ReLU
    return conv_cost(in_channels, STEM_CHANNELS, 3, hw) + bn_cost(STEM_CHANNELS), hw


def head_cost(c_in: int, num_classes: int) -> Cost:
    """Global average pool (free) + linear with bias."""
    return Cost(c_in * num_classes, c_in * num_classes + num_classes, num_classes)


def stage_cost(c_in: int, stage, index: int, in_hw: int) -> tuple[Cost, int]:
    """Cost of stage `index` (its first block downsamples unless it is the first stage)."""
    total, hw = Cost(0, 0, 0), in_hw
    for b in range(stage.depth):
        stride = 2 if (b == 0 and index > 0) else 1
        cost, hw = block_cost(c_in if b == 0 else stage.out_channels, stage.out_channels,
                              stage.cardinality, stage.group_width, stride, hw)
        total = total + cost
    return Cost(int(total.flops), int(total.params), int(total.activations)), hw


def complexity(arch: Architecture, resolution: int = 224) -> Complexity:
    """FLOPs, params and activations of `arch` on resolution x resolution inputs."""
    if resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution}")
    stem, hw = stem_cost(arch.stem, arch.in_channels, resolution)
    parts = [StageComplexity("stem", stem, hw)]
    total, c_in = stem, STEM_CHANNELS
    for i, stage in enumerate(arch.stages):
        cost, hw = stage_cost(c_in, stage, i, hw)
        parts.append(StageComplexity(f"stage{i + 1}", cost, hw))
        total, c_in = total + cost, stage.out_channels
    head = head_cost(c_in, arch.num_classes)
    parts.append(StageComplexity("head", head, 1))
    total = total + head
    return Complexity(resolution, total.flops, total.params, total.activations, tuple(parts))


def stage_map_sizes(arch: Architecture, resolution: int) -> list[int]:
    """The side of each stage's output maps at `resolution` (it depends on the stem, the strides and the
    resolution, not on C, d or depth)."""
    return [p.out_resolution for p in complexity(arch, resolution).parts if p.name.startswith("stage")]


def smallest_resolution(arch: Architecture, min_map: int = 2, start: int = 1) -> int:
    """The smallest input resolution >= `start` at which every stage works on maps of at least
    `min_map` x `min_map`: below 2x2 a 3x3 (grouped) convolution sees only its centre tap, so that
    stage's cardinality is barely tested. 33 for the ImageNet stem on four stages (28 leaves 1x1)."""
    resolution = max(1, start)
    while min(stage_map_sizes(arch, resolution)) < min_map:
        resolution += 1
    return resolution
