"""Faulty trials (issue 6): each is recorded with its status and reason, failures are retried from the
checkpoint up to --max-failures, and the search completes and reports."""

from __future__ import annotations

import json

import pandas as pd

from nas.orchestration import SearchSettings, run_search
from search_spaces.budget import parse_flops
from tests.helpers.faulty_trainable import make_faulty


def settings(tmp_path, **kw) -> SearchSettings:
    base = dict(budget_flops=parse_flops("500MFLOPs"), dataset="synthetic", train_subset=192, val_size=256,
                batch_size=32, trials=5, max_epochs=3, grace_epochs=1, reduction_factor=3, scheduler="none",
                max_concurrent=1, cpus_per_trial=2, max_failures=1, storage_path=str(tmp_path), name="faults",
                references="none")  # every trial the sampler's: faults hit sampled and reference trials alike
    base.update(kw)
    return SearchSettings(**base)


def test_faulty_trials_are_recorded_retried_and_the_search_completes(tmp_path, ray_instance):
    state = tmp_path / "state"
    state.mkdir()
    s = settings(tmp_path)
    summary = run_search(s, trainable=make_faulty(str(state)))
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(frame) == 5 and frame["trial_id"].is_unique
    faults = {p.stem: p.read_text().split("\n")[0] for p in state.glob("*.attempts")}
    attempts = {p.stem: p.read_text().count("attempt") for p in state.glob("*.attempts")}
    by_fault = {faults[row.trial_id]: row for row in frame.itertuples()}

    # raised / worker killed: retried once from the epoch-1 checkpoint, then completed
    for fault, words in (("raise", "injected fault"), ("kill", "")):
        row = by_fault[fault]
        assert attempts[row.trial_id] == 2, fault
        assert row.outcome == "completed" and row.epochs == 3 and row.failures == 1, fault
        assert words in str(row.reason), (fault, row.reason)
    epochs = pd.read_csv(s.run_dir / "epochs.csv", dtype={"trial_id": str})
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    for fault in ("raise", "kill"):
        assert sorted(epochs[epochs.trial_id == by_fault[fault].trial_id].epoch) == [1, 2, 3]

    # NaN loss: ended as diverged with the worst accuracy, not retried; OOM: ended as oom naming the batch
    nan, oom = by_fault["nan"], by_fault["oom"]
    assert nan.outcome == "diverged" and nan.val_accuracy == 0.0 and "loss" in nan.reason.lower()
    assert oom.outcome == "oom" and "batch size 32" in oom.reason
    assert attempts[nan.trial_id] == 1 and attempts[oom.trial_id] == 1
    assert by_fault["None"].outcome == "completed"

    # the search completed and reported: best.json is a trial that trained, the report lists the failures
    best = json.loads((s.run_dir / "best.json").read_text())
    assert best in [json.loads(a) for a in frame.loc[frame.outcome == "completed", "arch"]]
    assert summary["best_trial"] in set(frame.loc[frame.outcome == "completed", "trial_id"])
    html = (s.run_dir / "report.html").read_text()
    assert "diverged" in html and "oom" in html


def test_a_trial_failing_beyond_max_failures_is_an_error_row(tmp_path, ray_instance):
    from ray import tune

    def always_fails(config):
        tune.report({"epoch": 1, "val_accuracy": 0.5, "status": "ok"})
        raise ValueError("broken data pipeline (injected)")

    s = settings(tmp_path, trials=2, max_failures=1, name="errors")
    run_search(s, trainable=always_fails)
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(frame) == 2
    assert set(frame["outcome"]) == {"error"} and set(frame["status"]) == {"ERROR"}
    assert frame["reason"].str.contains("broken data pipeline").all()
    assert (frame["failures"] == 2).all()  # the first attempt and the one retry
    assert not (s.run_dir / "best.json").exists()
    assert (s.run_dir / "report.html").exists()
