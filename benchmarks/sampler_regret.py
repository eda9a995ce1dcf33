"""How well each Optuna sampler searches the feasible space: median regret on a cheap, fixed test objective.

Training is far too slow to compare samplers by training, so every feasible architecture of the shared
ImageNet space at 4 GFLOPs gets a deterministic "accuracy" (percentage points) with the interactions the
paper reports: at fixed FLOPs, more paths C with narrower d is better up to a point (Table 2: 32x4d
beats 1x64d; Table 3 / Fig. 5 put the turn near C=32), the template's depth profile (3, 4, 6, 3) and
base width 256 are good, using more of the budget helps, plus seeded per-architecture noise (0.2 pp,
about a seed's spread). The optimum is exact: every feasible architecture is enumerated from the
sampler's own tables and scored (a written-by-hand enumeration: no library scores a finite set).

Each sampler (tpe, random, cmaes, nsga2; settings as nas.tuner.make_searcher at 64 trials) runs through
the real define-by-run code (FeasibleSampler.propose) for 64 trials, 20 seeds, once per code version:
`--before DIR` is a checkout of the old sampler (git worktree add /tmp/sampler-before d220001), run in
a subprocess with DIR first on sys.path. Also times the sampler's own work per proposal with 1,000
finished trials in the study (added with study.add_trials, so no 1,000-trial run is needed).

    PYTHONPATH=$PWD python benchmarks/sampler_regret.py --before /tmp/sampler-before
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

SPACE, BUDGET = "resnext-imagenet", "4GFLOPs"
SAMPLERS = ("tpe", "random", "cmaes", "nsga2")
CHECKPOINTS = (8, 16, 32, 64)
REF_DEPTHS = np.array([3.0, 4.0, 6.0, 3.0])


def _noise(key: np.ndarray) -> np.ndarray:
    """Deterministic uniform [0, 1) per integer key (splitmix64)."""
    with np.errstate(over="ignore"):
        z = key.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def score(c, d, base, depths, flops, budget: int) -> np.ndarray:
    """Test accuracy (%) of arrays of architectures; depths is [n, 4]."""
    c, d, base, flops = (np.asarray(x, dtype=np.float64) for x in (c, d, base, flops))
    depths = np.asarray(depths, dtype=np.float64).reshape(-1, 4)
    lc = np.log2(c)
    s = (80.0
         - 0.35 * (lc - 5.0) ** 2  # more paths help up to C ~ 32
         - 0.50 * (np.log2(c * d) - 7.5) ** 2  # ... with narrower paths: total width C*d ~ 180 (32x~6d)
         - 0.30 * (np.log2(depths / REF_DEPTHS) ** 2).sum(axis=1)  # the template's depth profile
         - 0.60 * np.log2(base / 256.0) ** 2  # the template's base width
         + 3.0 * flops / budget)  # spend the budget
    key = (((base.astype(np.int64) * 131 + c.astype(np.int64)) * 257 + d.astype(np.int64)) * 1_000_003
           + (depths.astype(np.int64) * np.array([1, 7, 63, 2047])).sum(axis=1))
    return s + 0.2 * _noise(key)


def score_arch(arch, flops: int, budget: int) -> float:
    st = arch.stages
    return float(score(st[0].cardinality, st[0].group_width, st[0].out_channels,
                       [s.depth for s in st], flops, budget)[0])


def optimum() -> tuple[float, str, int]:
    """Exact best score over every feasible architecture of the (new, base-width-searched) space."""
    from search_spaces import Budget, FeasibleSampler, get_space
    from search_spaces.sampling import _stage_terms  # the sampler's own FLOPs tables, read white-box

    space, budget = get_space(SPACE), Budget.parse(BUDGET)
    t = FeasibleSampler(space, budget)._ensure_tables()
    best, where, count = -np.inf, "", 0
    for bi, base in enumerate(space.base_widths):
        base_flops, terms = _stage_terms(space, base)
        first = sum(x.first for x in terms)  # [n_C, n_d]
        repeat = np.stack([x.repeat for x in terms], axis=-1)  # [n_C, n_d, 4]
        for ci, c in enumerate(space.cardinalities):
            rows = np.flatnonzero(t.has[bi, ci])
            if rows.size == 0:
                continue
            lo, hi = t.d_lo[bi, ci, rows], t.d_hi[bi, ci, rows]
            n = hi - lo + 1
            k = np.repeat(rows, n)
            di = np.repeat(lo, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
            depths = t.combos[k]
            flops = base_flops + first[ci, di] + ((depths - 1) * repeat[ci, di]).sum(axis=1)
            assert ((flops >= budget.low) & (flops <= budget.high)).all()
            d = di + space.width_range[0]
            s = score(np.full(k.size, c), d, np.full(k.size, base), depths, flops, budget.flops)
            count += k.size
            j = int(np.argmax(s))
            if s[j] > best:
                best, where = float(s[j]), f"{c}x{d[j]}d base {base} depths {tuple(int(x) for x in depths[j])}"
    return best, where, count


def make_sampler(name: str, seed: int, trials: int):
    import optuna

    startup = min(10, max(3, trials // 3))  # as nas.tuner.make_searcher
    return {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                                  n_startup_trials=startup),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup,
                                                      warn_independent_sampling=False),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
    }[name]()


def worker(trials: int, seeds: int, variant: str) -> dict:
    """Best-so-far curves with the search_spaces package first on sys.path (old or new code)."""
    import optuna

    # From the modules, not the root: the old code (--before, d220001) exported none of these at its root.
    from search_spaces import complexity
    from search_spaces.budget import Budget
    from search_spaces.sampling import FeasibleSampler
    from search_spaces.spaces import get_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, budget = get_space(SPACE), Budget.parse(BUDGET)
    variant, _, only = variant.partition("@")  # "width-first@256": the old space (base width 256 only)
    if only:
        space = replace(space, base_widths=(int(only),))
    kw = {} if variant == "default" else {"width_first": variant == "width-first"}
    define = FeasibleSampler(space, budget, **kw)
    out = {}
    for name in SAMPLERS:
        curves, started = [], time.perf_counter()
        for seed in range(seeds):
            study = optuna.create_study(direction="maximize", sampler=make_sampler(name, seed, trials))

            def objective(trial):
                arch = define.propose(trial)
                return score_arch(arch, complexity(arch, space.resolution).flops, budget.flops)

            study.optimize(objective, n_trials=trials)
            curves.append(np.maximum.accumulate([t.value for t in study.trials]).tolist())
        out[name] = {"curves": curves, "seconds": time.perf_counter() - started}
    return out


def time_per_proposal(n_done: int = 1000, asks: int = 20) -> dict[str, float]:
    """Seconds of sampler work per proposal with n_done finished trials in the study (new code)."""
    import optuna

    from search_spaces import Budget, FeasibleSampler, complexity, get_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, budget = get_space(SPACE), Budget.parse(BUDGET)
    define = FeasibleSampler(space, budget)
    seed_study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    done = []
    for _ in range(n_done):
        trial = seed_study.ask()
        arch = define.propose(trial)
        value = score_arch(arch, complexity(arch, space.resolution).flops, budget.flops)
        seed_study.tell(trial, value)
    done = seed_study.get_trials(deepcopy=False)
    result = {}
    for name in SAMPLERS:
        study = optuna.create_study(direction="maximize", sampler=make_sampler(name, 0, n_done))
        study.add_trials(done)
        started = time.perf_counter()
        for _ in range(asks):
            trial = study.ask()
            arch = define.propose(trial)
            study.tell(trial, score_arch(arch, complexity(arch, space.resolution).flops, budget.flops))
        result[name] = (time.perf_counter() - started) / asks
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="checkout of the old code (e.g. /tmp/sampler-before at d220001)")
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--variants", default="width-first,depths-first,width-first@256,depths-first@256",
                    help="encodings of the new code to run; @256: with the old space's fixed base width 256")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write all curves here")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.trials, args.seeds, args.worker)))
        return

    import optuna

    here = str(Path(__file__).resolve().parents[1])
    best, where, count = optimum()
    print(f"{SPACE} at {BUDGET}: {count:,} feasible architectures; optimum {best:.3f} ({where})")
    runs = {}
    codes = ([("before (d220001)", args.before, "default")] if args.before else []) + [
        (f"after, {v}", here, v) for v in args.variants.split(",")]
    for label, path, variant in codes:
        cmd = [sys.executable, __file__, "--worker", variant, "--trials", str(args.trials), "--seeds", str(args.seeds)]
        res = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True)
        runs[label] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"  ran {label}: " + ", ".join(f"{k} {v['seconds']:.0f}s" for k, v in runs[label].items()),
              flush=True)
    print(f"\nmedian regret (pp; optimum {best:.3f}) over {args.seeds} seeds, at trial " +
          "/".join(map(str, CHECKPOINTS)))
    print("| code | sampler | " + " | ".join(f"{n} trials" for n in CHECKPOINTS) + " |")
    print("|---|---|" + "---:|" * len(CHECKPOINTS))
    for label, res in runs.items():
        for name in SAMPLERS:
            curves = np.asarray(res[name]["curves"])
            med = [np.median(best - curves[:, n - 1]) for n in CHECKPOINTS if n <= curves.shape[1]]
            print(f"| {label} | {name} | " + " | ".join(f"{m:.2f}" for m in med) + " |")
    per = time_per_proposal()
    print("\nsampler time per proposal with 1,000 finished trials (s): " +
          ", ".join(f"{k} {v:.3f}" for k, v in per.items()))
    print(f"python {platform.python_version()}, optuna {optuna.__version__}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"optimum": best, "where": where, "runs": runs, "per_proposal": per}))


if __name__ == "__main__":
    main()
