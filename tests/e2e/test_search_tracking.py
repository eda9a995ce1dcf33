"""The search's tracking, on a real tiny search run as a user runs it (`python -m nas.search --log mlflow=…`),
killed with -9 after its first trial and resumed (tests/e2e/conftest.py's `killed_and_resumed`, which
tests/e2e/test_search.py's resume checks read too): the Optuna study (optuna.load_study), MLflow runs,
TensorBoard's event files, the live report and the trial processes' labels, all read back with the
tools' own readers."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from nas.orchestration import tracking
from nas.search import main as search_main
from tests.helpers import searchrun

NAME = "tracked"  # the name tests/e2e/conftest.py gives the search


def test_the_optuna_study_holds_every_trial_with_its_values_and_resume_kept_it(killed_and_resumed):
    run = killed_and_resumed
    run_dir = run["run_dir"]
    frame = searchrun.trials(run_dir)
    epochs = pd.read_csv(run_dir / "epochs.csv", dtype={"trial_id": str})
    assert len(frame) == 3 and set(frame["outcome"]) <= {"completed", "stopped"}
    storage = tracking.optuna_storage(run_dir)
    # --resume: the same study, and beside it the trials as architectures (architecture_study)
    names = [tracking.study_name(NAME), tracking.study_name(NAME) + "/architectures"]
    assert optuna.get_all_study_names(storage) == names
    study = optuna.load_study(study_name=tracking.study_name(NAME), storage=storage)
    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    # orphans of the killed driver (asked for, never run) may remain as FAIL "lost", nothing else
    assert all(t.user_attrs.get("outcome") == "lost" for t in study.trials if t not in done)
    by_id = {t.user_attrs["ray_trial_id"]: t for t in done}
    assert sorted(by_id) == sorted(frame["trial_id"])
    for row in frame.itertuples():
        trial = by_id[row.trial_id]
        assert trial.value == pytest.approx(row.val_accuracy)
        assert trial.user_attrs["outcome"] == row.outcome and trial.user_attrs["epochs"] == row.epochs
        # one vocabulary: the budget's figures (*_nominal) and the trained model's (*_trained) are the same
        # numbers under the same names in trials.csv, the trial's results and Optuna
        last = json.loads((run_dir / f"trial_{row.trial_id}" / "result.json").read_text().splitlines()[-1])
        for column in ("flops_nominal", "params_nominal", "flops_trained", "params_trained"):
            assert trial.user_attrs[column] == getattr(row, column) == last[column], column
        assert row.flops_nominal > row.flops_trained and row.params_nominal > row.params_trained  # 1000 vs 10
        curve = epochs[epochs["trial_id"] == row.trial_id].sort_values("epoch")
        assert trial.intermediate_values == pytest.approx(dict(zip(curve["epoch"], curve["val_accuracy"],
                                                                     strict=True)))
    # the trials the first driver recorded are the same Optuna trials after --resume
    ended_first = set(run["before"].loc[run["before"]["outcome"].isin(["completed", "stopped"]), "trial_id"])
    assert ended_first and all(by_id[tid].number == run["study_before"][tid] for tid in ended_first)
    assert f"optuna storage: {run_dir / tracking.JOURNAL_FILE}" in run["resumed"]
    decoded = optuna.load_study(study_name=tracking.study_name(NAME) + "/architectures", storage=storage)
    assert decoded.metric_names == study.metric_names == ["val_accuracy"]
    arch_trials = {t.user_attrs["ray_trial_id"]: t for t in decoded.trials}
    assert sorted(arch_trials) == sorted(frame["trial_id"])  # also those the killed driver finished
    for row in frame.itertuples():
        assert arch_trials[row.trial_id].params == {
            "cardinality": row.cardinality, "width": row.width, "base_width": row.base_width,
            **{f"depth_{i}": getattr(row, f"depth_{i}") for i in range(1, 5)}}
    # best.json is the best trial's, also for trials that ended after the resume
    best = frame.sort_values("best_val_accuracy", ascending=False).iloc[0]
    assert json.loads((run_dir / "best.json").read_text()) == json.loads(best["arch"])


def test_each_trial_is_an_mlflow_run_under_the_searchs_parent_run(killed_and_resumed):
    run = killed_and_resumed
    from mlflow.tracking import MlflowClient

    run_dir, client = run["run_dir"], MlflowClient(run["uri"])
    frame = searchrun.trials(run_dir)
    epochs = pd.read_csv(run_dir / "epochs.csv", dtype={"trial_id": str})
    exp = client.get_experiment_by_name(NAME)
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get(tracking.PARENT_RUN_TAG) == str(run_dir)]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # found again on --resume
    parent = parents[0]
    assert {"best.json", "report.html"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(frame["best_val_accuracy"].max())
    assert parent.data.params["budget_flops"] == "150000000"
    best_model = {a.path for a in client.list_artifacts(parent.info.run_id, "best_model")}
    assert "best_model/arch.json" in best_model and "best_model/weights.safetensors" in best_model
    assert f"mlflow ui: mlflow ui --backend-store-uri {run['uri']}" in run["resumed"]
    # our MLflow logging is one batched call per epoch: Ray finds no callback slow
    assert "`callbacks.on_trial_" not in run["first_log"] + run["resumed"] + run["resumed_err"]
    trial_runs = [r for r in runs if tracking.TRIAL_RUN_TAG in r.data.tags]
    # a trial the killed driver started but never recorded (Tune asks anew on resume) is closed as lost
    lost = [r for r in trial_runs if r.data.tags.get("outcome") == "lost"]
    assert all(r.info.status == "KILLED" and r.data.tags[tracking.TRIAL_RUN_TAG] not in set(frame["trial_id"])
               for r in lost)
    children = {r.data.tags[tracking.TRIAL_RUN_TAG]: r for r in trial_runs if r not in lost}
    assert sorted(children) == sorted(frame["trial_id"])  # one run per trial, also for the resumed one
    assert all(r.info.status == "FINISHED" for r in children.values())
    for row in frame.itertuples():
        child = children[row.trial_id]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.params["name"] == row.name and child.info.run_name == f"{row.name} {row.trial_id}"
        assert child.data.params["cardinality"] == str(row.cardinality) and child.data.tags["outcome"] == row.outcome
        assert child.data.metrics["flops_nominal"] == row.flops_nominal
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        expected = epochs.loc[epochs["trial_id"] == row.trial_id, "val_accuracy"]
        assert sorted(m.value for m in history) == pytest.approx(sorted(expected))
        path = client.download_artifacts(child.info.run_id, "architecture.json", str(run_dir.parent))
        assert json.loads(open(path).read()) == json.loads(row.arch)


def test_tensorboard_event_files_hold_every_trials_validation_accuracy_per_epoch(killed_and_resumed):
    run = killed_and_resumed
    run_dir = run["run_dir"]
    epochs = pd.read_csv(run_dir / "epochs.csv", dtype={"trial_id": str})
    for trial_id, curve in epochs.groupby("trial_id"):
        scalars = tracking.tensorboard_scalars(tracking.tensorboard_run_dir(run_dir, trial_id), "val_accuracy")
        assert dict(scalars) == pytest.approx(dict(zip(curve["epoch"], curve["val_accuracy"], strict=True)))
    frame = searchrun.trials(run_dir)
    for row in frame.itertuples():
        hparams = tracking.tensorboard_hparams(tracking.tensorboard_run_dir(run_dir, row.trial_id))
        assert (hparams["name"], hparams["cardinality"], hparams["outcome"]) == (row.name, row.cardinality,
                                                                                 row.outcome)


def test_the_report_is_written_while_the_search_runs(killed_and_resumed):
    run = killed_and_resumed
    # read after the first trial ended, from a driver that was then killed: no finish() wrote it
    assert "<html" in run["live_report"].lower() and len(run["live_report"]) > 100_000


def test_trial_processes_are_labelled_and_the_dashboard_line_says_how_to_get_the_token(killed_and_resumed):
    run = killed_and_resumed
    frame = searchrun.trials(run["run_dir"])
    ids = {label.removeprefix("ray::trial_").split()[0] for label in run["labels"]}
    assert ids & set(frame["trial_id"]), run["labels"]
    line = f"Ray dashboard: http://127.0.0.1:{killed_and_resumed['port']} (its token: `ray get-auth-token`, or the file"
    assert line in run["first_log"]


@pytest.mark.parametrize("flags,message", [
    (["--log", "wandb"], "--log: unknown target 'wandb'"),
    (["--log", "mlflow="], "--log: "),
    (["--optuna-storage", " "], "--optuna-storage: empty"),
])
def test_bad_tracking_flags_are_one_line_errors_before_anything_is_written(tmp_path, capsys, flags, message):
    from nas.cli import run_main

    code = run_main(search_main, ["--budget", "500MFLOPs", "--dataset", "synthetic", "--storage-path",
                                  str(tmp_path), "--name", "x", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: " + message) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()
