"""How far off is the search's time-left estimate? Replays a finished run and compares.

    python benchmarks/progress_estimate.py RUN_DIR [--at 0.25 0.5 0.75] [--concurrency N]
    python benchmarks/progress_estimate.py --files TRIALS.csv EPOCHS.csv SEARCH.json [...]

At each fraction of the run (from the first trial's start to the last epoch's report) the tables are cut
to what the driver knew then: epochs reported by then, trials started by then, each trial's outcome
once its last epoch was reported (running before). nas.orchestration.eta.seconds_left on those tables is
compared with the time that actually remained; the error is (estimate - actual) / actual. For contrast
the estimate it replaced (elapsed / trials finished x trials left) is printed beside it.

A run written before epochs.csv had `timestamp` and trials.csv `started` (docs/runs/*) has no clock:
its timeline is then rebuilt by laying the trials, in trials.csv order (the order they started), on
`--concurrency` slots (default 1: the default CPU run trains one trial at a time, each on all the
machine's cores, nas.orchestration.ray_env.trial_resources; a recorded run of it shows the same), each
lasting the sum of its epochs' seconds. That timeline has none of the gaps
a real run has (Ray starting trials, checkpoints, report writes), so its errors measure the ASHA model
and the end-of-run scheduling only, and the script says "reconstructed" beside them.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.orchestration.eta import FINISHED, AshaPlan, seconds_left  # noqa: E402

# Trials at once in the default CPU run: each CPU trial takes all of the node's CPUs unless
# --max-concurrent says otherwise (nas.orchestration.ray_env.trial_resources). Rebuilt timelines used 2
# until the recorded default run of 2026-12-02 showed one trial at a time (docs/performance.md).
DEFAULT_CPU_CONCURRENCY = 1


@dataclass
class Replay:
    trials: pd.DataFrame  # trial_id, outcome (final), started
    epochs: pd.DataFrame  # trial_id, epoch, epoch_seconds, timestamp
    plan: AshaPlan
    concurrency: int
    reconstructed: bool

    @property
    def start(self) -> float:
        return float(self.trials["started"].min())

    @property
    def end(self) -> float:
        return float(self.epochs["timestamp"].max())


def plan_of(search: dict) -> AshaPlan:
    s = {**search, **(search.get("settings") or {})}
    max_epochs = int(s.get("max_epochs") or search.get("max_epochs"))
    if s.get("scheduler") == "none":
        return AshaPlan(max_epochs)
    return AshaPlan(max_epochs, int(s.get("grace_epochs") or 1), float(s.get("reduction_factor") or 2))


def rebuild_timeline(trials: pd.DataFrame, epochs: pd.DataFrame, concurrency: int) -> tuple[pd.DataFrame,
                                                                                           pd.DataFrame]:
    """Start times and epoch timestamps for a run that recorded none (see the module's docstring)."""
    slots = [0.0] * concurrency
    started, stamps = {}, {}
    for tid in trials["trial_id"]:
        t = heapq.heappop(slots)
        started[tid] = t
        for row in epochs[epochs["trial_id"] == tid].sort_values("epoch").itertuples():
            t += float(row.epoch_seconds)
            stamps[(tid, int(row.epoch))] = t
        heapq.heappush(slots, t)
    trials = trials.assign(started=trials["trial_id"].map(started))
    epochs = epochs.assign(timestamp=[stamps[(t, int(e))] for t, e in zip(epochs["trial_id"], epochs["epoch"],
                                                                          strict=True)])
    return trials, epochs


def peak_concurrency(trials: pd.DataFrame, epochs: pd.DataFrame) -> int:
    ends = epochs.groupby("trial_id")["timestamp"].max()
    events = sorted([(s, 1) for s in trials["started"].dropna()] +
                    [(e, -1) for e in ends.reindex(trials["trial_id"]).dropna()])
    peak = n = 0
    for _, step in events:
        n += step
        peak = max(peak, n)
    return max(1, peak)


def load_replay(trials_csv: Path, epochs_csv: Path, search_json: Path, concurrency: int | None) -> Replay:
    trials = pd.read_csv(trials_csv, dtype={"trial_id": str})
    epochs = pd.read_csv(epochs_csv, dtype={"trial_id": str})
    search = json.loads(search_json.read_text())
    timed = ("started" in trials and trials["started"].notna().all() and "timestamp" in epochs
             and epochs["timestamp"].notna().all())
    if not timed:
        trials, epochs = rebuild_timeline(trials, epochs, concurrency or DEFAULT_CPU_CONCURRENCY)
    conc = concurrency or peak_concurrency(trials, epochs)
    return Replay(trials[["trial_id", "outcome", "started"]], epochs, plan_of(search), conc, not timed)


def state_at(replay: Replay, t: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials and epochs tables as the driver had them at time t."""
    epochs = replay.epochs[replay.epochs["timestamp"] <= t]
    ended = replay.epochs.groupby("trial_id")["timestamp"].max()
    rows = []
    for r in replay.trials.itertuples():
        if r.started > t:
            continue
        end = ended.get(r.trial_id)
        over = end is not None and end <= t and r.outcome in FINISHED
        rows.append({"trial_id": r.trial_id, "outcome": r.outcome if over else "running", "started": r.started})
    return pd.DataFrame(rows, columns=["trial_id", "outcome", "started"]), epochs


def old_estimate(trials: pd.DataFrame, total: int, elapsed: float) -> float | None:
    done = int(trials["outcome"].isin(FINISHED).sum())
    return None if not done else (total - done) * elapsed / done


def measure(replay: Replay, fractions=(0.25, 0.5, 0.75)) -> pd.DataFrame:
    total, rows = len(replay.trials), []
    for f in fractions:
        t = replay.start + f * (replay.end - replay.start)
        trials, epochs = state_at(replay, t)
        actual = replay.end - t
        est = seconds_left(trials, epochs, total=total, plan=replay.plan, concurrency=replay.concurrency, now=t)
        old = old_estimate(trials, total, t - replay.start)
        rows.append({"at": f"{f:.0%}", "elapsed_s": round(t - replay.start, 1), "actual_left_s": round(actual, 1),
                     "estimate_s": None if est is None else round(est, 1),
                     "error": None if est is None else round((est - actual) / actual, 3),
                     "old_estimate_s": None if old is None else round(old, 1),
                     "old_error": None if old is None else round((old - actual) / actual, 3)})
    return pd.DataFrame(rows)


def simulate_run(n_trials: int, concurrency: int, plan: AshaPlan, rng: np.random.Generator,
                 epoch_seconds: float = 45.0, spread: float = 0.35, overhead: float = 10.0) -> Replay:
    """A run as Ray Tune + ASHA would make it: trials start in order on the first free slot, each with a
    speed (log-normal around `epoch_seconds`) and a quality; at each rung a trial goes on when its
    accuracy is at least the (1 - 1/eta) percentile of those recorded there before it (Ray's async ASHA;
    the first one there always goes on)."""
    rungs = set(plan.rungs())
    recorded: dict[int, list[float]] = {r: [] for r in rungs}
    events: list[tuple[float, int, int]] = []  # (time the epoch is reported, trial, epoch)
    speeds = epoch_seconds * rng.lognormal(0.0, spread, n_trials)
    quality = rng.normal(0.0, 1.0, n_trials)
    started, outcome, rows = {}, {}, []
    next_trial = 0

    def start(i: int, t: float) -> None:
        started[i] = t
        heapq.heappush(events, (t + overhead + speeds[i], i, 1))

    for _ in range(min(concurrency, n_trials)):
        start(next_trial, 0.0)
        next_trial += 1
    while events:
        t, i, e = heapq.heappop(events)
        acc = 0.7 + 0.03 * quality[i] + 0.02 * math.log(e) + rng.normal(0, 0.005)
        rows.append({"trial_id": f"t{i:03d}", "epoch": e, "epoch_seconds": speeds[i], "timestamp": t})
        go_on = e < plan.max_epochs
        if go_on and e in rungs:
            seen = recorded[e]
            cutoff = np.percentile(seen, (1 - 1 / plan.reduction_factor) * 100) if seen else None
            go_on = cutoff is None or acc >= cutoff
            seen.append(acc)
        if go_on:
            heapq.heappush(events, (t + speeds[i], i, e + 1))
            continue
        outcome[i] = "completed" if e == plan.max_epochs else "stopped"
        if next_trial < n_trials:
            start(next_trial, t)
            next_trial += 1
    trials = pd.DataFrame({"trial_id": [f"t{i:03d}" for i in range(n_trials)],
                           "outcome": [outcome[i] for i in range(n_trials)],
                           "started": [started[i] for i in range(n_trials)]})
    return Replay(trials, pd.DataFrame(rows), plan, concurrency, reconstructed=False)


def simulated_errors(runs: int, n_trials: int, concurrency: int, plan: AshaPlan, seed: int = 0,
                     fractions=(0.25, 0.5, 0.75)) -> pd.DataFrame:
    """Median and 90th-percentile |error| of both estimates over `runs` simulated runs."""
    rng = np.random.default_rng(seed)
    tables = [measure(simulate_run(n_trials, concurrency, plan, rng), fractions) for _ in range(runs)]
    both = pd.concat(tables)
    out = []
    for at, g in both.groupby("at", sort=False):
        new, old = g["error"].abs(), g["old_error"].abs()
        out.append({"at": at, "median |error|": round(new.median(), 3), "p90 |error|": round(new.quantile(0.9), 3),
                    "bias": round(g["error"].median(), 3), "old median |error|": round(old.median(), 3),
                    "old p90 |error|": round(old.quantile(0.9), 3)})
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", type=Path)
    p.add_argument("--files", nargs=3, type=Path, metavar=("TRIALS", "EPOCHS", "SEARCH"))
    p.add_argument("--at", nargs="+", type=float, default=[0.25, 0.5, 0.75])
    p.add_argument("--concurrency", type=int, default=None,
                   help="trials at once (default: the most the run had; 1, the default CPU run's, to rebuild a run "
                   "without a clock or to simulate)")
    p.add_argument("--simulate", type=int, metavar="RUNS", default=0,
                   help="instead: RUNS simulated ASHA runs (--trials, --concurrency, the default CPU run's "
                   "plan: 2 epochs, rung 1, factor 2), the errors' median and 90th percentile")
    p.add_argument("--trials", type=int, default=9)
    args = p.parse_args(argv)
    if args.simulate:
        plan, slots = AshaPlan(2, 1, 2), args.concurrency or DEFAULT_CPU_CONCURRENCY
        print(f"{args.simulate} simulated runs of {args.trials} trials, concurrency {slots}, "
              f"rungs {plan.rungs()}, reduction factor {plan.reduction_factor}")
        table = simulated_errors(args.simulate, args.trials, slots, plan, fractions=args.at)
        print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))
        return 0
    if args.files:
        files = args.files
    elif args.run_dir:
        files = [args.run_dir / n for n in ("trials.csv", "epochs.csv", "search.json")]
    else:
        p.error("give RUN_DIR or --files TRIALS EPOCHS SEARCH")
    replay = load_replay(*files, args.concurrency)
    table = measure(replay, args.at)
    how = "reconstructed timeline (no clock in this run)" if replay.reconstructed else "recorded timestamps"
    print(f"{files[0].parent if not args.files else files[0]}: {len(replay.trials)} trials, "
          f"{replay.end - replay.start:.0f} s, concurrency {replay.concurrency}, rungs {replay.plan.rungs()} "
          f"(reduction factor {replay.plan.reduction_factor}), {how}")
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))
    return 0


def _has_tabulate() -> bool:
    import importlib.util

    return importlib.util.find_spec("tabulate") is not None


if __name__ == "__main__":
    sys.exit(main())
