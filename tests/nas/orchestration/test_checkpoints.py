"""Disk (issue 13): a search keeps the checkpoints of unfinished trials and of its best K finished ones only,
a resume still works after the others were deleted, and the summary says how big the run is."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from nas.orchestration import SearchSettings, run
from nas.orchestration.checkpoints import KeepBestCheckpoints, format_size, run_size
from nas.orchestration.storage import RunLocation
from search_spaces.budget import parse_flops


def _checkpoint(tmp_path: Path, tid: str, index: int = 1):
    from ray.tune import Checkpoint

    folder = tmp_path / f"trial_{tid}" / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"x" * 100)
    return Checkpoint.from_directory(folder)


def _trial(tmp_path: Path, tid: str, status: str, best: float | None, epochs: int = 2):
    analysis = {"val_accuracy": {"max": best}} if best is not None else {}
    return SimpleNamespace(trial_id=tid, status=status, metric_analysis=analysis,
                           last_result={"training_iteration": epochs}, checkpoint=_checkpoint(tmp_path, tid))


def _kept(trials) -> set[str]:
    return {t.trial_id for t in trials if Path(t.checkpoint.path).is_dir()}


def _snapshots(keep: KeepBestCheckpoints, n: int) -> None:
    for _ in range(n):  # what Tune does while it writes an experiment snapshot
        keep.get_state()


def test_only_the_best_k_finished_trials_keep_their_checkpoints(tmp_path):
    trials = [_trial(tmp_path, "a", "TERMINATED", 0.50), _trial(tmp_path, "b", "TERMINATED", 0.70),
              _trial(tmp_path, "c", "RUNNING", 0.10), _trial(tmp_path, "d", "PAUSED", 0.05),
              _trial(tmp_path, "e", "ERROR", 0.01), _trial(tmp_path, "f", "PENDING", None),
              _trial(tmp_path, "g", "TERMINATED", None, epochs=0)]  # finished without an accuracy: ranks last
    keep = KeepBestCheckpoints(keep=2)
    done = trials[6]
    keep.on_trial_complete(iteration=1, trials=trials, trial=done)
    _snapshots(keep, 1)  # the snapshot that records "g" TERMINATED may not be stored yet: nothing goes
    assert _kept(trials) == {"a", "b", "c", "d", "e", "f", "g"}
    _snapshots(keep, 1)
    assert _kept(trials) == {"a", "b", "c", "d", "e", "f"}
    # a better trial completes (still RUNNING while Tune calls the hook): "a" drops out of the best 2
    better = trials[2]
    better.metric_analysis = {"val_accuracy": {"max": 0.9}}
    keep.on_trial_complete(iteration=2, trials=trials, trial=better)
    state = keep.get_state()
    # the deletions survive a resume (Tune saves callback state), the one still waiting included
    restored = KeepBestCheckpoints()
    restored.set_state(state)
    assert restored.keep == 2 and restored.deleted == {"a", "g"} and _kept(trials) == {"a", "b", "c", "d", "e", "f"}
    _snapshots(restored, 1)
    assert _kept(trials) == {"b", "c", "d", "e", "f"}
    with pytest.raises(ValueError):
        KeepBestCheckpoints(keep=-1)


def test_keep_zero_deletes_every_finished_checkpoint_only(tmp_path):
    trials = [_trial(tmp_path, "a", "TERMINATED", 0.5), _trial(tmp_path, "b", "PAUSED", 0.4)]
    keep = KeepBestCheckpoints(keep=0)
    keep.on_trial_complete(iteration=1, trials=trials, trial=trials[0])
    _snapshots(keep, 2)
    assert _kept(trials) == {"b"}


def test_a_superseded_checkpoint_outlives_two_snapshots_and_the_latest_stays(tmp_path):
    """Killed between a new checkpoint and the snapshot that records it, the stored experiment state still
    names the previous checkpoint: it must exist (Ray's num_to_keep=1 had deleted it; CI saw the resumed
    trial fail on 'Could not recover from checkpoint as it does not exist on storage anymore')."""
    trial = SimpleNamespace(trial_id="t", status="RUNNING")
    keep = KeepBestCheckpoints(keep=1)
    first, second, third = (_checkpoint(tmp_path, "t", i) for i in (0, 1, 2))
    keep.on_checkpoint(iteration=1, trials=[trial], trial=trial, checkpoint=first)
    keep.on_checkpoint(iteration=2, trials=[trial], trial=trial, checkpoint=second)
    assert Path(first.path).is_dir()  # the killed driver's state names `first`
    _snapshots(keep, 1)
    keep.on_checkpoint(iteration=3, trials=[trial], trial=trial, checkpoint=third)
    assert Path(first.path).is_dir() and Path(second.path).is_dir()
    _snapshots(keep, 1)
    assert not Path(first.path).exists() and Path(second.path).is_dir() and Path(third.path).is_dir()
    keep.on_experiment_end(trials=[trial])  # after Tune's last snapshot: only the latest is left
    assert [p.name for p in (tmp_path / "trial_t").iterdir()] == ["checkpoint_000002"]


def test_run_size_counts_every_file(tmp_path):
    loc = RunLocation.parse(str(tmp_path), "run")
    (tmp_path / "run" / "a" / "b").mkdir(parents=True)
    (tmp_path / "run" / "x").write_bytes(b"1" * 1500)
    (tmp_path / "run" / "a" / "b" / "y").write_bytes(b"2" * 500)
    assert run_size(loc) == 2000 and format_size(2000) == "2.0 KB" and format_size(12) == "12 B"
    assert format_size(1_400_000_000) == "1.4 GB"


def make_fails_first(state_dir: str):
    """The real trainable; the first trial to start raises in its epoch-2 report, after its epoch-1
    checkpoint exists (with max_failures=0 it ends as ERROR; on --resume it continues and completes)."""

    def trial(config: dict) -> None:
        from ray import tune

        from trials.trainable import train_trial

        marker = Path(state_dir) / "failed"
        first = not marker.exists() and tune.get_checkpoint() is None
        if first:
            marker.write_text(tune.get_context().get_trial_id())
        real_report = tune.report

        def report(metrics, *args, **kwargs):
            if first and metrics.get("epoch") == 2:
                raise RuntimeError("injected fault after the epoch-1 checkpoint")
            return real_report(metrics, *args, **kwargs)

        tune.report = report
        try:
            train_trial(config)
        finally:
            tune.report = real_report

    return trial


def _checkpointed(run_dir: Path) -> set[str]:
    return {p.parent.name.removeprefix("trial_") for p in run_dir.glob("trial_*/checkpoint_*") if p.is_dir()}


def test_search_keeps_best_k_and_resumes_after_deleting_the_rest(tmp_path, ray_instance, capsys):
    from nas.orchestration.tuner import build_tuner, finish

    state = tmp_path / "state"
    state.mkdir()
    s = SearchSettings(budget_flops=parse_flops("500MFLOPs"), dataset="synthetic", train_subset=64, val_size=64,
                       batch_size=32, trials=5, max_epochs=2, grace_epochs=1, reduction_factor=2, scheduler="none",
                       max_concurrent=1, cpus_per_trial=2, max_failures=0, storage_path=str(tmp_path), name="keep",
                       keep_checkpoints=2)
    summary = run(s, False, ray_instance.cluster_resources(), trainable=make_fails_first(str(state)))
    failed = (state / "failed").read_text()
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str}).set_index("trial_id")
    assert frame.at[failed, "outcome"] == "error"
    done = frame[frame["outcome"] == "completed"].sort_values(["best_val_accuracy", "epochs"], ascending=False)
    assert len(done) == 4
    # the errored trial (which --resume restarts) and the best 2 finished ones keep their checkpoints
    assert _checkpointed(s.run_dir) == {failed, *done.index[:2]}
    assert len(list(s.run_dir.glob("trial_*/checkpoint_*"))) == 3  # the latest one each; superseded ones went
    # the summary reports the run's size, measured on disk
    size = sum(f.stat().st_size for f in s.run_dir.rglob("*") if f.is_file())
    assert summary["run_size_bytes"] > 0 and abs(summary["run_size_bytes"] - size) < 0.05 * size
    assert "run size: " in capsys.readouterr().out

    # Tuner.restore with finished trials' checkpoints deleted: the errored trial resumes from its own
    tuner, *_ = build_tuner(s, True, ray_instance.cluster_resources(), trainable=make_fails_first(str(state)))
    grid = tuner.fit()
    assert not grid.errors
    finish(s, log=lambda *_: None)
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str}).set_index("trial_id")
    assert frame.at[failed, "outcome"] == "completed" and frame.at[failed, "epochs"] == 2
    done = frame[frame["outcome"] == "completed"].sort_values(["best_val_accuracy", "epochs"], ascending=False)
    assert len(done) == 5 and _checkpointed(s.run_dir) == set(done.index[:2])
    assert len(list(s.run_dir.glob("trial_*/checkpoint_*"))) == 2  # one each: the superseded ones went too
    assert os.path.isdir(s.run_dir)
