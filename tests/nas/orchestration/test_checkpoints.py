"""Disk (issue 13): a search keeps the checkpoints of unfinished trials and of its best K finished ones only,
a resume still works after the others were deleted, and the summary says how big the run is."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow.fs as pafs
import pytest

from nas.orchestration import SearchSettings, run_search
from nas.orchestration.checkpoints import KeepBestCheckpoints, format_size, run_size
from nas.rundir.location import RunLocation
from nas.rundir.schema import rank_trials
from search_spaces.budget import parse_flops


def _checkpoint(tmp_path: Path, tid: str, index: int = 1):
    from ray.tune import Checkpoint

    folder = tmp_path / f"trial_{tid}" / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"x" * 100)
    return Checkpoint.from_directory(folder)


def _trial(tmp_path: Path, tid: str, status: str, best: float | None, epochs: int = 2, max_epochs: int = 2):
    analysis = {"val_accuracy": {"max": best}} if best is not None else {}
    return SimpleNamespace(trial_id=tid, status=status, metric_analysis=analysis,
                           config={"train": {"epochs": max_epochs}},
                           last_result={"training_iteration": epochs, "epoch": epochs},
                           checkpoint=_checkpoint(tmp_path, tid))


def _kept(trials) -> set[str]:
    return {t.trial_id for t in trials if Path(t.checkpoint.path).is_dir()}


class FakeTune:
    """Ray's own snapshot step (_ExperimentCheckpointManager.sync_up_experiment_state, period 0) around the
    callback, with a real background syncer whose uploads run only while `uploads` is set."""

    def __init__(self, tmp_path: Path, keep: KeepBestCheckpoints, monkeypatch) -> None:
        import ray.train._internal.storage as ray_storage
        from ray.train._internal.storage import _FilesystemSyncer
        from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

        self.keep, self.uploads, self.fail = keep, threading.Event(), False
        self.uploads.set()
        storage = SimpleNamespace(experiment_driver_staging_path=str(tmp_path / "staging"),
                                  experiment_fs_path=str(tmp_path / "stored"),
                                  syncer=_FilesystemSyncer(pafs.LocalFileSystem(), sync_period=0, sync_timeout=60))
        self.syncer = storage.syncer
        self.manager = _ExperimentCheckpointManager(storage=storage, checkpoint_period=0)
        monkeypatch.setattr(ray_storage, "_upload_to_fs_path", self._upload)

    def _upload(self, **kwargs) -> None:
        assert self.uploads.wait(30)
        if self.fail:
            raise OSError("storage refused the upload")

    def snapshot(self, n: int = 1, final: bool = False) -> None:
        for _ in range(n):
            self.manager.sync_up_experiment_state(save_fn=self.keep.get_state, force=final, wait=final)

    def settle(self) -> None:
        """Let the upload in flight finish (without Tune's wait, which would hide it from the callback)."""
        process = self.syncer._sync_process
        while process is not None and process.is_running:
            time.sleep(0.01)


def test_only_the_best_k_finished_trials_keep_their_checkpoints(tmp_path, monkeypatch):
    trials = [_trial(tmp_path, "a", "TERMINATED", 0.50), _trial(tmp_path, "b", "TERMINATED", 0.70),
              _trial(tmp_path, "c", "RUNNING", 0.10), _trial(tmp_path, "d", "PAUSED", 0.05),
              _trial(tmp_path, "e", "ERROR", 0.01), _trial(tmp_path, "f", "PENDING", None),
              _trial(tmp_path, "g", "TERMINATED", None, epochs=0)]  # finished without an accuracy: ranks last
    keep = KeepBestCheckpoints(keep=2)
    tune = FakeTune(tmp_path, keep, monkeypatch)
    keep.on_trial_complete(iteration=1, trials=trials, trial=trials[6])
    tune.snapshot()  # records "g" TERMINATED and launches its upload: until that is done, nothing goes
    assert _kept(trials) == {"a", "b", "c", "d", "e", "f", "g"}
    tune.settle()
    tune.snapshot()
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
    tune = FakeTune(tmp_path / "resumed", restored, monkeypatch)
    restored.on_step_begin(iteration=0, trials=trials)
    tune.snapshot()
    tune.settle()
    tune.snapshot()
    assert _kept(trials) == {"b", "c", "d", "e", "f"}
    with pytest.raises(ValueError):
        KeepBestCheckpoints(keep=-1)


def test_keep_zero_deletes_every_finished_checkpoint_only(tmp_path, monkeypatch):
    trials = [_trial(tmp_path, "a", "TERMINATED", 0.5), _trial(tmp_path, "b", "PAUSED", 0.4)]
    keep = KeepBestCheckpoints(keep=0)
    tune = FakeTune(tmp_path, keep, monkeypatch)
    keep.on_trial_complete(iteration=1, trials=trials, trial=trials[0])
    tune.snapshot()
    tune.settle()
    tune.snapshot()
    assert _kept(trials) == {"b"}


def test_a_superseded_checkpoint_waits_until_a_stored_experiment_state_records_its_replacement(tmp_path, monkeypatch):
    """Killed before the experiment state that records a new checkpoint is on storage, Tune restores the
    previous one: it must exist. Snapshots are written at every step of Tune's loop, uploads take longer
    (an S3 PUT): counting snapshots deleted it while the stored state still named it."""
    trial = SimpleNamespace(trial_id="t", status="RUNNING")
    keep = KeepBestCheckpoints(keep=1)
    tune = FakeTune(tmp_path, keep, monkeypatch)
    first, second, third = (_checkpoint(tmp_path, "t", i) for i in (0, 1, 2))
    keep.on_checkpoint(iteration=1, trials=[trial], trial=trial, checkpoint=first)
    tune.uploads.clear()  # an upload in flight: launched before `second`, so its state names `first`
    tune.snapshot()
    keep.on_checkpoint(iteration=2, trials=[trial], trial=trial, checkpoint=second)
    tune.snapshot(20)  # each records `second`, none is uploaded: the one in flight blocks them all
    assert Path(first.path).is_dir()
    tune.uploads.set()
    tune.settle()
    tune.snapshot()  # the finished upload carried a state from before `second`: `first` stays
    assert Path(first.path).is_dir()
    tune.settle()  # the upload this snapshot's predecessor launched carried `second`
    tune.snapshot()
    assert not Path(first.path).exists() and Path(second.path).is_dir()

    # an upload that fails does not count
    keep.on_checkpoint(iteration=3, trials=[trial], trial=trial, checkpoint=third)
    tune.fail = True
    tune.snapshot()
    tune.settle()
    tune.snapshot()
    assert Path(second.path).is_dir()
    # after an exception Tune ends without a last snapshot: what waits stays
    keep.on_experiment_end(trials=[trial])
    assert Path(second.path).is_dir()
    # Tune's last snapshot (force, wait) is followed by on_experiment_end: only the latest is left
    tune.fail = False
    tune.snapshot(final=True)
    keep.on_experiment_end(trials=[trial])
    assert [p.name for p in (tmp_path / "trial_t").iterdir()] == ["checkpoint_000002"]


def test_a_failed_last_upload_keeps_what_the_stored_state_names(tmp_path, monkeypatch):
    trial = SimpleNamespace(trial_id="t", status="RUNNING")
    keep = KeepBestCheckpoints(keep=1)
    tune = FakeTune(tmp_path, keep, monkeypatch)
    first, second = (_checkpoint(tmp_path, "t", i) for i in (0, 1))
    keep.on_checkpoint(iteration=1, trials=[trial], trial=trial, checkpoint=first)
    keep.on_checkpoint(iteration=2, trials=[trial], trial=trial, checkpoint=second)
    tune.fail = True  # Ray logs the failed upload of its last snapshot and goes on
    tune.snapshot(final=True)
    keep.on_experiment_end(trials=[trial])
    assert Path(first.path).is_dir()


def test_after_a_resume_the_checkpoint_a_trial_restores_from_is_never_deleted(tmp_path, monkeypatch):
    """Killed during an upload, the stored callback state (which lists `first` as superseded) can be newer
    than the stored trial states (which name `first` as the trial's latest): the resumed trial needs it."""
    first = _checkpoint(tmp_path, "t", 0)
    trial = SimpleNamespace(trial_id="t", status="PENDING", checkpoint=first)
    keep = KeepBestCheckpoints(keep=1)
    keep.set_state({"keep": 1, "deleted": [], "latest": {}, "waiting": [first]})
    tune = FakeTune(tmp_path, keep, monkeypatch)
    keep.on_step_begin(iteration=0, trials=[trial])
    tune.snapshot()
    tune.settle()
    tune.snapshot()
    assert Path(first.path).is_dir()
    second = _checkpoint(tmp_path, "t", 1)
    keep.on_checkpoint(iteration=1, trials=[trial], trial=trial, checkpoint=second)
    tune.snapshot()
    tune.settle()
    tune.snapshot()
    assert not Path(first.path).exists()


def test_keeper_best_json_and_export_rank_alike(tmp_path, monkeypatch):
    """A completed 0.70, B completed 0.72, C stopped by ASHA after 1 of 2 epochs at 0.74: the checkpoint
    kept with --keep-checkpoints 1, best.json and export's rank 1 are all B (completed trials first)."""
    import json

    from nas.orchestration.driver import finish
    from nas.report.run_data import load_run
    from tests.helpers.fake_run import write_fake_run

    run_dir = write_fake_run(tmp_path / "runs" / "rank", n_trials=3, space="resnext-cifar", max_epochs=2,
                             failures=False)
    frame = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    frame = frame.head(3).assign(trial_id=["A", "B", "C"], outcome=["completed", "completed", "stopped"],
                                 status="TERMINATED", best_val_accuracy=[0.70, 0.72, 0.74],
                                 val_accuracy=[0.70, 0.72, 0.74], epochs=[2, 2, 1])
    frame.to_csv(run_dir / "trials.csv", index=False)

    trials = [_trial(tmp_path, tid, "TERMINATED", acc, epochs=ep) for tid, acc, ep in (("A", 0.70, 2), ("B", 0.72, 2),
                                                                                      ("C", 0.74, 1))]
    keep = KeepBestCheckpoints(keep=1)
    tune = FakeTune(tmp_path, keep, monkeypatch)
    for trial in trials:
        keep.on_trial_complete(iteration=1, trials=trials, trial=trial)
    tune.snapshot()
    tune.settle()
    tune.snapshot()
    assert _kept(trials) == {"B"}

    settings = SearchSettings(budget_flops=300_000_000, storage_path=str(tmp_path / "runs"), name="rank",
                              max_epochs=2, space="resnext-cifar")
    summary = finish(settings, log=lambda *_: None)
    best = frame.set_index("trial_id").loc["B", "arch"]
    assert summary["best_trial"] == "B" and json.loads((run_dir / "best.json").read_text()) == json.loads(best)
    assert list(load_run(run_dir).ranked()["trial_id"]) == ["B", "A", "C"]


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
    from nas.orchestration.driver import finish
    from nas.orchestration.tuner import build_tuner

    state = tmp_path / "state"
    state.mkdir()
    s = SearchSettings(budget_flops=parse_flops("500MFLOPs"), dataset="synthetic", train_subset=64, val_size=64,
                       batch_size=32, trials=5, max_epochs=2, grace_epochs=1, reduction_factor=2, scheduler="none",
                       max_concurrent=1, cpus_per_trial=2, max_failures=0, storage_path=str(tmp_path), name="keep",
                       keep_checkpoints=2, references="none")
    summary = run_search(s, trainable=make_fails_first(str(state)))
    failed = (state / "failed").read_text()
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str}).set_index("trial_id")
    assert frame.at[failed, "outcome"] == "error"
    done = rank_trials(frame[frame["outcome"] == "completed"].reset_index())
    assert len(done) == 4
    # the errored trial (which --resume restarts) and the best 2 finished ones keep their checkpoints
    assert _checkpointed(s.run_dir) == {failed, *done["trial_id"][:2]}
    assert len(list(s.run_dir.glob("trial_*/checkpoint_*"))) == 3  # the latest one each; superseded ones went
    # the summary reports the run's size, measured on disk
    size = sum(f.stat().st_size for f in s.run_dir.rglob("*") if f.is_file())
    assert summary["run_size_bytes"] > 0 and abs(summary["run_size_bytes"] - size) < 0.05 * size
    assert "run size: " in capsys.readouterr().out

    # Tuner.restore with finished trials' checkpoints deleted: the errored trial resumes from its own
    tuner = build_tuner(s, True, ray_instance.cluster_resources(), trainable=make_fails_first(str(state)))
    grid = tuner.fit()
    assert not grid.errors
    finish(s, log=lambda *_: None)
    frame = pd.read_csv(s.run_dir / "trials.csv", dtype={"trial_id": str}).set_index("trial_id")
    assert frame.at[failed, "outcome"] == "completed" and frame.at[failed, "epochs"] == 2
    done = rank_trials(frame[frame["outcome"] == "completed"].reset_index())
    assert len(done) == 5 and _checkpointed(s.run_dir) == set(done["trial_id"][:2])
    assert len(list(s.run_dir.glob("trial_*/checkpoint_*"))) == 2  # one each: the superseded ones went too
    assert os.path.isdir(s.run_dir)
