"""Budget-feasible sampling: an Optuna define-by-run function that proposes only feasible architectures.

Why by hand: neither Optuna nor Ray Tune has hard constraints (`trial.set_constraint` is only a soft
penalty), and a categorical whose choices change between trials is fatal to Optuna. What they do
support is integer ranges that change from trial to trial. So each dimension is suggested in turn as
an integer range restricted, from the exact analytic FLOPs, to values that still leave a feasible
completion; every suggestion is then feasible (no trial is wasted) and TPE still sees every
dimension.

- Shared C and d (the paper's rule): the FLOPs of every (C, depths, d) are tabulated once with numpy
  (FLOPs are linear in each stage's depth), so C is a fixed categorical over the cardinalities that can
  meet the budget at all, then each depth a range over the depths that keep a feasible completion,
  then d the (contiguous: FLOPs grow with d) range of feasible widths.
- Free C and d per stage: stage costs add up, so for each stage suffix a set of exactly reachable FLOPs
  sums is precomputed (the smallest and largest sum per bucket of width tolerance*budget/64); a choice
  is allowed only if one of those exact sums completes it into the window. The sets are subsets of
  what is reachable, so a choice let through is always feasible; one refused could at worst have been
  feasible through a sum strictly inside a bucket, which costs nothing but a sliver of the space.

Where a restricted range has a hole (rare: large C with coarse width steps), the suggested integer is
moved to the nearest allowed value; the architecture returned is what trains and is recorded.
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
class _StageTerms:
    """FLOPs of stage i for every (C, d): first block + (depth - 1) * repeated block."""

    first: np.ndarray  # [n_cardinalities, n_widths]
    repeat: np.ndarray


def _stage_terms(space: SearchSpace) -> tuple[int, list[_StageTerms]]:
    c = np.asarray(space.cardinalities, dtype=np.int64)[:, None]
    d = np.arange(space.width_range[0], space.width_range[1] + 1, dtype=np.int64)[None, :]
    stem, hw = stem_cost(space.stem, space.in_channels, space.resolution)
    c_in, terms = STEM_CHANNELS, []
    for i in range(space.num_stages):
        out = space.base_out * 2**i
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
    lo = [min(space.cardinalities), space.width_range[0], [r[0] for r in space.depth_ranges]]
    hi = [max(space.cardinalities), space.width_range[1], [r[1] for r in space.depth_ranges]]
    return (complexity(space.architecture(*lo), space.resolution).flops,
            complexity(space.architecture(*hi), space.resolution).flops)


def _nearest(value: int, allowed: np.ndarray) -> int:
    """The allowed value closest to `value` (the smaller one on a tie)."""
    allowed = np.asarray(allowed)
    return int(allowed[np.argmin(np.abs(allowed - value) * 2 + (allowed > value))])


def _unreachable(space: SearchSpace, budget: Budget) -> BudgetError:
    lo, hi = flops_range(space)
    return BudgetError(
        f"budget {format_flops(budget.flops)} (tolerance {budget.tolerance:g}) cannot be met by space "
        f"{space.name} at {space.resolution}x{space.resolution}: its architectures cost "
        f"{format_flops(lo)} .. {format_flops(hi)}"
    )


class FeasibleSampler:
    """Define-by-run search space for Optuna (and Ray Tune's OptunaSearch): feasible architectures only.

    Calling it with an Optuna trial suggests the parameters and returns {"arch": resnext-arch/1 dict};
    `propose(trial)` returns the Architecture itself. Picklable (Ray ships it to its searcher); the
    tables are rebuilt on first use after unpickling.
    """

    def __init__(self, space: SearchSpace, budget: Budget) -> None:
        self.space, self.budget = space, budget
        self._tables: Any = None
        self._ensure_tables()

    def __getstate__(self) -> dict:
        return {"space": self.space, "budget": self.budget, "_tables": None}

    def __call__(self, trial: Any) -> dict:
        return {"arch": self.propose(trial).to_dict()}

    def _ensure_tables(self) -> Any:
        if self._tables is None:
            self._tables = (_SharedTables if self.space.shared else _FreeTables)(self.space, self.budget)
            if not self._tables.feasible:
                raise _unreachable(self.space, self.budget)
        return self._tables

    def propose(self, trial: Any) -> Architecture:
        arch = self._ensure_tables().propose(trial)
        flops = complexity(arch, self.space.resolution).flops
        # The tables are exact; this guards the guarantee against a future change breaking it.
        assert self.budget.contains(flops), f"sampler proposed an infeasible architecture ({flops} FLOPs)"
        return arch


class _SharedTables:
    """All stages share C and d: tabulate the feasible d-interval of every (C, depths)."""

    def __init__(self, space: SearchSpace, budget: Budget) -> None:
        self.space = space
        base, terms = _stage_terms(space)
        combos = np.array(list(itertools.product(*[range(lo, hi + 1) for lo, hi in space.depth_ranges])),
                          dtype=np.int64)  # [n_combos, n_stages]
        first = np.stack([t.first for t in terms], axis=-1)  # [n_C, n_d, n_stages]
        repeat = np.stack([t.repeat for t in terms], axis=-1)
        # flops[c, d, combo] = base + sum_i first_i + (depth_i - 1) * repeat_i
        flops = base + first.sum(-1)[:, :, None] + np.einsum("cds,ks->cdk", repeat, combos - 1)
        ok = (flops >= budget.low) & (flops <= budget.high)
        has = ok.any(axis=1)  # [n_C, n_combos]
        n_d = ok.shape[1]
        self.d_lo = np.where(has, ok.argmax(axis=1), -1)
        self.d_hi = np.where(has, n_d - 1 - ok[:, ::-1, :].argmax(axis=1), -1)
        self.combos, self.has = combos, has
        self.feasible = bool(has.any())
        self.cardinalities = [c for i, c in enumerate(space.cardinalities) if has[i].any()]

    def propose(self, trial: Any) -> Architecture:
        space = self.space
        c = trial.suggest_categorical("cardinality", self.cardinalities)
        ci = space.cardinalities.index(c)
        rows = np.flatnonzero(self.has[ci])
        depths = []
        for i in range(space.num_stages):
            allowed = np.unique(self.combos[rows, i])
            depth = trial.suggest_int(f"depth_{i + 1}", int(allowed[0]), int(allowed[-1]))
            if depth not in allowed:
                depth = _nearest(depth, allowed)
            rows = rows[self.combos[rows, i] == depth]
            depths.append(depth)
        (k,) = rows
        d0 = space.width_range[0]
        width = trial.suggest_int("width", int(self.d_lo[ci, k]) + d0, int(self.d_hi[ci, k]) + d0)
        return space.architecture(c, width, depths)


class _FreeTables:
    """Each stage picks its own depth, C and d; stage FLOPs add up, so reason over suffix sums."""

    BUCKETS_IN_WINDOW = 64

    def __init__(self, space: SearchSpace, budget: Budget) -> None:
        self.space, self.budget = space, budget
        self.base, terms = _stage_terms(space)
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

    def propose(self, trial: Any) -> Architecture:
        space, prefix = self.space, self.base
        cs, ds, depths = [], [], []
        for i in range(space.num_stages):
            ok = self._allowed(self.values[i], prefix, i + 1)  # [depth, c, d]
            lo_depth = space.depth_ranges[i][0]
            allowed = np.flatnonzero(ok.any(axis=(1, 2))) + lo_depth
            depth = trial.suggest_int(f"depth_{i + 1}", int(allowed[0]), int(allowed[-1]))
            depth = depth if depth in allowed else _nearest(depth, allowed)
            ok = ok[depth - lo_depth]
            # Cardinality as an index into the sorted choices: an integer range can shrink per trial.
            allowed = np.flatnonzero(ok.any(axis=1))
            ci = trial.suggest_int(f"cardinality_{i + 1}_index", int(allowed[0]), int(allowed[-1]))
            ci = ci if ci in allowed else _nearest(ci, allowed)
            allowed = np.flatnonzero(ok[ci]) + space.width_range[0]
            d = trial.suggest_int(f"width_{i + 1}", int(allowed[0]), int(allowed[-1]))
            d = d if d in allowed else _nearest(d, allowed)
            prefix += int(self.values[i][depth - lo_depth, ci, d - space.width_range[0]])
            cs.append(space.cardinalities[ci])
            ds.append(d)
            depths.append(depth)
        return space.architecture(cs, ds, depths)


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


def capacity_matched(space: SearchSpace, budget: Budget, cardinalities: list[int],
                     match: str = "params", depths: list[int] | tuple[int, ...] | None = None
                     ) -> list[MatchedPoint]:
    """The paper's Table 2: fixed depths; the first cardinality takes the width whose FLOPs are closest
    to the budget, every other one the width whose `match` ("params" or "flops") is closest to the
    first architecture's."""
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
    if abs(reached - budget.flops) > budget.tolerance * budget.flops:
        raise BudgetError(
            f"budget {format_flops(budget.flops)}: no width d in {space.width_range[0]}..{space.width_range[1]} "
            f"brings {cardinalities[0]}xd at depths {','.join(map(str, depths))} within {budget.tolerance:g} of it "
            f"(closest: d={first}, {format_flops(reached)})")
    target = getattr(cost(cardinalities[0], first), match)
    points = []
    for c in cardinalities:
        d = first if c == cardinalities[0] else closest(c, target, match)
        cx = cost(c, d)
        points.append(MatchedPoint(c, d, space.architecture(c, d, depths), cx.flops, cx.params))
    return points


def propose_many(space: SearchSpace, budget: Budget, n: int, sampler: str = "tpe", seed: int = 0
                 ) -> list[Architecture]:
    """What the sampler would propose first, without training (for `nas.search --dry-run`).

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
    define = FeasibleSampler(space, budget)
    study = optuna.create_study(direction="maximize", sampler=samplers[sampler]())
    return [define.propose(study.ask()) for _ in range(n)]
