"""Budget-feasible sampling: an Optuna define-by-run function that proposes only feasible architectures.

Why by hand: neither Optuna nor Ray Tune has hard constraints (`trial.set_constraint` is only a soft
penalty). What this module adds is an encoding of the feasible set that the samplers can model.

The encoding (why it looks like this):
- Every Optuna parameter has the SAME distribution in every trial. Multivariate TPE and CMA-ES model
  jointly only the parameters in Optuna's `IntersectionSearchSpace` (those whose distribution is
  identical in every finished trial); a range that shrinks with earlier choices drops out of it and is
  sampled univariately, pooled over all cardinalities. The sampler before this one suggested such
  ranges: at 4 GFLOPs only cardinality, depth_1 and depth_2 were modelled jointly, so TPE could not
  learn "at C=32 take the top of the (2-11) width range" since C=1's widths (27-126) shared the same
  one-dimensional model. CMA-ES ignores categoricals and was random on everything but two depths.
- So the first choice is an integer index over a fixed list (`cardinality_index` into the
  cardinalities that can meet the budget; `base_width_index` in the free space), and every later
  choice is a float `*_pos` in [0, 1]: its position within the values that still leave a feasible
  completion given the earlier choices, decoded as `allowed[min(int(pos * n), n - 1)]`.
- Decoding is exact and deterministic: `FeasibleSampler.decode(trial.params)` is the architecture that
  trains, always. The sampler before moved a suggested depth that fell into a hole of its range to the
  nearest allowed value (5-10% of proposals), so Optuna recorded values that never trained; an index
  into the allowed set has no holes.
- The trained values are recorded too (`trial.set_user_attr`: cardinality, width, base_width, depths)
  for importance plots and figures; positions are not interpretable on their own.

Decoding order, shared C and d (the paper's rule): C, base output width, width d, then the depths in
stage order. Width before depths was measured against depths before width with
benchmarks/sampler_regret.py (docs/performance.md, "Sampler"); see `_SharedTables`. The FLOPs of every
(base, C, d, depths) are tabulated once with numpy (FLOPs are linear in each stage's depth and grow
with d, so each (base, C, depths) has one contiguous feasible d-interval).

Free C and d per stage: stage costs add up, so for each stage suffix a set of exactly reachable FLOPs
sums is precomputed (the smallest and largest sum per bucket of width tolerance*budget/64); a choice
is allowed only if one of those exact sums completes it into the window. The sets are subsets of what
is reachable, so a choice let through is always feasible; one refused could at worst have been feasible
through a sum strictly inside a bucket, which costs nothing but a sliver of the space. Order: base
width, then per stage depth, C, d.

The base output width (stage i outputs base * 2**i channels) is searched because with the template's
fixed 256 a budget far from 4 GFLOPs forces degenerate networks; `docs/performance.md` lists the d
ranges this gives at 0.5, 1, 4 and 16 GFLOPs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .architecture import Architecture
from .budget import Budget, format_flops
from .complexity import STEM_CHANNELS, block_cost, complexity, head_cost, stem_cost
from .spaces import SearchSpace


class BudgetError(ValueError):
    """The budget cannot be met by any architecture of the space."""


@dataclass(frozen=True)
class AdditiveCost:
    """A second cost that adds up over the stem, the blocks and the head like FLOPs do (a predicted latency:
    search_spaces.latency.latency_cost), and its window [low, high]. `terms[base_out]` is (stem + head,
    ((first, repeat) per stage)): arrays [n_cardinalities, n_widths] of the first block's and a repeated
    block's cost; inf where unknown (never proposed). Plain arrays: it pickles with the sampler."""

    name: str  # what it is, for messages ("latency")
    unit: str  # "ms"
    low: float
    high: float
    terms: dict[int, tuple[float, tuple[tuple[np.ndarray, np.ndarray], ...]]]

    def of(self, arch: Architecture, space: SearchSpace) -> float:
        """The cost of one architecture of `space` (C, d from the space's lists)."""
        base, stages = self.terms[arch.stages[0].out_channels]
        total = base
        for i, (s, (first, repeat)) in enumerate(zip(arch.stages, stages, strict=True)):
            ci = space.cardinalities.index(s.cardinality)
            di = s.group_width // 2**i - space.width_range[0]
            total += first[ci, di] + (s.depth - 1) * repeat[ci, di]
        return float(total)

    def contains(self, value: float) -> bool:
        # floats summed in another order (the tables' einsum, a table's predict) differ in the last bits
        slack = 1e-9 * max(abs(self.low), abs(self.high))
        return self.low - slack <= value <= self.high + slack


@dataclass(frozen=True)
class _StageTerms:
    """FLOPs of stage i for every (C, d): first block + (depth - 1) * repeated block."""

    first: np.ndarray  # [n_cardinalities, n_widths]
    repeat: np.ndarray


def _stage_terms(space: SearchSpace, base_out: int) -> tuple[int, list[_StageTerms]]:
    """The one place that calls complexity's per-layer costs (stem, blocks, head)."""
    c = np.asarray(space.cardinalities, dtype=np.int64)[:, None]
    d = np.arange(space.width_range[0], space.width_range[1] + 1, dtype=np.int64)[None, :]
    stem, hw = stem_cost(space.stem, space.in_channels, space.resolution)
    c_in, terms = STEM_CHANNELS, []
    for i in range(space.num_stages):
        out = base_out * 2**i
        gw = d * 2**i
        first, hw = block_cost(c_in, out, c, gw, 1 if i == 0 else 2, hw)
        repeat, _ = block_cost(out, out, c, gw, 1, hw)
        terms.append(_StageTerms(np.broadcast_to(first.flops, (c.size, d.size)).astype(np.int64),
                                 np.broadcast_to(repeat.flops, (c.size, d.size)).astype(np.int64)))
        c_in = out
    base = stem.flops + head_cost(c_in, space.num_classes).flops
    return base, terms


def flops_range(space: SearchSpace) -> tuple[int, int]:
    """Cheapest and dearest architecture of the space, in FLOPs at the space's resolution."""
    lo = [min(space.cardinalities), space.width_range[0], [r[0] for r in space.depth_ranges],
          min(space.base_widths)]
    hi = [max(space.cardinalities), space.width_range[1], [r[1] for r in space.depth_ranges],
          max(space.base_widths)]
    return (complexity(space.architecture(*lo), space.resolution).flops,
            complexity(space.architecture(*hi), space.resolution).flops)


def _at(pos: float, allowed: np.ndarray) -> int:
    """The value at relative position `pos` in [0, 1] of the sorted allowed values (exact, no holes)."""
    return int(allowed[min(int(pos * len(allowed)), len(allowed) - 1)])


def _unreachable(space: SearchSpace, budget: Budget, cost: AdditiveCost | None = None,
                 span: tuple[float, float] | None = None) -> BudgetError:
    lo, hi = flops_range(space)
    if cost is not None:
        known = (f"the architectures in the FLOPs window take {span[0]:.3g} .. {span[1]:.3g} {cost.unit}"
                 if span else "the table predicts none of the architectures in the FLOPs window")
        return BudgetError(
            f"no architecture of space {space.name} at {space.resolution}x{space.resolution} lies in the "
            f"{cost.name} window {cost.low:.3g} .. {cost.high:.3g} {cost.unit} and the FLOPs window "
            f"{format_flops(budget.low)} .. {format_flops(budget.high)}: {known}")
    return BudgetError(
        f"budget {format_flops(budget.flops)} (tolerance {budget.tolerance:g}) cannot be met by space "
        f"{space.name} at {space.resolution}x{space.resolution}: its architectures cost "
        f"{format_flops(lo)} .. {format_flops(hi)}"
    )


class _Params:
    """Parameter source for decoding: an Optuna trial (suggests) or a finished trial's params (reads).
    Each choice picks one of the `allowed` values (sorted): by index (`pick_index`, an integer parameter)
    or by relative position (`pick`, a float in [0, 1])."""

    def __init__(self, trial: Any = None, params: dict | None = None) -> None:
        self.trial, self.params = trial, params

    def pick_index(self, name: str, allowed: np.ndarray) -> int:
        if self.trial is None:
            return int(allowed[int(self.params[name])])
        return int(allowed[self.trial.suggest_int(name, 0, len(allowed) - 1)])

    def pick(self, name: str, allowed: np.ndarray) -> int:
        if self.trial is None:
            return _at(float(self.params[name]), allowed)
        return _at(self.trial.suggest_float(name, 0.0, 1.0), allowed)


class _Encoder:
    """The inverse of decoding: each choice takes the value `wanted[name]` and records the parameter that
    decodes to it (an index, or the middle of its position's slot, (i + 0.5) / n, so that decoding's
    `int(pos * n)` lands on i exactly). A wanted value that is not allowed there is not encodable."""

    def __init__(self, wanted: dict[str, int]) -> None:
        self.wanted, self.params = wanted, {}

    def _find(self, name: str, allowed: np.ndarray) -> int:
        hits = np.flatnonzero(np.asarray(allowed) == self.wanted[name])
        if not hits.size:
            raise ValueError(f"{name}: value {self.wanted[name]} is not allowed there (infeasible at this budget)")
        return int(hits[0])

    def pick_index(self, name: str, allowed: np.ndarray) -> int:
        i = self._find(name, allowed)
        self.params[name] = i
        return int(allowed[i])

    def pick(self, name: str, allowed: np.ndarray) -> int:
        i = self._find(name, allowed)
        self.params[name] = (i + 0.5) / len(allowed)
        return int(allowed[i])


class FeasibleSampler:
    """Define-by-run search space for Optuna (and Ray Tune's OptunaSearch): feasible architectures only.

    Calling it with an Optuna trial suggests the parameters and returns {"arch": resnext-arch/1 dict};
    `propose(trial)` returns the Architecture itself and records its values as user attributes;
    `decode(params)` turns a trial's recorded params back into exactly that Architecture. Picklable
    (Ray ships it to its searcher); the tables are rebuilt on first use after unpickling.
    """

    def __init__(self, space: SearchSpace, budget: Budget, *, width_first: bool = True,
                 cost: AdditiveCost | None = None) -> None:
        if cost is not None and not space.shared:
            raise BudgetError(f"a {cost.name} budget needs a space with C and d shared by all stages "
                              f"({space.name} has them free per stage)")
        self.space, self.budget, self.width_first, self.cost = space, budget, width_first, cost
        self._tables: Any = None
        self._ensure_tables()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tables": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"width_first": True, "cost": None, **state})

    def __call__(self, trial: Any) -> dict:
        return {"arch": self.propose(trial).to_dict()}

    def _ensure_tables(self) -> Any:
        if self._tables is None:
            if self.space.shared:
                self._tables = _SharedTables(self.space, self.budget, self.width_first, self.cost)
            else:
                self._tables = _FreeTables(self.space, self.budget)
            if not self._tables.feasible:
                raise _unreachable(self.space, self.budget, self.cost, getattr(self._tables, "cost_span", None))
        return self._tables

    def propose(self, trial: Any) -> Architecture:
        arch = self._ensure_tables().decode(_Params(trial=trial))
        flops = complexity(arch, self.space.resolution).flops
        # The tables are exact; this guards the guarantee against a future change breaking it.
        assert self.budget.contains(flops), f"sampler proposed an infeasible architecture ({flops} FLOPs)"
        if self.cost is not None:
            value = self.cost.of(arch, self.space)
            assert self.cost.contains(value), f"sampler proposed {value} {self.cost.unit}, outside the window"
        cs = [s.cardinality for s in arch.stages]
        ds = [s.group_width // 2**i for i, s in enumerate(arch.stages)]
        shared = self.space.shared
        for key, value in (("cardinality", cs[0] if shared else cs), ("width", ds[0] if shared else ds),
                           ("base_width", arch.stages[0].out_channels), ("depths", list(arch.depths))):
            trial.set_user_attr(key, value)
        return arch

    def decode(self, params: dict) -> Architecture:
        """The architecture that a trial with these recorded params trained."""
        return self._ensure_tables().decode(_Params(params=params))

    def encode(self, arch: Architecture) -> dict[str, int | float]:
        """The params that decode to `arch` (what an Optuna trial enqueued with them trains: a reference
        design the sampler then observes like any other trial). ValueError when `arch` is not one of the
        space's feasible architectures at this budget."""
        tables = self._ensure_tables()
        space = self.space
        stages = arch.stages
        if len(stages) != space.num_stages or arch.stem != space.stem:
            raise ValueError(f"{arch.describe()}: not an architecture of space {space.name}")
        base = stages[0].out_channels
        ds = [s.group_width // 2**i for i, s in enumerate(stages)]
        cs = [s.cardinality for s in stages]
        if base not in space.base_widths or any(c not in space.cardinalities for c in cs) \
                or any(s.out_channels != base * 2**i or s.group_width != d * 2**i
                       for i, (s, d) in enumerate(zip(stages, ds, strict=True))):
            raise ValueError(f"{arch.describe()}: its base width, cardinalities or widths are not the space's")
        d0 = space.width_range[0]
        depths = {f"depth_{i + 1}_pos": s.depth for i, s in enumerate(stages)}
        if space.shared:
            if len(set(cs)) != 1 or len(set(ds)) != 1:
                raise ValueError(f"{arch.describe()}: C and d differ between stages; the space shares them")
            wanted = {"cardinality_index": space.cardinalities.index(cs[0]),
                      "base_width_pos": space.base_widths.index(base), "width_pos": ds[0] - d0, **depths}
        else:
            wanted = {"base_width_index": space.base_widths.index(base), **depths,
                      **{f"cardinality_{i + 1}_pos": space.cardinalities.index(c) for i, c in enumerate(cs)},
                      **{f"width_{i + 1}_pos": d - d0 for i, d in enumerate(ds)}}
        encoder = _Encoder(wanted)
        decoded = tables.decode(encoder)
        if decoded.to_dict() != arch.to_dict():  # the encoding is exact; this guards it
            raise ValueError(f"{arch.describe()}: encodes to {decoded.describe()}")
        return encoder.params


class _SharedTables:
    """All stages share C and d: tabulate the feasible d-interval of every (base, C, depths)."""

    def __init__(self, space: SearchSpace, budget: Budget, width_first: bool,
                 cost: AdditiveCost | None = None) -> None:
        self.space, self.width_first = space, width_first
        self.cost_span: tuple[float, float] | None = None  # the second cost's range over FLOPs-feasible archs
        combos = np.array(list(itertools.product(*[range(lo, hi + 1) for lo, hi in space.depth_ranges])),
                          dtype=np.int64)  # [n_combos, n_stages]
        d_lo, d_hi, oks = [], [], []
        for base_out in space.base_widths:
            base, terms = _stage_terms(space, base_out)
            first = np.stack([t.first for t in terms], axis=-1)  # [n_C, n_d, n_stages]
            repeat = np.stack([t.repeat for t in terms], axis=-1)
            # flops[c, d, combo] = base + sum_i first_i + (depth_i - 1) * repeat_i
            flops = base + first.sum(-1)[:, :, None] + np.einsum("cds,ks->cdk", repeat, combos - 1)
            ok = (flops >= budget.low) & (flops <= budget.high)
            if cost is not None:
                # The second cost adds up the same way; it need not grow with d (a latency does not), so
                # the feasible d of a (base, C, depths) may have holes: the whole mask is kept (imagenet:
                # 3 x 7 x 128 x 8,640 booleans, 23 MB).
                c_base, c_stages = cost.terms[base_out]
                c_first = np.stack([f for f, _ in c_stages], axis=-1)
                c_repeat = np.stack([r for _, r in c_stages], axis=-1)
                with np.errstate(invalid="ignore"):  # inf * 0 (an unknown block repeated 0 times): refused
                    value = c_base + c_first.sum(-1)[:, :, None] + np.einsum("cds,ks->cdk", c_repeat, combos - 1)
                known = ok & np.isfinite(value)  # FLOPs-feasible and predictable: what the window picks from
                if known.any():
                    span = (float(value[known].min()), float(value[known].max()))
                    self.cost_span = span if self.cost_span is None else (
                        min(self.cost_span[0], span[0]), max(self.cost_span[1], span[1]))
                ok &= (value >= cost.low) & (value <= cost.high)
                oks.append(ok)
            has = ok.any(axis=1)  # [n_C, n_combos]
            n_d = ok.shape[1]
            d_lo.append(np.where(has, ok.argmax(axis=1), -1))
            d_hi.append(np.where(has, n_d - 1 - ok[:, ::-1, :].argmax(axis=1), -1))
        self.d_lo, self.d_hi = np.stack(d_lo), np.stack(d_hi)  # [n_base, n_C, n_combos], index into widths
        self.has = self.d_lo >= 0
        self.ok = np.stack(oks) if oks else None  # [n_base, n_C, n_d, n_combos] with a second cost
        self.combos = combos
        self.feasible = bool(self.has.any())
        self.c_index = np.flatnonzero(self.has.any(axis=(0, 2)))  # cardinalities that can meet the budget

    def decode(self, p: _Params) -> Architecture:
        space, d0 = self.space, self.space.width_range[0]
        ci = p.pick_index("cardinality_index", self.c_index)
        bi = p.pick("base_width_pos", np.flatnonzero(self.has[:, ci].any(axis=1)))
        rows = np.flatnonzero(self.has[bi, ci])
        lo, hi = self.d_lo[bi, ci, rows], self.d_hi[bi, ci, rows]
        if self.width_first and self.ok is not None:
            di = p.pick("width_pos", np.flatnonzero(self.ok[bi, ci][:, rows].any(axis=1)))
            rows = rows[self.ok[bi, ci, di, rows]]
        elif self.width_first:
            # every d covered by some depth combination's interval, then the combinations that take it
            cover = np.zeros(len(range(space.width_range[0], space.width_range[1] + 2)), dtype=np.int64)
            np.add.at(cover, lo, 1)
            np.add.at(cover, hi + 1, -1)
            di = p.pick("width_pos", np.flatnonzero(np.cumsum(cover)[:-1] > 0))
            rows = rows[(lo <= di) & (di <= hi)]
        depths = []
        for i in range(space.num_stages):
            depth = p.pick(f"depth_{i + 1}_pos", np.unique(self.combos[rows, i]))
            rows = rows[self.combos[rows, i] == depth]
            depths.append(depth)
        (k,) = rows
        if not self.width_first:
            allowed = (np.arange(self.d_lo[bi, ci, k], self.d_hi[bi, ci, k] + 1) if self.ok is None
                       else np.flatnonzero(self.ok[bi, ci, :, k]))
            di = p.pick("width_pos", allowed)
        return space.architecture(space.cardinalities[ci], di + d0, depths, space.base_widths[bi])


class _FreeTables:
    """Each stage picks its own depth, C and d (one base width for all); reason over suffix sums."""

    def __init__(self, space: SearchSpace, budget: Budget) -> None:
        self.space = space
        self.by_base = [_FreeTablesAt(space, budget, b) for b in space.base_widths]
        self.b_index = [i for i, t in enumerate(self.by_base) if t.feasible]
        self.feasible = bool(self.b_index)

    def decode(self, p: _Params) -> Architecture:
        bi = p.pick_index("base_width_index", np.asarray(self.b_index))
        return self.by_base[bi].decode(p)


class _FreeTablesAt:
    """The free space at one base output width."""

    BUCKETS_IN_WINDOW = 64

    def __init__(self, space: SearchSpace, budget: Budget, base_out: int) -> None:
        self.space, self.budget, self.base_out = space, budget, base_out
        self.base, terms = _stage_terms(space, base_out)
        # values[i][depth_index, c, d] = FLOPs of stage i
        self.values = []
        for (lo, hi), t in zip(space.depth_ranges, terms, strict=True):
            depth = np.arange(lo, hi + 1, dtype=np.int64)[:, None, None]
            self.values.append(t.first[None] + (depth - 1) * t.repeat[None])
        # reach[i]: sorted exact sums of stages i.. that can be reached (a subset; see module doc)
        quantum = max(1, int(budget.tolerance * budget.flops) // self.BUCKETS_IN_WINDOW)
        reach = [np.zeros(1, dtype=np.int64)]
        for v in reversed(self.values):
            stage = np.unique(v[v <= budget.high])
            sums = (stage[:, None] + reach[0][None, :]).ravel()
            sums = sums[sums <= budget.high - self.base]
            reach.insert(0, _bucket_extremes(sums, quantum))
        self.reach = reach
        self.feasible = bool(self._allowed(self.values[0], self.base, 1).any())

    def _allowed(self, stage_flops: np.ndarray, prefix: int, next_stage: int) -> np.ndarray:
        """Which stage choices leave an exactly reachable completion inside the window."""
        rest = self.reach[next_stage]
        if rest.size == 0:  # no suffix of stages fits under the budget at all
            return np.zeros(np.shape(stage_flops), dtype=bool)
        need_lo = self.budget.low - prefix - stage_flops
        need_hi = self.budget.high - prefix - stage_flops
        idx = np.searchsorted(rest, need_lo)
        found = rest[np.minimum(idx, rest.size - 1)]
        return (idx < rest.size) & (found <= need_hi)

    def decode(self, p: _Params) -> Architecture:
        space, prefix = self.space, self.base
        cs, ds, depths = [], [], []
        for i in range(space.num_stages):
            ok = self._allowed(self.values[i], prefix, i + 1)  # [depth, c, d]
            lo_depth = space.depth_ranges[i][0]
            depth = p.pick(f"depth_{i + 1}_pos", np.flatnonzero(ok.any(axis=(1, 2))) + lo_depth)
            ok = ok[depth - lo_depth]
            ci = p.pick(f"cardinality_{i + 1}_pos", np.flatnonzero(ok.any(axis=1)))
            di = p.pick(f"width_{i + 1}_pos", np.flatnonzero(ok[ci]))
            prefix += int(self.values[i][depth - lo_depth, ci, di])
            cs.append(space.cardinalities[ci])
            ds.append(di + space.width_range[0])
            depths.append(depth)
        return space.architecture(cs, ds, depths, self.base_out)


def _bucket_extremes(sums: np.ndarray, quantum: int) -> np.ndarray:
    """Keep the smallest and largest exact value of each bucket of width `quantum`, sorted."""
    if sums.size == 0:
        return sums
    sums = np.sort(sums)
    bucket = sums // quantum
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], sums.size] - 1
    return np.unique(np.r_[sums[starts], sums[ends]])


# --- the paper's method: a capacity-matched cardinality sweep ---------------------------------------


@dataclass(frozen=True)
class MatchedPoint:
    cardinality: int
    width: int
    arch: Architecture
    flops: int
    params: int
    outside: str = ""  # empty inside the budget's feasible window; otherwise by how much and why

    @property
    def in_budget(self) -> bool:
        return not self.outside


def capacity_matched(space: SearchSpace, budget: Budget, cardinalities: list[int],
                     match: str = "params", depths: list[int] | tuple[int, ...] | None = None,
                     strict: bool = True) -> list[MatchedPoint]:
    """The paper's Table 2: fixed depths and the template's output widths; the first cardinality takes
    the width whose FLOPs are closest to the budget, every other one the width whose `match`
    ("params" or "flops") is closest to the first architecture's.

    Matching, not the budget, picks these widths (the paper's method: at 4.089 GFLOPs it gives
    1x64d, 2x40d, 4x24d, 8x14d, 32x4d, of which the last three cost 4-7% more than the first). A point
    outside the feasible window [(1 - tolerance) * B, B] says so, and why, in `outside`. `strict=False`
    gives the points even when no width brings the first cardinality near the budget (the reference
    designs then move to their nearest feasible variants: search_spaces.references).
    """
    if match not in ("params", "flops"):
        raise ValueError(f"match must be 'params' or 'flops', got {match!r}")
    depths = tuple(depths or space.default_depths)
    if len(depths) != space.num_stages:
        raise ValueError(f"depths: {space.name} has {space.num_stages} stages, got {len(depths)} depths")
    if not cardinalities:
        raise ValueError("cardinality: give at least one")
    widths = range(space.width_range[0], space.width_range[1] + 1)

    def cost(c: int, d: int):
        return complexity(space.architecture(c, d, depths), space.resolution)

    def closest(c: int, target: int, key: str) -> int:
        return min(widths, key=lambda d: (abs(getattr(cost(c, d), key) - target), d))

    first = closest(cardinalities[0], budget.flops, "flops")
    reached = cost(cardinalities[0], first).flops
    if strict and abs(reached - budget.flops) > budget.tolerance * budget.flops:
        raise BudgetError(
            f"budget {format_flops(budget.flops)}: no width d in {space.width_range[0]}..{space.width_range[1]} "
            f"brings {cardinalities[0]}xd at depths {','.join(map(str, depths))} within {budget.tolerance:g} of it "
            f"(closest: d={first}, {format_flops(reached)})")
    target = getattr(cost(cardinalities[0], first), match)
    points = []
    for c in cardinalities:
        d = first if c == cardinalities[0] else closest(c, target, match)
        cx = cost(c, d)
        outside = ""
        if not budget.contains(cx.flops):
            why = (f"the width whose FLOPs are closest to the budget (d={d})" if c == cardinalities[0] else
                   f"the width whose {match} are closest to {cardinalities[0]}x{first}d's (d={d})")
            outside = (f"{c}x{d}d costs {format_flops(cx.flops)}, {100 * (cx.flops / budget.flops - 1):+.1f}% of "
                       f"the budget, outside the feasible {format_flops(budget.low)} .. {format_flops(budget.high)}: "
                       f"it is {why}, as in the paper's capacity-matched sweep")
        points.append(MatchedPoint(c, d, space.architecture(c, d, depths), cx.flops, cx.params, outside))
    return points


def propose_many(space: SearchSpace, budget: Budget, n: int, sampler: str = "tpe", seed: int = 0,
                 first: list[dict] | tuple = (), cost: AdditiveCost | None = None) -> list[Architecture]:
    """What the sampler would propose first, without training (for `nas.search --dry-run`): the
    architectures of the enqueued params `first` (a search's reference designs), then `n` proposals.

    Nothing is told back to the study, so TPE behaves as in its random start-up phase; that is what
    the first trials of a real search look like too.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    if sampler not in samplers:
        raise ValueError(f"dry-run sampler must be one of {', '.join(samplers)} or grid, got {sampler!r}")
    define = FeasibleSampler(space, budget, cost=cost)
    study = optuna.create_study(direction="maximize", sampler=samplers[sampler]())
    for params in first:
        study.enqueue_trial(params)
    return [define.propose(study.ask()) for _ in range(len(first) + n)]


def feasible_widths(space: SearchSpace, budget: Budget):
    """`allowed(base_out, stage, cardinality)` -> the sorted stage-1 widths d some architecture feasible at
    `budget` takes there (exact for shared spaces; for free ones, the widths whose stage fits at its
    smallest depth): what a latency profile for that budget must measure (search_spaces.latency).
    BudgetError when no architecture of the space meets the budget."""
    widths = np.arange(space.width_range[0], space.width_range[1] + 1)
    if space.shared:
        tables = _SharedTables(space, budget, True)
        if not tables.feasible:
            raise _unreachable(space, budget)
        index = {b: i for i, b in enumerate(space.base_widths)}

        def allowed(base: int, stage: int, cardinality: int) -> np.ndarray:
            bi, ci = index[base], space.cardinalities.index(cardinality)
            rows = np.flatnonzero(tables.has[bi, ci])
            ok = np.zeros(widths.size, dtype=bool)
            for k in rows:
                ok[tables.d_lo[bi, ci, k]:tables.d_hi[bi, ci, k] + 1] = True
            return widths[ok]
        return allowed
    by_base = {b: _FreeTablesAt(space, budget, b) for b in space.base_widths}
    if not any(t.feasible for t in by_base.values()):
        raise _unreachable(space, budget)

    def allowed_free(base: int, stage: int, cardinality: int) -> np.ndarray:
        t = by_base[base]
        if not t.feasible:
            return widths[:0]
        fits = t.values[stage][0, space.cardinalities.index(cardinality)] <= budget.high - t.base
        return widths[fits]
    return allowed_free
