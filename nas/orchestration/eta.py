"""The search's time-left estimate, from trial-epochs and aware of ASHA: a pure function of the trials and
epochs tables at one moment, so that a finished run's tables replay it (benchmarks/progress_estimate.py).

Model: every trial still to run, and every running one, has an expected number of epochs left. ASHA
stops a trial at a rung (epochs grace, grace * eta, grace * eta^2, ... below max_epochs) unless it is in
the top 1/eta there, so a new trial expects grace + (rung_2 - rung_1) / eta + ... epochs. The fraction
that goes on at each rung is taken from this run's decisions so far, starting from 1/eta (two pseudo
decisions, so that the first few decisions move it but do not fix it). Each epoch costs the trial's own
measured seconds per epoch (the run's mean until it has one: architectures differ by 10x in speed).
The work is then laid out over the concurrent trial slots in order (running trials first, each on its
own slot, minus the time it has already spent on its current epoch): the estimate is when the last slot
ends, which a division by the concurrency misses at the end of a search, when one long trial runs alone.

The estimate it replaces divided finished trials into elapsed time: it rose by ~5 s per second while a
long trial ran and ignored that ASHA shortens later trials (7 min 19 s shown 38 s before the end).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

SAMPLES = 200  # draws of ASHA's cuts and trial speeds per estimate (9 trials: ~10 ms on this 2-core machine)
PRIOR_DECISIONS = 2.0  # weight of the 1/eta prior against the run's own rung decisions
FINISHED = ("completed", "stopped", "diverged", "oom", "error")


@dataclass(frozen=True)
class AshaPlan:
    """The epochs a trial may run: max_epochs, and ASHA's rungs (none when `reduction_factor` is None)."""

    max_epochs: int
    grace_epochs: int = 1
    reduction_factor: float | None = None

    def rungs(self) -> list[int]:
        """Epochs after which ASHA decides (Ray's milestones: grace * eta^k below max_epochs)."""
        if not self.reduction_factor or self.reduction_factor <= 1:
            return []
        out, r = [], float(self.grace_epochs)
        while r < self.max_epochs:
            out.append(int(round(r)))
            r *= self.reduction_factor
        return out


def continue_fractions(trials: pd.DataFrame, epochs: pd.DataFrame, plan: AshaPlan) -> dict[int, float]:
    """At each rung, the expected fraction of trials that go on: 1/eta, moved by this run's decisions
    (a trial past the rung went on; one stopped by ASHA at the rung did not). The first trial to reach
    a rung is no decision: Ray's ASHA compares a trial with those recorded there before it, and lets the
    first go on (async_hyperband._Bracket.cutoff is None); counted, it raised the fraction of every run."""
    prior = 1.0 / plan.reduction_factor if plan.reduction_factor else 1.0
    last = epochs.groupby("trial_id")["epoch"].max() if len(epochs) else pd.Series(dtype=float)
    stopped = set(trials.loc[trials["outcome"] == "stopped", "trial_id"]) if len(trials) else set()
    out = {}
    for r in plan.rungs():
        first = first_at(epochs, r)
        went_on = int(sum(1 for tid, e in last.items() if e > r and tid != first))
        cut = sum(1 for tid, e in last.items() if e == r and tid in stopped and tid != first)
        out[r] = (went_on + PRIOR_DECISIONS * prior) / (went_on + cut + PRIOR_DECISIONS)
    return out


def first_at(epochs: pd.DataFrame, rung: int) -> str | None:
    """The trial that reported the rung's epoch first (by `timestamp` where known, else table order)."""
    at = epochs[epochs["epoch"] == rung] if len(epochs) else epochs
    if not len(at):
        return None
    if "timestamp" in at and at["timestamp"].notna().all():
        at = at.sort_values("timestamp", kind="stable")
    return str(at["trial_id"].iloc[0])


def draw_epochs_left(done: int, plan: AshaPlan, fractions: Mapping[int, float], rng: np.random.Generator) -> int:
    """One draw of the epochs still to run for a trial that has finished `done` epochs and is running or
    about to start: the next epoch runs; after each rung it goes on with the rung's fraction (a rung at
    `done` is already passed: ASHA decides as the epoch is reported)."""
    k = done + 1
    while k < plan.max_epochs and (k not in fractions or rng.random() < fractions[k]):
        k += 1
    return k - done


@dataclass(frozen=True)
class Costs:
    """What the run has measured: seconds per trial-epoch (per trial, and the mean for trials without
    one), the wall time a trial costs beyond its epochs (from the previous trial's end on its slot to its
    own first epoch: process start, model, data) and the ratio of wall time between two epochs' reports
    to the epochs' own seconds (evaluation, checkpoint, reporting)."""

    per_trial: Mapping[str, float]
    mean_epoch: float
    start_overhead: float = 0.0
    wall_ratio: float = 1.0

    def epoch(self, trial_id: str | None = None) -> float:
        return self.per_trial.get(trial_id, self.mean_epoch) * self.wall_ratio


def measure_costs(trials: pd.DataFrame, epochs: pd.DataFrame) -> Costs | None:
    measured = epochs.dropna(subset=["epoch_seconds"]) if len(epochs) else epochs
    if not len(measured):
        return None
    per_trial = measured.groupby("trial_id")["epoch_seconds"].mean().to_dict()
    overhead, gaps, ratios = [], [], []
    if "timestamp" in measured and measured["timestamp"].notna().any():
        timed = measured.dropna(subset=["timestamp"]).sort_values(["trial_id", "epoch"])
        started = (dict(zip(trials["trial_id"], trials["started"], strict=True))
                   if "started" in trials and len(trials) else {})
        for tid, g in timed.groupby("trial_id"):
            first = g.iloc[0]
            s = started.get(tid)
            if s is not None and not pd.isna(s) and int(first["epoch"]) == 1:
                overhead.append(max(0.0, float(first["timestamp"]) - float(s) - float(first["epoch_seconds"])))
            if len(g) >= 2:
                wall = g["timestamp"].diff().iloc[1:].to_numpy(dtype=float)
                own = g["epoch_seconds"].iloc[1:].to_numpy(dtype=float)
                if own.sum() > 0:
                    ratios.append(wall.sum() / own.sum())
        # Between trials: from a trial's last report to the start of the next one on its slot (Tune
        # tearing down, checkpoint bookkeeping, starting the next process): a slot's share of a trial.
        ends = timed.groupby("trial_id")["timestamp"].max()
        finished = trials.loc[trials["outcome"].isin(FINISHED), "trial_id"] if len(trials) else []
        ends = sorted(float(ends[t]) for t in finished if t in ends.index)
        for s in sorted(float(v) for v in started.values() if v is not None and not pd.isna(v)):
            before = [e for e in ends if e <= s]
            if before:
                gaps.append(s - before[-1])
                ends.remove(before[-1])
    start = (sum(overhead) / len(overhead) if overhead else 0.0) + (sum(gaps) / len(gaps) if gaps else 0.0)
    return Costs(per_trial, float(measured["epoch_seconds"].mean()), float(start),
                 max(1.0, float(sum(ratios) / len(ratios))) if ratios else 1.0)


def seconds_left(trials: pd.DataFrame, epochs: pd.DataFrame, *, total: int, plan: AshaPlan, concurrency: int,
                 now: float | None = None, samples: int = SAMPLES, seed: int = 0) -> float | None:
    """Expected seconds until the search ends, or None before any epoch has been measured.

    trials: trial_id, outcome (running, completed, stopped, pending, diverged...) and, where known,
    `started` (unix time), one row per trial seen; epochs: trial_id, epoch, epoch_seconds and, where
    known, `timestamp` (unix time the epoch was reported); total: the trials the search will run;
    concurrency: trials that run at once; now (unix time): credits the time running trials have already
    spent on the epoch in progress.

    The mean over `samples` draws (seeded: the same tables give the same estimate) of when the last slot
    ends, each draw deciding ASHA's cuts and the speed of the trials not started yet (one of the
    measured trials' speeds): the end of a search is its longest remaining trial, which a mean trial
    length underestimates.
    """
    costs = measure_costs(trials, epochs)
    if costs is None:
        return None
    rng = np.random.default_rng(seed)
    fractions = continue_fractions(trials, epochs, plan)
    done_epochs = epochs.groupby("trial_id")["epoch"].max().to_dict() if len(epochs) else {}
    last_report = ({} if "timestamp" not in epochs or not len(epochs) else
                   epochs.dropna(subset=["timestamp"]).groupby("trial_id")["timestamp"].max().to_dict())
    rows = trials.to_dict("records") if len(trials) else []
    running = [r for r in rows if r["outcome"] in ("running", "retrying")]
    finished = sum(1 for r in rows if r["outcome"] in FINISHED)
    waiting = max(0, total - finished - len(running))
    concurrency = max(1, concurrency, len(running))

    # Each running trial: what is left of the epoch in progress, and the cost of each later epoch.
    in_progress = []
    for r in running:
        tid, done = r["trial_id"], int(done_epochs.get(r["trial_id"], 0))
        per_epoch = costs.epoch(tid)
        current = per_epoch + (costs.start_overhead if done == 0 else 0.0)
        since = last_report.get(tid) if done else r.get("started")
        spent = 0.0 if now is None or since is None or pd.isna(since) else max(0.0, now - float(since))
        if spent > current:  # slower than thought: it is taken as nearly done, and its epochs as that slow
            if done == 0:
                per_epoch = max(per_epoch, spent * 1.1 - costs.start_overhead)
            current = spent * 1.1
        in_progress.append((done, current - spent, per_epoch))
    speeds = np.fromiter(costs.per_trial.values(), dtype=float) * costs.wall_ratio

    ends = []
    for _ in range(max(1, samples)):
        slots = [left + (draw_epochs_left(done, plan, fractions, rng) - 1) * per_epoch
                 for done, left, per_epoch in in_progress]
        slots += [0.0] * (concurrency - len(slots))
        heapq.heapify(slots)
        for _ in range(waiting):  # each waiting trial starts on the first slot to free up
            length = costs.start_overhead + draw_epochs_left(0, plan, fractions, rng) * rng.choice(speeds)
            heapq.heappush(slots, heapq.heappop(slots) + length)
        ends.append(max(slots) if slots else 0.0)
    end = float(np.mean(ends))
    return end if math.isfinite(end) else None


__all__ = ["AshaPlan", "Costs", "continue_fractions", "draw_epochs_left", "measure_costs", "seconds_left"]
