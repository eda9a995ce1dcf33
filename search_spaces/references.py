"""The reference designs a search trains beside its sampled trials: what a user would have picked by hand.

Without them nothing in a run says whether the search found anything better than the paper's networks.
They are, for a space with no `references` of its own, the paper's capacity-matched pair (Xie et al.,
Table 2: its claim is ResNeXt-50 32x4d against ResNet-50 1x64d at equal FLOPs): at the space's default
depths and template output width, C = 1 takes the width whose FLOPs are closest to the budget and C = 32
the width whose parameters are closest to that (`capacity_matched`, the grid sweep's own rule; at
4.089 GFLOPs: 1x64d and 32x4d). Where no width brings C = 1 into the window at the template's output
width, the next narrower output width of the space that does is taken (a budget far below the
template's). A space file names its own (`references`, search_spaces.spaces).

A design outside the budget's window [(1 - tolerance) * B, B] (ResNet-50's 4.09 GFLOPs at a 4 GFLOPs
budget; 32x4d costs 4-7% more than 1x64d) trains as its nearest feasible variant of the same C: the
feasible (base width, d, depths) with the smallest total relative change, sum |log(new / old)| over the
base width, d and each stage's depth (a narrower 1x62d before a shallower network, for example). Each
reference comes with the params that decode to it in the sampler's encoding (`FeasibleSampler.encode`),
so a search enqueues it as an ordinary Optuna trial that the sampler observes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .architecture import Architecture
from .budget import Budget, format_flops
from .complexity import complexity
from .sampling import BudgetError, FeasibleSampler, capacity_matched
from .spaces import SearchSpace

PAPER_CARDINALITIES = (1, 32)
# The paper's names for its ImageNet template points (stem, depths, base output width, C, d).
PAPER_NAMES = {("imagenet", (3, 4, 6, 3), 256, 1, 64): "ResNet-50 (1x64d)",
               ("imagenet", (3, 4, 6, 3), 256, 32, 4): "ResNeXt-50 (32x4d)"}


@dataclass(frozen=True)
class Reference:
    """A reference design as given (`design`) and as it trains (`arch`, inside the window), with the
    sampler params that decode to `arch`; `note` says how and why they differ ("" when they do not)."""

    name: str
    design: Architecture
    arch: Architecture
    params: dict
    flops: int
    note: str = ""


def paper_designs(space: SearchSpace, budget: Budget) -> list[tuple[str, Architecture]]:
    """The capacity-matched C = 1 and C = 32 points (those of the two the space has), as designed,
    whether or not they fit the window."""
    cs = [c for c in PAPER_CARDINALITIES if c in space.cardinalities]
    if not cs:
        return []
    # The template's output width, or the widest narrower one of the space at which the first point meets
    # the window (at 500 MFLOPs ResNet-50's layout leaves 1x1d at 256, 508 MFLOPs; at 128 a real width).
    bases = [space.base_out] + [b for b in sorted(space.base_widths, reverse=True) if b < space.base_out]
    at = next((b for b in bases if _meets(replace(space, base_out=b), budget, cs[0])), space.base_out)
    points = capacity_matched(replace(space, base_out=at), budget, cs, "params", space.default_depths, strict=False)
    out = []
    for p in points:
        s0 = p.arch.stages[0]
        key = (space.stem, tuple(p.arch.depths), s0.out_channels, p.cardinality, p.width)
        out.append((PAPER_NAMES.get(key, f"capacity-matched {p.arch.describe()}"), p.arch))
    return out


def _meets(space: SearchSpace, budget: Budget, cardinality: int) -> bool:
    """Some width d brings `cardinality` at the default depths and output width into the window."""
    return any(budget.contains(complexity(space.architecture(cardinality, d, space.default_depths),
                                          space.resolution).flops)
               for d in range(space.width_range[0], space.width_range[1] + 1))


def designs(space: SearchSpace, budget: Budget) -> list[tuple[str, Architecture]]:
    """The space file's references, else the paper's."""
    if space.references is None:
        return paper_designs(space, budget)
    return [(r.name, space.architecture(r.cardinality, r.width, r.depths, r.base_width)) for r in space.references]


def nearest_feasible(space: SearchSpace, budget: Budget, design: Architecture,
                     sampler: FeasibleSampler | None = None) -> Architecture | None:
    """The feasible architecture with the design's (first-stage) cardinality, C and d shared, closest to
    it by sum |log ratio| of base width, d and depths; None when no architecture with that C fits.
    `sampler`: the space's, when it is shared (its tables are reused)."""
    try:
        if sampler is None or not space.shared:
            sampler = FeasibleSampler(space if space.shared else replace(space, shared=True), budget)
        tables = sampler._ensure_tables()
    except BudgetError:
        return None
    s0 = design.stages[0]
    if s0.cardinality not in space.cardinalities:
        return None
    ci = space.cardinalities.index(s0.cardinality)
    has = tables.has[:, ci, :]  # [n_base, n_combos]
    if not has.any():
        return None
    w0 = space.width_range[0]
    bases = np.asarray(space.base_widths, dtype=float)[:, None]
    d = np.clip(s0.group_width - w0, tables.d_lo[:, ci, :], tables.d_hi[:, ci, :]) + w0  # best d per row
    d = np.where(has, d, s0.group_width)  # rows without a feasible d are masked below
    depth_change = np.abs(np.log(tables.combos / np.asarray(design.depths, dtype=float))).sum(axis=1)[None, :]
    dist = np.abs(np.log(bases / s0.out_channels)) + depth_change + np.abs(np.log(d / s0.group_width))
    bi, k = np.unravel_index(np.argmin(np.where(has, dist, np.inf)), dist.shape)
    return space.architecture(s0.cardinality, int(d[bi, k]), tables.combos[k], space.base_widths[bi])


def references(space: SearchSpace, budget: Budget) -> tuple[list[Reference], list[str]]:
    """The references a search in `space` at `budget` trains, in order, and a line for each design left
    out (no feasible variant, or the same architecture as an earlier reference). BudgetError when no
    architecture of the space meets the budget at all."""
    sampler = FeasibleSampler(space, budget)
    out: list[Reference] = []
    skipped: list[str] = []
    for name, design in designs(space, budget):
        try:
            arch, note = design, ""
            params = sampler.encode(design)
        except ValueError:
            arch = nearest_feasible(space, budget, design, sampler)
            if arch is None:
                skipped.append(f"reference {name} left out: no architecture with C={design.stages[0].cardinality} "
                               f"meets the budget {budget}")
                continue
            try:
                params = sampler.encode(arch)
            except ValueError:  # the free space's tables refuse a sliver of feasible sums (sampling.py)
                skipped.append(f"reference {name} left out: its nearest feasible variant {arch.describe()} is "
                               "outside what the sampler can propose")
                continue
            cost = complexity(design, space.resolution).flops
            note = (f"{design.describe()} costs {format_flops(cost)} ({100 * (cost / budget.flops - 1):+.3g}% of "
                    f"the budget), outside {format_flops(budget.low)} .. {format_flops(budget.high)}: trained as "
                    f"its nearest feasible variant {arch.describe()}")
        if any(r.arch == arch for r in out):
            skipped.append(f"reference {name} left out: it trains as {arch.describe()}, as an earlier reference does")
            continue
        out.append(Reference(name, design, arch, params, complexity(arch, space.resolution).flops, note))
    return out, skipped


__all__ = ["PAPER_CARDINALITIES", "Reference", "designs", "nearest_feasible", "paper_designs", "references"]
