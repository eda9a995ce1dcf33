"""A run moved, renamed or copied resumes where it is now: load_settings takes it, and everything Tune
unpickles for the resume (tuner.pkl, the searcher's and the callbacks' saved states, the search algorithm's
experiment) is re-pointed there; nothing is written to the old location.

No Ray instance is started: the objects are pickled, moved and restored as Tune does it (ray 2.60); the
whole resume runs in tests/e2e/test_search.py::test_a_moved_and_renamed_run_resumes_where_it_is_now.
"""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest

from nas.orchestration import SearchConfigError, SearchSettings, load_settings
from nas.orchestration.settings import write_search_json
from search_spaces import Budget, get_space
from search_spaces.budget import parse_flops


def _started(tmp_path, **kw) -> SearchSettings:
    """A run directory as a search leaves it once Tune saved its first state (tmp_path/a/run)."""
    s = SearchSettings(budget_flops=parse_flops("4GFLOPs"), storage_path=str(tmp_path / "a"), name="run",
                       max_epochs=2, grace_epochs=1, reduction_factor=2, trials=4, **kw)
    s.location.check_writable()
    write_search_json(s, get_space("resnext-imagenet"), Budget(s.budget_flops), 28)
    (s.run_dir / "experiment_state-2026-12-02_00-00-00.json").write_text("{}")
    return s


def _move(s: SearchSettings, tmp_path):
    moved = tmp_path / "b" / "renamed"
    moved.parent.mkdir()
    s.run_dir.rename(moved)
    return moved


def _restored_tuner(parts: bytes):
    """What Tuner.restore returns, as far as relocation.restored_parts reads it (TunerInternal, ray 2.60)."""
    searcher, scheduler, callbacks = pickle.loads(parts)
    config = SimpleNamespace(search_alg=searcher, scheduler=scheduler)
    return SimpleNamespace(_local_tuner=SimpleNamespace(_tune_config=config,
                                                        get_run_config=lambda: SimpleNamespace(callbacks=callbacks)))


def test_a_moved_and_renamed_run_is_resumed_where_it_is_now_and_never_touches_the_old_folder(tmp_path):
    from ray.train._internal.storage import StorageContext
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial

    from nas.orchestration.callbacks import ResultsTable
    from nas.orchestration.checkpoints import KeepBestCheckpoints
    from nas.orchestration.live import LiveReport
    from nas.orchestration.relocation import relocate_restored
    from nas.orchestration.tracking import journal_path, load_study
    from nas.orchestration.tuner import make_scheduler, make_searcher

    s = _started(tmp_path)
    old, space = s.run_dir, get_space("resnext-imagenet")
    searcher = make_searcher(s, space, Budget(s.budget_flops, s.tolerance), {"seed": 0})
    keep = KeepBestCheckpoints(keep=1)
    # tuner.pkl: the searcher, the scheduler and the callbacks as the search started
    tuner_pkl = pickle.dumps((searcher, make_scheduler(s), [ResultsTable(s.location, 224, 2), LiveReport(s.location),
                                                            keep]))
    # the search algorithm's saved experiment: where Tune takes a new trial's storage from
    experiment_storage = pickle.dumps(StorageContext(storage_path=str(tmp_path / "a"), experiment_dir_name="run"))
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"val_accuracy": 0.5, "training_iteration": 1, "epoch": 1})
    (tmp_path / "staging").mkdir()
    searcher.save(str(tmp_path / "staging" / "searcher-state.pkl"))
    keep.latest["t1"] = Checkpoint(path=str(old / "trial_t1" / "checkpoint_000000"))
    keep_state = keep.get_state()

    moved = _move(s, tmp_path)
    settings = load_settings(moved)  # was refused: "moved since; a moved run cannot be resumed yet"
    assert settings.location.root == str(moved) and settings.name == "renamed"

    # Tuner.restore unpickles tuner.pkl; the driver re-points what it unpickled
    tuner = _restored_tuner(tuner_pkl)
    relocate_restored(tuner, settings.location, journal_path(settings))
    restored, scheduler, (table, report, restored_keep) = (
        tuner._local_tuner._tune_config.search_alg, tuner._local_tuner._tune_config.scheduler,
        tuner._local_tuner.get_run_config().callbacks)
    # Tuner.fit then restores the saved states (searcher: the journal of the old path, which is gone)
    restored.restore(str(tmp_path / "staging" / "searcher-state.pkl"))
    restored_keep.set_state(keep_state)
    config = restored.suggest("t2")
    assert "arch" in config
    restored.on_trial_complete("t2", {"val_accuracy": 0.6, "training_iteration": 1, "epoch": 1})
    study = load_study(moved, "run")  # the study keeps the name the run started with
    assert [t.user_attrs["ray_trial_id"] for t in study.trials] == ["t1", "t2"]
    # a new trial, made from the restored experiment's storage, is set up in the new folder
    trial = Trial("train_trial", config={}, storage=pickle.loads(experiment_storage), trial_id="t3", stub=True)
    scheduler.on_trial_add(SimpleNamespace(), trial)
    assert trial.storage.experiment_fs_path == str(moved)
    assert restored_keep.latest["t1"].path == str(moved / "trial_t1" / "checkpoint_000000")
    t3 = SimpleNamespace(trial_id="t3", config={"arch": config["arch"], "train": {"seed": 0}}, checkpoint=None,
                         last_result={"epoch": 1, "val_accuracy": 0.7}, path=None)
    table.on_trial_result(0, [], t3, t3.last_result)
    assert (moved / "trials.csv").read_text().count("\n") == 2
    assert report.maybe_write() and (moved / "report.html").is_file()
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir()), list((tmp_path / "a").rglob("*"))


def test_a_study_journal_inside_the_run_follows_it(tmp_path):
    s = _started(tmp_path, optuna_storage=str(tmp_path / "a" / "run" / "study" / "s.journal"))
    moved = _move(s, tmp_path)
    assert load_settings(moved).optuna_storage == str(moved / "study" / "s.journal")
    s = _started(tmp_path / "2", optuna_storage=str(tmp_path / "elsewhere.journal"))
    assert load_settings(_move(s, tmp_path / "2")).optuna_storage == str(tmp_path / "elsewhere.journal")


def test_what_cannot_follow_a_move_is_refused_in_one_line_naming_where_it_started(tmp_path):
    from nas.orchestration.settings import _moved
    from nas.rundir.location import RunLocation

    s = _started(tmp_path, log=["mlflow"])
    with pytest.raises(SearchConfigError, match=r"^resume: .*/b/renamed was started at .*/a/run and logs to "
                                                r"MLflow[^\n]*move it back"):
        load_settings(_move(s, tmp_path))
    # a run started on a bucket has no journal to follow it (checked on the settings, without a server)
    bucket = RunLocation.parse("s3://bucket/runs?endpoint_override=127.0.0.1:9&scheme=http", "run")
    on_s3 = SearchSettings(budget_flops=parse_flops("4GFLOPs"), storage_path="s3://other/runs", name="run")
    assert _moved(on_s3, "s3://other/runs/run", bucket) is on_s3  # its study is in Tune's searcher state


def test_a_local_run_copied_into_a_bucket_resumes_on_a_local_copy_of_its_journal_written_back(
        s3_uri, tmp_path, monkeypatch, cli):
    """`aws s3 sync RUN_DIR s3://.../NAME`, then `--resume s3://.../NAME`: was refused ("which an object store
    cannot hold"). The study works on a copy under $NAS_CACHE_DIR/studies; the bucket's journal gets every
    trial, and Tune's state snapshot (get_state) writes it back before that snapshot is uploaded."""
    from nas.orchestration.bucket_journal import studies_dir, work_on_journal_copy
    from nas.orchestration.relocation import relocate_restored
    from nas.orchestration.tracking import journal_path, load_study
    from nas.orchestration.tuner import make_scheduler, make_searcher
    from nas.rundir.location import RunLocation

    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    s = _started(tmp_path)
    searcher = make_searcher(s, get_space("resnext-imagenet"), Budget(s.budget_flops, s.tolerance), {"seed": 0})
    tuner_pkl = pickle.dumps((searcher, make_scheduler(s), []))
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"val_accuracy": 0.5, "training_iteration": 2, "epoch": 2})
    (tmp_path / "staging").mkdir()
    searcher.save(str(tmp_path / "staging" / "searcher-state.pkl"))
    bucket = RunLocation.parse(s3_uri, "copied")
    bucket.upload_dir(s.run_dir)  # what `aws s3 sync` does
    local_journal = (s.run_dir / "optuna.journal").read_bytes()

    # nas.search loads the settings before it configures Ray's environment: that must not import ray
    code = f"import sys; from nas.orchestration import load_settings; load_settings({bucket.run_uri!r}); " \
           "assert 'ray' not in sys.modules"
    out = cli("-c", code)
    assert out.returncode == 0, out.stderr[-2000:]
    settings = load_settings(bucket.run_uri)
    assert settings.optuna_storage.startswith(str(studies_dir())) and settings.location.root == bucket.root
    lines = []
    tuner = _restored_tuner(tuner_pkl)
    journal = work_on_journal_copy(tuner, settings, lines.append)
    relocate_restored(tuner, settings.location, journal_path(settings))
    assert journal.local.read_bytes() == local_journal
    assert lines == [f"Optuna study: {bucket.display}/optuna.journal copied to {journal.local}, written back after "
                     f"each trial (optuna-dashboard {journal.local})"]
    restored = tuner._local_tuner._tune_config.search_alg
    (write_back,) = tuner._local_tuner.get_run_config().callbacks
    restored.restore(str(tmp_path / "staging" / "searcher-state.pkl"))
    restored.suggest("t2")
    assert write_back.get_state() is None  # a state snapshot: the journal (t2 asked) goes into the bucket first
    assert bucket.read_bytes("optuna.journal") == journal.local.read_bytes() != local_journal
    restored.on_trial_complete("t2", {"val_accuracy": 0.6, "training_iteration": 2, "epoch": 2})
    write_back.on_trial_complete(0, [], None)
    assert not journal.push()  # unchanged since: no second PUT

    bucket.download("optuna.journal", tmp_path / "from_bucket" / "optuna.journal")
    study = load_study(tmp_path / "from_bucket", "run")  # the study keeps the name the run started with
    assert [(t.user_attrs["ray_trial_id"], t.state.name) for t in study.trials] == [("t1", "COMPLETE"),
                                                                                   ("t2", "COMPLETE")]
    assert (s.run_dir / "optuna.journal").read_bytes() == local_journal  # the local original is left alone

    # resumed again (another machine, or after a kill): the bucket's journal wins over a stale local copy
    journal.local.write_bytes(local_journal + b"{}\n")
    again = work_on_journal_copy(_restored_tuner(tuner_pkl), load_settings(bucket.run_uri), lines.append)
    assert again.local == journal.local and again.local.read_bytes() == bucket.read_bytes("optuna.journal")

    # a copy without its journal is refused in one line, before anything starts
    bare = RunLocation.parse(s3_uri, "bare")
    bare.upload_dir(s.run_dir)
    bare.delete("optuna.journal")
    with pytest.raises(SearchConfigError, match=r"^resume: s3://\S+/bare was started at \S+/a/run with its Optuna "
                                                r"study in optuna.journal, which is not in s3://\S+/bare: copy it "
                                                r"there too$"):
        load_settings(bare.run_uri)


def test_runs_without_a_bucket_journal_get_no_copy(tmp_path):
    from nas.orchestration.bucket_journal import bucket_journal, work_on_journal_copy

    local = _started(tmp_path)
    bucket = "s3://b/runs?endpoint_override=127.0.0.1:9&scheme=http"  # never contacted
    on_s3 = SearchSettings(budget_flops=parse_flops("4GFLOPs"), storage_path=bucket, name="run")
    elsewhere = SearchSettings(budget_flops=parse_flops("4GFLOPs"), storage_path=bucket, name="run",
                               optuna_storage=str(tmp_path / "study.journal"))
    in_db = SearchSettings(budget_flops=parse_flops("4GFLOPs"), storage_path=bucket, name="run",
                           optuna_storage="sqlite:///x.db")
    assert [bucket_journal(x) for x in (local, on_s3, elsewhere, in_db)] == [None] * 4
    tuner = _restored_tuner(pickle.dumps((None, None, [])))
    assert work_on_journal_copy(tuner, on_s3, print) is None and tuner._local_tuner.get_run_config().callbacks == []
