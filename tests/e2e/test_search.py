"""The search end to end on CPU: Ray Tune + OptunaSearch + ASHA (the session's shared finished search),
a separately started Ray head, resume after `kill -9` of the driver at three moments, what a running
search listens on, and a GPU request on a cluster without GPUs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from search_spaces import build_model, complexity, load_architecture
from search_spaces.budget import Budget
from tests.conftest import FINISHED
from tests.helpers import searchrun
from tests.helpers.searchrun import free_port


def assert_all_feasible(frame: pd.DataFrame, budget: str) -> None:
    window = Budget.parse(budget)
    for arch_json, flops in zip(frame["arch"], frame["flops_nominal"], strict=True):
        arch_flops = complexity(load_arch(arch_json), 224).flops
        assert arch_flops == flops and window.contains(flops)


def load_arch(text: str):
    from search_spaces import Architecture

    return Architecture.from_dict(json.loads(text))


# --- a finished search under ASHA (tests/conftest.py's finished_search, shared, read only) ---------------

def test_trials_of_one_search_reuse_their_worker_processes(finished_search):
    """Tune hands a finished trial's actor to the next trial only when both ask for the same resources;
    when each trial asked for its own memory estimate, every trial paid a new worker process (~4.5 s
    here). Tune records each result's worker pid in the trial's result.json."""
    run_dir, _ = finished_search
    pids = {}
    for result in run_dir.glob("trial_*/result.json"):
        pids[result.parent.name] = {json.loads(line)["pid"] for line in result.read_text().splitlines() if line}
    assert len(pids) == 6 and all(len(p) == 1 for p in pids.values())  # one process per trial (no retries)
    assert len(set().union(*pids.values())) < len(pids), pids  # and fewer processes than trials


def test_asha_stopped_some_trials_and_the_tables_agree(finished_search):
    run_dir, _ = finished_search
    frame = searchrun.trials(run_dir)
    assert len(frame) == 6 and frame["trial_id"].is_unique
    assert_all_feasible(frame, FINISHED["budget"])
    assert set(frame["outcome"]) <= {"completed", "stopped"}
    assert (frame["outcome"] == "stopped").any(), "ASHA stopped no trial"
    assert (frame["outcome"] == "completed").any()
    stopped = frame[frame["outcome"] == "stopped"]
    assert (stopped["epochs"] < 3).all() and (frame[frame["outcome"] == "completed"]["epochs"] == 3).all()
    epochs = pd.read_csv(run_dir / "epochs.csv", dtype={"trial_id": str})
    assert epochs.groupby("trial_id").size().to_dict() == dict(zip(frame["trial_id"], frame["epochs"], strict=True))
    # Optuna agrees: ASHA's cuts are PRUNED (TPE's study and the architectures study alike), the rest COMPLETE
    import optuna

    from nas.orchestration import tracking

    storage, name = tracking.optuna_storage(run_dir), tracking.study_name(run_dir.name)
    expected = {row.trial_id: "PRUNED" if row.outcome == "stopped" else "COMPLETE" for row in frame.itertuples()}
    for study_name in (name, f"{name}/architectures"):
        study = optuna.load_study(study_name=study_name, storage=storage)
        assert {t.user_attrs["ray_trial_id"]: t.state.name for t in study.trials} == expected, study_name


def test_best_json_is_the_best_trial_and_rebuilds_and_the_report_and_summary_are_written(finished_search):
    run_dir, result = finished_search
    frame = searchrun.trials(run_dir)
    best = load_architecture(run_dir / "best.json")
    model = build_model(best)
    assert sum(p.numel() for p in model.parameters()) == complexity(best).params
    top = frame.sort_values("best_val_accuracy", ascending=False).iloc[0]
    assert best.to_dict() == json.loads(top["arch"])
    assert (run_dir / "report.html").stat().st_size > 100_000
    # what the caller gets: the summary names the best trial and the report (the command's printed
    # summary, "Best: ...", and its dashboard line are checked where a search runs as a command:
    # _check_resumed, test_everything_listens_on_loopback_..., tests/e2e/test_search_tracking.py)
    assert result.summary["best"] == top["name"] and result.summary["best_trial"] == top["trial_id"]
    assert Path(result.summary["report"]).resolve() == (run_dir / "report.html").resolve()


def test_the_reference_designs_trained_first_and_the_report_compares_them(finished_search):
    """The default search trains the paper's capacity-matched pair first, within its 6 trials, marked in
    trials.csv; the report's first section compares them with the sampled trials."""
    from search_spaces import Architecture, get_space, parse_flops, references

    run_dir, result = finished_search
    frame = searchrun.trials(run_dir).fillna({"reference": ""})
    refs, _ = references(get_space("resnext-imagenet"), Budget(parse_flops("500MFLOPs")))
    assert len(refs) == 2
    assert list(frame["role"]) == ["reference"] * 2 + ["sampled"] * 4  # asked first, counted in --trials
    assert list(frame["reference"][:2]) == [r.name for r in refs]
    assert [Architecture.from_dict(json.loads(a)) for a in frame["arch"][:2]] == [r.arch for r in refs]
    assert json.loads((run_dir / "search.json").read_text())["val_images"] > 0
    page = (run_dir / "report.html").read_text()
    assert "Search vs the reference designs" in page and "best reference" in page
    # and the summary says it in one line ("... At epoch 1: Can tell: ..." or "Cannot tell ...")
    assert result.summary["versus_references"].startswith("Search vs the reference designs: At epoch ")


def test_export_gives_the_best_architecture_with_its_trained_weights(finished_search, tmp_path, capsys):
    from nas.cli import run_main
    from nas.export import main
    from nas.report.deploy import load_weights

    run_dir, _ = finished_search
    best = load_architecture(run_dir / "best.json")
    out = tmp_path / "export"  # not RUN_DIR/export: the shared run stays as the search left it
    assert run_main(main, [str(run_dir), "--top", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    (first,) = out.glob("rank01_*")
    assert load_architecture(first / "arch_nominal.json") == best
    trained = load_architecture(first / "arch.json")  # as trained: it fits the weights
    assert trained.stages == best.stages and trained.num_classes == 10
    build_model(trained).load_state_dict(load_weights(first / "weights.safetensors")[1], strict=True)


# --- joining a Ray head started apart ---------------------------------------------------------------------

def test_search_on_a_separately_started_ray_head(tmp_path, search_process):
    port = free_port()
    with search_process.ray_head(port, "--include-dashboard=false") as head:
        args = [*searchrun.FAST, "--trials", "2", "--max-epochs", "1", "--address", f"127.0.0.1:{port}",
                "--storage-path", str(tmp_path), "--name", "cluster"]
        out = searchrun.wait_for(lambda: _try_run(search_process, args), timeout=120)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        frame = searchrun.trials(tmp_path / "cluster")
        assert len(frame) == 2 and set(frame["outcome"]) == {"completed"}
        assert_all_feasible(frame, searchrun.FAST_BUDGET)
        assert head.poll() is None, "the search must not stop the cluster it joined"


def _try_run(search_process, args):
    out = search_process.run(args)
    # The head may still be coming up: retry on connection errors only.
    if out.returncode != 0 and "onnect" in out.stdout + out.stderr and "Best:" not in out.stdout:
        return None
    return out


def _epochs(run_dir):
    path = run_dir / "epochs.csv"
    return pd.read_csv(path, dtype={"trial_id": str}) if path.exists() else pd.DataFrame(columns=["trial_id"])


# --- resume after kill -9 of the driver -------------------------------------------------------------------

MOMENTS = {
    # before the first trial finishes: it is running, no epoch done yet
    "before-first-trial-finishes": lambda t, e: len(t) >= 1 and len(e) == 0 and (t["outcome"] == "running").any(),
    # mid-trial: a trial has a checkpointed epoch but has not finished
    "mid-trial": lambda t, e: (t["outcome"] == "completed").sum() == 1 and len(e) >= 3,
    # between trials, right after a trial completed: tests/e2e/conftest.py's killed_and_resumed (the
    # tracking search, killed at that moment), checked by test_resume_after_kill_9_between_trials
}


def test_resume_after_kill_9_before_the_first_epoch_and_again_mid_trial_then_moved(tmp_path, search_process):
    """Killed before the first trial finished (nothing recorded yet), resumed, killed again mid-trial (a
    trial has a checkpointed epoch), then moved (mv) to another folder under another name and resumed
    from there to the end: both moments and a moved run in one search (three drivers instead of five),
    and the second kill hits a resumed driver. Each kill's records are checked alone. The moved run's
    trials used to fail or write their rows to the old folder (the restored callbacks, searcher and
    search algorithm named it); now every trial completes in the new folder, the study moved with it, and
    the old folder is never recreated."""
    run_dir = tmp_path / "killed"
    # Own dashboard port: another search on the machine may hold the default one.
    dashboard = ["--dashboard-port", str(free_port())]
    args = [*searchrun.FAST, "--trials", "3", "--max-epochs", "2", "--scheduler", "none",
            "--storage-path", str(tmp_path), "--name", "killed", *dashboard]
    resume = ["--resume", str(run_dir), *dashboard]
    snapshots = {}
    for moment, command in (("before-first-trial-finishes", args), ("mid-trial", resume)):
        log = tmp_path / f"{moment}.log"
        proc = search_process.start(command, log)
        try:
            searchrun.wait_for(lambda m=moment: MOMENTS[m](searchrun.trials(run_dir), _epochs(run_dir)),
                               timeout=240, proc=proc, log=log)
        finally:
            leftovers = searchrun.kill_driver(proc)
        snapshots[moment] = searchrun.trials(run_dir), _epochs(run_dir)
        searchrun.kill_pids(leftovers)
    moved = tmp_path / "moved" / "renamed"
    moved.parent.mkdir()
    run_dir.rename(moved)
    out = search_process.run(["--resume", str(moved), *dashboard])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    _check_resumed(moved, *snapshots["before-first-trial-finishes"], out.stdout)
    kept = _check_resumed(moved, *snapshots["mid-trial"], out.stdout)
    assert len(kept) >= 3  # the interrupted trial's first epoch is among them
    assert not run_dir.exists() and f"{moved}/best.json" in out.stdout
    from nas.orchestration import tracking

    study = tracking.load_study(moved, "killed")  # the journal moved with the run, the study kept its name
    assert {t.user_attrs.get("ray_trial_id") for t in study.trials} >= set(searchrun.trials(moved)["trial_id"])


def test_resume_after_kill_9_between_trials(killed_and_resumed):
    run = killed_and_resumed
    assert (run["before"]["outcome"] == "completed").sum() >= 1  # killed after a trial had completed
    _check_resumed(run["run_dir"], run["before"], run["epochs_before"], run["resumed"])


def _check_resumed(run_dir, before, epochs_before, stdout) -> pd.DataFrame:
    """What a search of 3 trials x 2 epochs, killed and resumed, must have left; returns the epochs
    recorded before the kill that were kept."""
    finished = set(before.loc[before["outcome"] == "completed", "trial_id"])
    after, epochs = searchrun.trials(run_dir), _epochs(run_dir)
    # exactly the trials asked for, each once, all finished
    assert len(after) == 3 and after["trial_id"].is_unique, stdout[-4000:]
    assert set(after["outcome"]) == {"completed"}
    assert finished <= set(after["trial_id"])
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert (epochs.groupby("trial_id").size() == 2).all() and set(epochs["trial_id"]) == set(after["trial_id"])
    # nothing recorded before the kill was trained again (timings would differ): finished trials, and
    # the epochs an interrupted trial had checkpointed, which it continued from
    known = set(after["trial_id"])
    kept = epochs_before[epochs_before["trial_id"].isin(known)].sort_values(["trial_id", "epoch"])
    if len(kept):  # (before the first trial finished, nothing was recorded yet)
        again = epochs.merge(kept[["trial_id", "epoch"]]).sort_values(["trial_id", "epoch"])
        pd.testing.assert_frame_equal(again.reset_index(drop=True), kept.reset_index(drop=True))
    # best.json and the printed summary rank every trial in trials.csv, those run after the resume too
    top = after.sort_values(["best_val_accuracy", "epochs"], ascending=False).iloc[0]
    assert load_architecture(run_dir / "best.json").to_dict() == json.loads(top["arch"])
    assert f"Best: {top['name']}" in stdout and "\ntrials: " in stdout and "/trials.csv" in stdout
    return kept


# --- what a running search exposes ------------------------------------------------------------------------

def test_everything_listens_on_loopback_and_the_dashboard_needs_the_token(tmp_path, search_process):
    import urllib.error
    import urllib.request
    from pathlib import Path

    import psutil

    run_dir = tmp_path / "exposed"
    log = tmp_path / "log"
    proc = search_process.start([*searchrun.FAST, "--trials", "1", "--max-epochs", "2", "--dashboard-port",
                            str(free_port()), "--storage-path", str(tmp_path), "--name", "exposed"], log)
    try:
        searchrun.wait_for(lambda: (searchrun.trials(run_dir)["outcome"] == "running").any(), 120, proc, log)
        processes = [psutil.Process(proc.pid), *searchrun.descendants(proc.pid)]
        listening = []
        for p in processes:
            try:
                listening += [c.laddr for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
            except psutil.NoSuchProcess:
                pass
        assert len(listening) >= 3  # GCS, raylet, dashboard at least
        assert {addr.ip for addr in listening} <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening
        url = next(line.split()[2] for line in log.read_text().splitlines() if line.startswith("Ray dashboard:"))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/api/version", timeout=10)
        assert refused.value.code == 401
        # the dashboard line names the token file: "... (its token: `ray get-auth-token`, or the file PATH)"
        token = Path(next(line for line in log.read_text().splitlines() if line.startswith("Ray dashboard:"))
                     .split("or the file ")[1].rstrip(")")).expanduser().read_text().strip()
        request = urllib.request.Request(url + "/api/version", headers={"Authorization": f"Bearer {token}"})
        assert json.loads(urllib.request.urlopen(request, timeout=10).read())["ray_version"]
    finally:
        searchrun.kill_pids(searchrun.kill_driver(proc))


def test_asking_for_gpus_on_a_cluster_without_any_is_a_clear_error(tmp_path, ray_instance, capsys):
    """The command's main in this process, on the session's Ray (CPUs only): the GPU request is checked
    against the nodes once Ray is reachable, and refused in one line before any trial or file."""
    from nas.cli import run_main
    from nas.search import main

    code = run_main(main, [*searchrun.FAST, "--gpus-per-trial", "0.5", "--storage-path", str(tmp_path),
                           "--name", "gpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--gpus-per-trial" in err and "0 GPUs" in err and "Traceback" not in err
    assert not (tmp_path / "gpu").exists()  # nothing half-written
