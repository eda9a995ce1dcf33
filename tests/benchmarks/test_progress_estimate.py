"""benchmarks/progress_estimate.py: a finished run replayed at 25/50/75% of its time, on recorded timestamps
or, for a run without a clock, on a rebuilt timeline; and the simulated ASHA runs it can also measure."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from nas.orchestration.eta import AshaPlan
from tests.helpers.searchrun import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import progress_estimate  # noqa: E402


def test_replay_cuts_the_tables_to_what_the_driver_knew():
    replay = progress_estimate.simulate_run(9, 2, AshaPlan(2, 1, 2), np.random.default_rng(1))
    assert replay.start == 0.0 and set(replay.trials["outcome"]) <= {"completed", "stopped"}
    mid = (replay.start + replay.end) / 2
    trials, epochs = progress_estimate.state_at(replay, mid)
    assert (epochs["timestamp"] <= mid).all() and (trials["started"] <= mid).all()
    assert 0 < (trials["outcome"] == "running").sum() <= 2
    table = progress_estimate.measure(replay)
    assert list(table["at"]) == ["25%", "50%", "75%"]
    actual = table["actual_left_s"].to_numpy()
    assert actual == pytest.approx((replay.end - replay.start) * np.array([0.75, 0.5, 0.25]), abs=0.1)
    assert table["error"].notna().all()


def test_a_run_without_a_clock_is_replayed_on_a_rebuilt_timeline(capsys):
    files = [ROOT / "docs" / "runs" / f"cpu-default2-4GFLOPs-{n}" for n in ("trials.csv", "epochs.csv", "search.json")]
    assert progress_estimate.main(["--files", *map(str, files)]) == 0
    out = capsys.readouterr().out
    # the default CPU run trains one trial at a time (each on all the cores): its rebuilt timeline too
    assert "reconstructed timeline" in out and "concurrency 1" in out and "rungs [1]" in out
    replay = progress_estimate.load_replay(*files, None)
    epochs = pd.read_csv(files[1], dtype={"trial_id": str})
    # each trial lasts the sum of its epochs, in trials.csv's order, one after the other
    span = replay.epochs.groupby("trial_id")["timestamp"].max() - replay.trials.set_index("trial_id")["started"]
    assert span.to_dict() == pytest.approx(epochs.groupby("trial_id")["epoch_seconds"].sum().to_dict())
    assert replay.end - replay.start == pytest.approx(epochs["epoch_seconds"].sum())
    two = progress_estimate.load_replay(*files, 2)  # as asked
    assert two.concurrency == 2 and two.end - two.start < replay.end - replay.start


def test_the_cpu_default_is_one_trial_at_a_time():
    """What DEFAULT_CPU_CONCURRENCY stands for: with no --max-concurrent and no --cpus-per-trial, a CPU
    trial asks for every CPU of the node, so Ray runs one at a time."""
    from nas.orchestration.ray_env import trial_resources
    from nas.orchestration.settings import SearchSettings

    settings = SearchSettings(budget_flops=4e9)
    cluster = {"CPU": 2.0}
    assert trial_resources(settings, cluster, 28, nodes=[cluster]) == {"cpu": 2.0}
    assert progress_estimate.DEFAULT_CPU_CONCURRENCY == 1


def test_simulated_runs_summary():
    table = progress_estimate.simulated_errors(3, 9, 2, AshaPlan(2, 1, 2))
    assert list(table["at"]) == ["25%", "50%", "75%"] and (table["median |error|"] >= 0).all()


def test_a_recorded_default_run_is_replayed_on_its_own_clock(capsys):
    """docs/runs/cpu-timed-*: the default CPU search of 2026-12-02 (fresh clone of main), which recorded
    each trial's start and each epoch's report: replayed as it happened, one trial at a time."""
    files = [ROOT / "docs" / "runs" / f"cpu-timed-4GFLOPs-{n}" for n in ("trials.csv", "epochs.csv", "search.json")]
    replay = progress_estimate.load_replay(*files, None)
    assert not replay.reconstructed and replay.concurrency == 1 and len(replay.trials) == 9
    assert replay.end - replay.start == pytest.approx(1125, abs=1)
    assert progress_estimate.main(["--files", *map(str, files)]) == 0
    assert "recorded timestamps" in capsys.readouterr().out
