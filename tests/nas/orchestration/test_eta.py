"""The search's time-left estimate (nas.orchestration.eta) on synthetic trials/epochs tables: ASHA's rungs,
the measured costs, the running trials' progress and the end of a search, when one long trial runs alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nas.orchestration.eta import AshaPlan, continue_fractions, draw_epochs_left, measure_costs, seconds_left


def tables(trials: list[tuple], epochs: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trials: (id, outcome, started); epochs: (id, epoch, epoch_seconds, timestamp)."""
    return (pd.DataFrame(trials, columns=["trial_id", "outcome", "started"]),
            pd.DataFrame(epochs, columns=["trial_id", "epoch", "epoch_seconds", "timestamp"]))


def test_asha_rungs_are_rays_milestones():
    assert AshaPlan(2, 1, 2).rungs() == [1]
    assert AshaPlan(12, 1, 3).rungs() == [1, 3, 9]
    assert AshaPlan(12, 2, 2).rungs() == [2, 4, 8]
    assert AshaPlan(4).rungs() == []  # no scheduler: every trial runs max_epochs


def test_epochs_left_cross_rungs_with_their_fraction():
    rng = np.random.default_rng(0)
    plan = AshaPlan(9, 1, 3)
    assert draw_epochs_left(0, plan, {1: 0.0, 3: 0.0}, rng) == 1  # cut at the first rung
    assert draw_epochs_left(0, plan, {1: 1.0, 3: 1.0}, rng) == 9
    assert draw_epochs_left(1, plan, {1: 0.0, 3: 0.0}, rng) == 2  # running after rung 1: it went on, to rung 3
    assert draw_epochs_left(3, plan, {1: 0.0, 3: 0.0}, rng) == 6
    draws = [draw_epochs_left(0, AshaPlan(2, 1, 2), {1: 0.5}, rng) for _ in range(4000)]
    assert np.mean(draws) == pytest.approx(1.5, abs=0.03)  # 1 + 1/2


def test_fractions_start_at_one_over_eta_and_follow_the_runs_decisions():
    plan = AshaPlan(2, 1, 2)
    empty = tables([], [])
    assert continue_fractions(*empty, plan) == {1: pytest.approx(0.5)}
    # four trials went past rung 1, none was cut; the first (a) had no choice: (3 + 2 x 0.5) / (3 + 2)
    trials, epochs = tables([(t, "completed", 0) for t in "abcd"],
                            [(t, e, 10.0, 0) for t in "abcd" for e in (1, 2)])
    assert continue_fractions(trials, epochs, plan) == {1: pytest.approx(4 / 5)}
    trials, epochs = tables([(t, "stopped", 0) for t in "abcd"], [(t, 1, 10.0, 0) for t in "abcd"])
    assert continue_fractions(trials, epochs, plan) == {1: pytest.approx(1 / 5)}


def test_the_first_trial_at_a_rung_is_no_decision():
    """Ray's ASHA lets the first trial at a rung go on (nothing recorded there to compare with): it says
    nothing of the fraction that goes on after it."""
    plan = AshaPlan(2, 1, 2)
    # a reached rung 1 first (went on, as it must); then b went on and c was cut: one decision each way
    trials, epochs = tables([("a", "completed", 0), ("b", "completed", 0), ("c", "stopped", 0)],
                            [("a", 1, 10.0, 10), ("a", 2, 10.0, 20), ("b", 1, 10.0, 30), ("b", 2, 10.0, 40),
                             ("c", 1, 10.0, 50)])
    assert continue_fractions(trials, epochs, plan) == {1: pytest.approx((1 + 2 * 0.5) / (2 + 2))}
    # the first by the clock, not by the table's order
    later_first = epochs.assign(timestamp=epochs["timestamp"].where(epochs["trial_id"] != "a", 100))
    assert continue_fractions(trials, later_first, plan) == {1: pytest.approx((1 + 2 * 0.5) / (2 + 2))}
    first_is_c = epochs.assign(timestamp=epochs["timestamp"].where(epochs["trial_id"] != "c", 0))
    assert continue_fractions(trials, first_is_c, plan) == {1: pytest.approx((2 + 2 * 0.5) / (2 + 2))}


def test_costs_measure_start_overhead_and_time_between_reports():
    # a: started at 0, epoch 1 (8 s of training) reported at 10, epoch 2 (8 s) at 20: 2 s before the first
    # epoch, and 10 s of wall time per 8 s epoch after it
    trials, epochs = tables([("a", "completed", 0.0)], [("a", 1, 8.0, 10.0), ("a", 2, 8.0, 20.0)])
    c = measure_costs(trials, epochs)
    assert c.start_overhead == pytest.approx(2.0) and c.wall_ratio == pytest.approx(10 / 8)
    assert c.epoch("a") == pytest.approx(10.0) and c.epoch("unknown") == pytest.approx(10.0)


def test_estimate_lays_the_work_over_the_slots():
    plan = AshaPlan(2)  # no ASHA: every trial runs 2 epochs, 10 s each, no overhead
    trials, epochs = tables([("a", "completed", 0.0), ("b", "running", 20.0)],
                            [("a", 1, 10.0, 10.0), ("a", 2, 10.0, 20.0), ("b", 1, 10.0, 30.0)])
    assert seconds_left(*tables([("a", "running", 0.0)], []), total=5, plan=plan, concurrency=2) is None
    # b: 6 s left of its second epoch (4 s in); 3 trials of 20 s: at 20 and 26 on the two slots, then 40
    assert seconds_left(trials, epochs, total=5, plan=plan, concurrency=2, now=34.0) == pytest.approx(40.0)
    assert seconds_left(trials, epochs, total=5, plan=plan, concurrency=1, now=34.0) == pytest.approx(66.0)


def test_asha_shortens_the_trials_still_to_come():
    trials, epochs = tables([("a", "running", 0.0)], [("a", 1, 10.0, 10.0)])
    full = seconds_left(trials, epochs, total=21, plan=AshaPlan(4), concurrency=1, now=10.0)
    asha = seconds_left(trials, epochs, total=21, plan=AshaPlan(4, 1, 2), concurrency=1, now=10.0)
    # 20 new trials: 4 epochs each without ASHA; 1 + 1/2 + 2/4 = 2 with (rungs 1 and 2, no decisions yet)
    assert full == pytest.approx(30 + 20 * 40)
    assert asha == pytest.approx(30 + 20 * 20, rel=0.1)


def test_a_long_last_trial_counts_down_instead_of_rising():
    """The reviewer's run: one deep trial running alone near the end. Trials finished / elapsed rose by
    ~5 s per second there; this estimate falls as the trial's epoch goes on, and is not divided by the
    slots the search no longer fills."""
    plan = AshaPlan(2, 1, 2)
    trials, epochs = tables([("a", "completed", 0.0), ("b", "stopped", 0.0), ("deep", "running", 30.0)],
                            [("a", 1, 15.0, 15.0), ("a", 2, 15.0, 30.0), ("b", 1, 15.0, 15.0),
                             ("deep", 1, 120.0, 150.0)])
    left = [seconds_left(trials, epochs, total=3, plan=plan, concurrency=2, now=t) for t in (160, 200, 240)]
    assert left == pytest.approx([110.0, 70.0, 30.0])  # its own 120 s per epoch, counted down
