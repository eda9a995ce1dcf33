"""nas.orchestration.tracking against the real tools: one small Ray Tune search (OptunaSearch on a
journal file, ASHA, the MLflow callback) read back with optuna.load_study, optuna-dashboard's HTTP API,
TensorBoard's event reader and MlflowClient."""

from __future__ import annotations

import json
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nas.orchestration import tracking

MAX_EPOCHS = 4
TRIALS = 6
RUN_NAME = "toy"


def _arch(cardinality: int, width: int):
    from search_spaces.architecture import template

    return template([1, 1, 1], cardinality, width, num_classes=10)


def toy_arch_space():
    """toy_space's architectures as a SearchSpace: the ranges of the decoded study's parameters."""
    from search_spaces import SearchSpace

    return SearchSpace(name="toy", stem="cifar", resolution=32, depth_ranges=((1, 1),) * 3,
                       default_depths=(1, 1, 1), cardinalities=(1, 2, 4), width_range=(4, 8), base_widths=(256,))


def toy_space(trial) -> dict:
    """A tiny define-by-run space like FeasibleSampler's: Optuna picks C and d, the config holds the arch."""
    c = trial.suggest_categorical("cardinality", [1, 2, 4])
    d = trial.suggest_int("width", 4, 8)
    return {"arch": _arch(c, d).to_dict()}


def toy_accuracy(config: dict, epoch: int) -> float:
    stages = config["arch"]["stages"]
    return round(0.1 * stages[0]["cardinality"] + 0.01 * stages[0]["group_width"] + 0.05 * epoch, 6)


def toy_trial(config: dict) -> None:
    from ray import tune

    from search_spaces import Architecture, complexity

    arch = Architecture.from_dict(config["arch"])
    cx = complexity(arch, 32)
    trial_id = tune.get_context().get_trial_id()
    for epoch in range(1, MAX_EPOCHS + 1):
        tracking.label_process(trial_id, arch.describe())
        tune.report({"epoch": epoch, "val_accuracy": toy_accuracy(config, epoch), "train_loss": 1.0 / epoch,
                     "images_per_second": 100.0, "flops_nominal": cx.flops, "params_nominal": cx.params,
                     "flops_trained": cx.flops // 2, "params_trained": cx.params - 1, "status": "ok", "reason": "",
                     # bookkeeping that neither MLflow nor TensorBoard's HParams should get
                     "pid_copy": 1234, "should_log": True})


@pytest.fixture(scope="module")
def search(ray_instance, tmp_path_factory):
    """The toy search, run once: (run_dir, ResultGrid, mlflow tracking URI, parent run id)."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    run_dir = tmp_path_factory.mktemp("runs") / RUN_NAME
    run_dir.mkdir()
    uri = tracking.mlflow_tracking_uri(None, run_dir)
    parent = tracking.start_parent_run(uri, RUN_NAME, run_dir, params={"budget": "toy"})
    searcher = tracking.tracked_optuna_search(
        toy_space, metric="val_accuracy", mode="max", sampler=optuna.samplers.RandomSampler(seed=0),
        storage=tracking.optuna_storage(run_dir), run_name=RUN_NAME, max_epochs=MAX_EPOCHS,
        arch_space=toy_arch_space(), prune_stopped=True)
    t0 = time.perf_counter()
    tuner = tune.Tuner(
        toy_trial,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=TRIALS, max_concurrent_trials=2, reuse_actors=True,
                                    scheduler=ASHAScheduler(time_attr="training_iteration", metric="val_accuracy",
                                                            mode="max", max_t=MAX_EPOCHS, grace_period=1,
                                                            reduction_factor=2)),
        run_config=tune.RunConfig(name=RUN_NAME, storage_path=str(run_dir.parent), verbose=0,
                                  callbacks=[*tracking.mlflow_callbacks(uri, RUN_NAME, parent, run_dir=run_dir,
                                                                        max_epochs=MAX_EPOCHS),
                                             *tracking.tensorboard_callbacks(max_epochs=MAX_EPOCHS)]),
    )
    grid = tuner.fit()
    print(f"toy search: {time.perf_counter() - t0:.1f} s")
    assert len(grid) == TRIALS and not grid.errors
    return run_dir, grid, uri, parent


def _histories(grid) -> dict[str, list[tuple[int, float]]]:
    return {r.metrics["trial_id"]: [(int(e), float(a)) for e, a in
                                    zip(r.metrics_dataframe["epoch"], r.metrics_dataframe["val_accuracy"], strict=True)]
            for r in grid}


# --- Optuna storage ----------------------------------------------------------------------------------

def test_loaded_study_has_each_tune_trial_with_its_value_and_attrs(search):
    import optuna

    run_dir, grid, _, _ = search
    assert (run_dir / tracking.JOURNAL_FILE).is_file()
    study = optuna.load_study(study_name=tracking.study_name(RUN_NAME),
                              storage=tracking.optuna_storage(run_dir))
    by_tune = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    histories = _histories(grid)
    assert set(by_tune) == set(histories)
    outcomes = set()
    for result in grid:
        tid, last = result.metrics["trial_id"], result.metrics
        ot = by_tune[tid]
        expected = "completed" if last["epoch"] == MAX_EPOCHS else "stopped"
        # ASHA's cuts are PRUNED (optuna-dashboard's "Include PRUNED trials" toggle), valued at their last epoch
        assert ot.state == {"completed": optuna.trial.TrialState.COMPLETE,
                            "stopped": optuna.trial.TrialState.PRUNED}[expected]
        assert ot.value == pytest.approx(last["val_accuracy"])
        assert ot.params["cardinality"] == result.config["arch"]["stages"][0]["cardinality"]
        assert all(ot.user_attrs[k] == last[k] for k in ("flops_nominal", "params_nominal", "flops_trained",
                                                          "params_trained"))
        assert ot.user_attrs["epochs"] == last["epoch"]
        assert ot.user_attrs["outcome"] == expected
        outcomes.add(expected)
        # the per-epoch curve optuna-dashboard draws
        assert sorted(ot.intermediate_values.items()) == [(e, pytest.approx(a)) for e, a in histories[tid]]
    assert outcomes == {"completed", "stopped"}  # ASHA did cut some trials
    assert study.metric_names == ["val_accuracy"]  # the dashboard's axis title, not "Objective 0"


def test_the_architectures_study_holds_each_trial_as_c_d_base_width_and_depths(search):
    import optuna

    run_dir, grid, _, _ = search
    storage = tracking.optuna_storage(run_dir)
    sampler = optuna.load_study(study_name=tracking.study_name(RUN_NAME), storage=storage)
    decoded = optuna.load_study(study_name=tracking.study_name(RUN_NAME) + "/architectures", storage=storage)
    assert decoded.metric_names == ["val_accuracy"] and len(decoded.trials) == TRIALS
    by_tune = {t.user_attrs["ray_trial_id"]: t for t in decoded.trials}
    for result in grid:
        trial, stages = by_tune[result.metrics["trial_id"]], result.config["arch"]["stages"]
        assert trial.params == {"cardinality": stages[0]["cardinality"], "width": stages[0]["group_width"],
                                "base_width": 256, "depth_1": 1, "depth_2": 1, "depth_3": 1}
        original = sampler.trials[trial.user_attrs["sampler_trial"]]
        assert (trial.state, trial.values, trial.intermediate_values) == (
            original.state, original.values, original.intermediate_values)
        assert trial.user_attrs["name"] == original.user_attrs["name"]
        assert "arch" not in trial.user_attrs and "arch" in original.user_attrs


def test_searcher_survives_pickling_and_restore_on_the_same_journal(search, tmp_path):
    """Ray pickles the searcher (tuner.pkl, searcher-state); the restored copy must keep writing to
    the run's journal, which a second reader sees."""
    import optuna

    run_dir, _, _, _ = search
    copy = run_dir.parent / "copy.journal"
    copy.write_bytes((run_dir / tracking.JOURNAL_FILE).read_bytes())
    searcher = tracking.tracked_optuna_search(
        toy_space, metric="val_accuracy", mode="max", sampler=optuna.samplers.RandomSampler(seed=1),
        storage=tracking.optuna_storage(copy), run_name=RUN_NAME, max_epochs=MAX_EPOCHS)
    searcher.suggest("orphan")  # asked by a driver that is then killed before saving its state
    state = tmp_path / "searcher.pkl"
    fresh = tracking.tracked_optuna_search(
        toy_space, metric="val_accuracy", mode="max", sampler=optuna.samplers.RandomSampler(seed=1),
        storage=tracking.optuna_storage(copy), run_name=RUN_NAME, max_epochs=MAX_EPOCHS, arch_space=toy_arch_space())
    fresh.save(str(state))  # the state saved before "orphan" was asked
    restored = pickle.loads(pickle.dumps(fresh))
    restored.restore(str(state))
    config = restored.suggest("new")
    restored.on_trial_result("new", {"val_accuracy": 0.5, "training_iteration": 1, "epoch": 1, "flops_nominal": 7})
    restored.on_trial_complete("new", {"val_accuracy": 0.5, "training_iteration": 1, "epoch": 1, "flops_nominal": 7})
    study = optuna.load_study(study_name=tracking.study_name(RUN_NAME), storage=tracking.optuna_storage(copy))
    new = [t for t in study.trials if t.user_attrs.get("ray_trial_id") == "new"]
    assert len(new) == 1 and new[0].value == 0.5 and new[0].user_attrs["flops_nominal"] == 7
    assert new[0].params["cardinality"] == config["arch"]["stages"][0]["cardinality"]
    orphan = [t for t in study.trials if t.user_attrs.get("ray_trial_id") == "orphan"]
    assert orphan[0].state == optuna.trial.TrialState.FAIL and orphan[0].user_attrs["outcome"] == "lost"
    # the restored searcher goes on copying into the architectures study; the lost trial never trained
    decoded = optuna.load_study(study_name=tracking.study_name(RUN_NAME) + "/architectures",
                                storage=tracking.optuna_storage(copy))
    ids = [t.user_attrs["ray_trial_id"] for t in decoded.trials]
    assert ids.count("new") == 1 and "orphan" not in ids and len(ids) == TRIALS + 1


def test_failed_trial_is_recorded_as_fail_with_its_last_epoch(tmp_path):
    import optuna

    searcher = tracking.tracked_optuna_search(
        toy_space, metric="val_accuracy", mode="max", sampler=optuna.samplers.RandomSampler(seed=0),
        storage=tracking.optuna_storage(tmp_path), run_name="f", max_epochs=MAX_EPOCHS)
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"val_accuracy": 0.3, "training_iteration": 2, "epoch": 2, "params_nominal": 9})
    searcher.on_trial_complete("t1", error=True)
    (trial,) = tracking.load_study(tmp_path, "f").trials
    assert trial.state == optuna.trial.TrialState.FAIL
    from search_spaces import Architecture

    attrs = dict(trial.user_attrs)
    arch = Architecture.from_dict(json.loads(attrs.pop("arch")))  # what the encoded parameters built
    assert attrs == {"ray_trial_id": "t1", "name": arch.describe(), "epochs": 2, "params_nominal": 9,
                     "outcome": "error"}


def test_bad_storage_is_a_domain_error_naming_the_flag(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(tracking.TrackingError, match="^optuna_storage: cannot write"):
        tracking.optuna_storage(blocker / "sub" / "s.journal")
    with pytest.raises(tracking.TrackingError, match="^optuna_storage: cannot open"):
        tracking.optuna_storage("nosuchdialect://x")


def test_rdb_url_storage(tmp_path):
    storage = tracking.optuna_storage(f"sqlite:///{tmp_path / 'o.db'}")
    import optuna

    optuna.create_study(storage=storage, study_name=tracking.study_name("r")).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="nas-r", storage=f"sqlite:///{tmp_path / 'o.db'}").trials) == 2


# --- optuna-dashboard ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_optuna_dashboard_lists_the_study_and_its_trials(search, search_process):
    pytest.importorskip("optuna_dashboard")
    run_dir, grid, _, _ = search
    port = _free_port()
    cmd = tracking.dashboard_command(run_dir, port=port)
    exe = Path(sys.executable).with_name("optuna-dashboard")
    proc = search_process.popen([str(exe) if exe.exists() else cmd[0], *cmd[1:]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not start"
                time.sleep(0.3)
        (study,) = [s for s in studies if s["study_name"] == tracking.study_name(RUN_NAME)]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}")
        trials = detail["trials"]
        assert len(trials) == TRIALS
        assert {t["state"] for t in trials} <= {"Complete", "Pruned"}
        attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials]
        assert {a["ray_trial_id"] for a in attrs} == {r.metrics["trial_id"] for r in grid}
        assert all(a["outcome"] in ("completed", "stopped") for a in attrs)
        (arch_study,) = [s for s in studies if s["study_name"] == tracking.study_name(RUN_NAME) + "/architectures"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{arch_study['study_id']}")
        assert len(detail["trials"]) == TRIALS
        assert {p["name"] for t in detail["trials"] for p in t["params"]} == {
            "cardinality", "width", "base_width", "depth_1", "depth_2", "depth_3"}
        assert detail["objective_names"] == ["val_accuracy"]  # the axis title, not "Objective 0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- TensorBoard ------------------------------------------------------------------------------------------

def test_tensorboard_events_hold_every_epochs_val_accuracy(search):
    pytest.importorskip("tensorboard")
    run_dir, grid, _, _ = search
    for tid, history in _histories(grid).items():
        (result,) = [r for r in grid if r.metrics["trial_id"] == tid]
        folder = tracking.tensorboard_run_dir(run_dir, tid)
        scalars = tracking.tensorboard_scalars(folder)
        # Ray's TBX logger writes one point per report at step = training_iteration (= our epoch here)
        assert [(s, pytest.approx(v)) for s, v in scalars] == history, tid
        # HParams: the architecture and how far it trained, not the sampler's encodings
        arch = result.config["arch"]["stages"][0]
        hparams = tracking.tensorboard_hparams(folder)
        assert hparams == {"name": hparams["name"], "cardinality": arch["cardinality"],
                           "width": arch["group_width"], "base_width": 256, "depth_1": 1, "depth_2": 1,
                           "depth_3": 1, "epochs": len(history),
                           "outcome": "completed" if len(history) == MAX_EPOCHS else "stopped"}, tid


def test_tensorboard_runs_are_named_by_number_architecture_and_trial_id(search):
    """TensorBoard names a run by its folder: not trial_<id> but `0001-<architecture>-<id>`, numbered in the
    order the trials started, and no event files left in the trial folders (they would be runs too)."""
    from search_spaces import Architecture

    run_dir, grid, _, _ = search
    names = sorted(p.name for p in (run_dir / tracking.TENSORBOARD_DIR).iterdir())
    assert [n.split("-", 1)[0] for n in names] == [f"{i:04d}" for i in range(1, TRIALS + 1)]
    for result in grid:
        tid = result.metrics["trial_id"]
        label = Architecture.from_dict(result.config["arch"]).describe().replace(" ", "-")
        assert tracking.tensorboard_run_dir(run_dir, tid).name[5:] == f"{label}-{tid}"
        assert not list(Path(result.path).glob("events.out.tfevents*")), tid


def test_a_trials_tensorboard_folder_is_kept_and_new_ones_take_the_next_number(tmp_path):
    first = tracking.tensorboard_run_folder(tmp_path, "aaa", "32x4d-[3,4,6,3]")
    assert first == tmp_path / "tensorboard" / "0001-32x4d-[3,4,6,3]-aaa"
    first.mkdir()
    (tmp_path / "tensorboard" / "0007-1x64d-[1,1,1,1]-bbb").mkdir()
    assert tracking.tensorboard_run_folder(tmp_path, "aaa", "other") == first  # resumed or retried
    assert tracking.tensorboard_run_folder(tmp_path, "ccc", "8x14d-[3,4,6,3]").name == "0008-8x14d-[3,4,6,3]-ccc"
    assert tracking.tensorboard_run_dir(tmp_path, "bbb").name == "0007-1x64d-[1,1,1,1]-bbb"
    assert tracking.tensorboard_run_dir(tmp_path, "zzz") is None


def test_tensorboard_run_label_is_the_architecture_without_spaces():
    from search_spaces import template

    assert tracking.tensorboard_run_label({"arch": template((3, 4, 6, 3), 8, 14).to_dict()}, "x") == "8x14d-[3,4,6,3]"
    assert tracking.tensorboard_run_label({}, "trial_x") == "trial_x"


# --- MLflow ---------------------------------------------------------------------------------------------

def test_mlflow_has_a_run_per_trial_with_epochs_and_architecture(search):
    pytest.importorskip("mlflow")
    run_dir, grid, uri, parent = search
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(RUN_NAME)
    runs = {r.data.tags.get("trial_id"): r for r in client.search_runs([exp.experiment_id])}
    histories = _histories(grid)
    for tid, history in histories.items():
        run = runs[tid]
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert run.info.status == "FINISHED"
        assert run.data.tags["outcome"] == ("completed" if len(history) == MAX_EPOCHS else "stopped")
        metric = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted((m.step, m.value) for m in metric) == [(e, pytest.approx(a)) for e, a in history]
        (result,) = [r for r in grid if r.metrics["trial_id"] == tid]
        arch = result.config["arch"]
        from search_spaces import Architecture

        name = Architecture.from_dict(arch).describe()
        assert run.info.run_name == f"{name} {tid}" and run.data.params["name"] == name
        assert run.data.params["cardinality"] == str(arch["stages"][0]["cardinality"])
        assert not any(k.endswith(("_index", "_pos")) for k in run.data.params)  # no sampler encodings
        # the numbers people read, one name each (schema.COST_COLUMNS); no config/*, pid, done, ...
        assert set(run.data.metrics) == {"val_accuracy", "train_loss", "images_per_second", "epoch",
                                         "flops_nominal", "params_nominal", "flops_trained", "params_trained"}
        local = client.download_artifacts(run.info.run_id, "architecture.json", str(run_dir / "dl" / tid))
        assert json.loads(Path(local).read_text()) == arch
    assert str(run_dir.resolve()) in exp.artifact_location  # artifacts stay with the run

    from search_spaces import Architecture, save_architecture

    best = max(grid, key=lambda r: r.metrics["val_accuracy"])
    save_architecture(Architecture.from_dict(best.config["arch"]), run_dir / "best.json")
    logged = tracking.log_parent_run(uri, parent, run_dir, metrics={"best_val_accuracy":
                                                                   best.metrics["val_accuracy"]})
    assert logged == ["best.json"]  # no report.html/search.json/trials.csv in this toy run
    parent_run = client.get_run(parent)
    assert parent_run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(parent)] == ["best.json"]
    assert parent_run.data.metrics["best_val_accuracy"] == pytest.approx(best.metrics["val_accuracy"])
    # --resume finds the same parent run instead of opening another
    assert tracking.start_parent_run(uri, RUN_NAME, run_dir) == parent


class _Trial:
    """What Tune's MLflow callback reads of a trial."""

    def __init__(self, trial_id: str, config: dict) -> None:
        self.trial_id, self.config, self.last_result = trial_id, config, {}

    def __str__(self) -> str:
        return f"train_trial_{self.trial_id}"


def test_mlflow_logs_an_epoch_in_one_batched_call(tmp_path, monkeypatch):
    """Ray's callback logs each key of a result in its own MLflow call (~40 SQLite transactions, 0.56 s an
    epoch in the ecosystem review, which Ray reports as a "performance bottleneck"); ours logs the
    numbers people read in one log_batch."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    calls: list[str] = []
    for name in ("log_metric", "log_param", "log_batch"):
        original = getattr(MlflowClient, name)
        monkeypatch.setattr(MlflowClient, name, lambda self, *a, _n=name, _o=original, **k: (calls.append(_n),
                                                                                               _o(self, *a, **k))[1])
    uri = tracking.mlflow_tracking_uri(None, tmp_path)
    (logger,) = tracking.mlflow_callbacks(uri, "hook", run_dir=tmp_path, max_epochs=2)
    logger.setup()
    trial = _Trial("t1", {**toy_space_config(), "train": {"lr": 0.1, "seed": 0}, "cardinality_index": 1,
                          "width_pos": 0.5})
    logger.log_trial_start(trial)
    assert calls == ["log_batch"]  # the parameters, at once
    result = {"val_accuracy": 0.5, "val_loss": 1.0, "train_loss": 1.1, "images_per_second": 50.0, "epoch": 1,
              "training_iteration": 1, "flops_nominal": 7, "params_nominal": 3, "done": False, "pid": 1,
              "timestamp": 2, "should_checkpoint": True, "config": {"train": {"lr": 0.1}}, "time_this_iter_s": 1.0,
              **{f"extra_{i}": float(i) for i in range(25)}}
    calls.clear()
    t0 = time.perf_counter()
    logger.log_trial_result(1, trial, result)
    print(f"MLflow log_trial_result: {1000 * (time.perf_counter() - t0):.1f} ms")
    assert calls == ["log_batch"]
    trial.last_result = result
    logger.on_trial_complete(1, [trial], trial)
    run = MlflowClient(uri).get_run(logger._trial_runs[trial])
    assert set(run.data.metrics) == {"val_accuracy", "val_loss", "train_loss", "images_per_second", "epoch",
                                     "flops_nominal", "params_nominal"}
    assert run.data.params == {"name": "2x4d [1,1,1]", "cardinality": "2", "width": "4", "base_width": "256",
                               "depth_1": "1", "depth_2": "1", "depth_3": "1", "train/lr": "0.1", "train/seed": "0"}
    assert run.info.run_name == "2x4d [1,1,1] t1" and run.data.tags["outcome"] == "stopped"
    assert run.info.status == "FINISHED"


def toy_space_config() -> dict:
    return {"arch": _arch(2, 4).to_dict()}


def test_mlflow_view_command_names_the_package_with_the_ui():
    assert tracking.mlflow_view_command("sqlite:////r/mlflow.db") == (
        "mlflow ui --backend-store-uri sqlite:////r/mlflow.db  (pip install mlflow)")
    assert tracking.mlflow_view_command("http://host:5000") == "http://host:5000"


def test_parse_log():
    pytest.importorskip("mlflow")
    assert tracking.parse_log(None) == {}
    assert tracking.parse_log(["mlflow"]) == {"mlflow": None}
    assert tracking.parse_log(["mlflow=sqlite:///x.db"]) == {"mlflow": "sqlite:///x.db"}
    with pytest.raises(tracking.TrackingError, match="^log: unknown target 'wandb'"):
        tracking.parse_log(["wandb"])
    with pytest.raises(tracking.TrackingError, match="^log: empty tracking URI"):
        tracking.parse_log(["mlflow="])


def test_mlflow_default_uri_is_inside_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.mlflow_tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.mlflow_tracking_uri(None, tmp_path) == "http://127.0.0.1:5000"
    assert tracking.mlflow_tracking_uri("sqlite:///a.db", tmp_path) == "sqlite:///a.db"


# --- Ray dashboard ----------------------------------------------------------------------------------------

def test_label_process_names_the_ray_worker(ray_instance):
    import ray

    @ray.remote
    def labelled() -> str:
        title = tracking.label_process("abc_00001", "C4x8d [1,1,1]")
        return title + "|" + Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()

    title, cmdline = ray.get(labelled.remote()).split("|")
    assert title == "ray::trial_abc_00001 C4x8d [1,1,1]"
    assert cmdline.startswith(title)


def test_dashboard_line_says_how_to_get_the_token(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    line = tracking.dashboard_line("http://127.0.0.1:8265")
    assert line == ("Ray dashboard: http://127.0.0.1:8265 (its token: `ray get-auth-token`, or the file "
                    "~/.ray/auth_token)")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", "/etc/ray/token")
    assert line != tracking.dashboard_line("http://127.0.0.1:8265")
    assert tracking.dashboard_line("http://h:1").endswith("the file /etc/ray/token)")


def test_mlflow_with_a_run_on_an_object_store_is_refused_before_ray_starts():
    from nas.orchestration import SearchSettings

    s = SearchSettings(budget_flops=10**9, name="x", log=["mlflow"],
                       storage_path="s3://bucket/runs?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1")
    with pytest.raises(tracking.TrackingError) as info:
        tracking.check_tracking(s)
    assert info.value.setting == "log" and "object store" in str(info.value)
