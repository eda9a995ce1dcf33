"""nas.validate (issue 12): which architectures it picks, the report's "Does the search's ranking hold?"
on a constructed validation table whose truth is known, and one tiny real validation on Ray."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from nas.orchestration import SearchSettings
from nas.orchestration.validation import COLUMNS, ValidationSettings, epoch_table, plan, select
from nas.report import load_run, write_report
from nas.rundir.schema import VALIDATION, VALIDATION_CSV, VALIDATION_EPOCHS_CSV
from nas.search import stage_maps_line
from search_spaces import template
from tests.helpers.fake_run import write_fake_run
from tests.nas.report.test_report import figures, role_traces


def tiny_run(path, n_trials=8, seed=0):
    """A synthetic run of the cifar space whose search.json retrains on the synthetic dataset in seconds."""
    run_dir = write_fake_run(path, n_trials=n_trials, space="resnext-cifar", failures=False, seed=seed, max_epochs=3)
    data = json.loads((run_dir / "search.json").read_text())
    data["settings"] = asdict(SearchSettings(
        budget_flops=int(data["budget_flops"]), space="resnext-cifar", dataset="synthetic", train_subset=64,
        val_size=32, batch_size=32, max_epochs=1, max_concurrent=1, cpus_per_trial=1, seed=0))
    (run_dir / "search.json").write_text(json.dumps(data))
    return run_dir


def test_select_takes_the_top_and_spreads_controls_over_the_rest(tmp_path):
    run = load_run(tiny_run(tmp_path / "run", n_trials=12))
    ranked = run.ranked()
    chosen = select(run, top=3, controls=3)
    assert list(chosen["role"]) == ["top"] * 3 + ["control"] * 3
    assert list(chosen["arch_id"][:3]) == list(ranked["trial_id"][:3])
    ranks = list(chosen["rank"])
    assert ranks[:3] == [1, 2, 3] and ranks[3] == 4 and ranks[-1] == ranked["arch"].nunique()  # first, last of the rest
    # the proxy of every chosen architecture is its accuracy at one epoch, the highest all of them reached
    # (ASHA stopped most controls after epoch 1: ranking them against 3-epoch accuracies mixes fidelities)
    epoch = int(chosen["proxy_epochs"].iloc[0])
    assert (chosen["proxy_epochs"] == epoch).all() and epoch == int(ranked.set_index("trial_id").loc[
        chosen["arch_id"], "epochs"].min())
    at = run.epochs[run.epochs["epoch"] == epoch].set_index("trial_id")["val_accuracy"]
    assert chosen["proxy_accuracy"].tolist() == at.loc[chosen["arch_id"]].tolist()


def test_plan_refuses_more_than_the_run_ranks(tmp_path):
    run_dir = tiny_run(tmp_path / "run", n_trials=4)
    with pytest.raises(ValueError, match="only 4 distinct"):
        plan(run_dir, ValidationSettings(top=3, controls=2))
    _, settings, _, train = plan(run_dir, ValidationSettings(top=2, epochs=None, train_resolution=48))
    assert settings.max_epochs == 2 and train["epochs"] == 2 and train["train_resolution"] == 48  # 2x the search's


def _write_validation(run_dir, accs: dict[str, list[float]], proxy: dict[str, float]):
    rows = [{"arch_id": a, "rank": i + 1, "role": "top", "name": a, "proxy_accuracy": proxy[a], "proxy_epochs": 1,
             "seed": s, "validated_accuracy": v, "epochs": 4, "train_resolution": 32, "status": "ok"}
            for i, a in enumerate(proxy) for s, v in enumerate(accs[a])]
    (run_dir / VALIDATION).mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(run_dir / VALIDATION / VALIDATION_CSV, index=False)


def test_report_section_reversed_ranking_has_tau_minus_one(tmp_path):
    run_dir = write_fake_run(tmp_path / "run", n_trials=6, failures=False)
    proxy = {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}
    _write_validation(run_dir, {"a": [0.60, 0.62], "b": [0.70, 0.71], "c": [0.80, 0.80], "d": [0.90, 0.92]}, proxy)
    report = write_report(run_dir)
    fig = figures(report)["validation"]
    assert "Does the search" in report.read_text()
    assert "proxy, at epoch 1 for all" in report.read_text()  # one proxy fidelity, said
    scatter = role_traces(fig, "rank-scatter")[0]
    assert scatter["x"] == pytest.approx([90, 80, 70, 60])
    assert scatter["y"] == pytest.approx([61, 70.5, 80, 91])
    assert scatter["error_y"]["array"] == pytest.approx([100 * np.std([0.60, 0.62], ddof=1), 100 * np.std(
        [0.70, 0.71], ddof=1), 0, 100 * np.std([0.90, 0.92], ddof=1)])
    title = fig["layout"]["title"]["text"]
    assert "Kendall tau -1.00" in title and "Spearman rho -1.00" in title and "n=4" in title
    assert "not the validated best" in title


def test_report_section_with_two_architectures_says_too_few(tmp_path):
    run_dir = write_fake_run(tmp_path / "run", n_trials=6, failures=False)
    _write_validation(run_dir, {"a": [0.6], "b": [0.7]}, {"a": 0.9, "b": 0.8})
    html = write_report(run_dir).read_text()
    assert "too few validated architectures (n=2" in html


def test_no_validation_no_section(tmp_path):
    run_dir = write_fake_run(tmp_path / "run", n_trials=6, failures=False)
    assert "validation" not in figures(write_report(run_dir))


def test_stage_map_sizes_at_the_training_resolution():
    arch = template((3, 4, 6, 3), 32, 4, num_classes=10)
    assert "stage3 2x2, stage4 1x1" in stage_maps_line(arch, 28)
    assert "--train-resolution 33 or more" in stage_maps_line(arch, 28)
    line = stage_maps_line(arch, 64)
    assert "stage1 16x16, stage2 8x8, stage3 4x4, stage4 2x2" in line and "warning" not in line


def _validate(ray, monkeypatch, capsys, run_dir, *args) -> tuple[int, str, str]:
    """nas.validate's main in this process, on the session's shared Ray: the command starts (and shuts
    down) a Ray of its own, which costs two Ray start-ups per run here; the retraining is the same."""
    import nas.orchestration
    from nas.cli import run_main
    from nas.validate import main

    monkeypatch.setattr(nas.orchestration, "start_ray", lambda *_a, **_k: {
        "resources": ray.cluster_resources(), "dashboard": "", "token_path": ""})
    monkeypatch.setattr(ray, "shutdown", lambda: None)  # the session's Ray outlives the command
    capsys.readouterr()
    code = run_main(main, [str(run_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


class _Result:  # the parts of a ray.tune.Result that epoch_table reads
    def __init__(self, arch, seed, accuracies):
        self.config = {"arch": arch, "train": {"seed": seed}}
        self.metrics_dataframe = pd.DataFrame({"training_iteration": range(1, len(accuracies) + 1),
                                               "val_accuracy": accuracies, "epoch_seconds": 2.0})


def test_epoch_table_keeps_every_epoch_of_every_seed():
    a, b = template((1, 1, 1, 1), 1, 64).to_dict(), template((1, 1, 1, 1), 32, 4).to_dict()
    chosen = pd.DataFrame({"arch_id": ["A", "B"], "arch": [json.dumps(x, sort_keys=True) for x in (a, b)]})
    other = template((1, 1, 1, 1), 2, 40).to_dict()  # not chosen: left out
    restarted = _Result(a, 0, [0.0, 0.0, 0.1, 0.2, 0.3])  # restarted after 2 epochs: reported again
    restarted.metrics_dataframe["training_iteration"] = [1, 2, 1, 2, 3]
    never_started = _Result(a, 1, [])
    never_started.config = None  # what Tune returns for a trial of an interrupted fit that never ran
    results = [_Result(b, 1, [0.5, 0.6, 0.7]), restarted, _Result(other, 0, [0.9]), never_started]
    frame = epoch_table(results, chosen, resolution=33)
    assert list(zip(frame["arch_id"], frame["seed"], frame["epoch"], strict=True)) == [
        ("A", 0, 1), ("A", 0, 2), ("A", 0, 3), ("B", 1, 1), ("B", 1, 2), ("B", 1, 3)]
    assert list(frame["val_accuracy"]) == [0.1, 0.2, 0.3, 0.5, 0.6, 0.7]
    assert (frame["train_resolution"] == 33).all()
    assert epoch_table([], chosen, 28).empty


def test_validate_retrains_on_ray_and_resumes(tmp_path, ray_instance, monkeypatch, capsys, cli):
    run_dir = tiny_run(tmp_path / "run", n_trials=6)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    trials["role"] = ["reference" if i == 1 else "sampled" for i in range(len(trials))]  # one reference design
    trials.to_csv(run_dir / "trials.csv", index=False)
    args = ("--top", "1", "--controls", "1", "--seeds", "1", "--epochs", "1", "--references")
    code, out, err = _validate(ray_instance, monkeypatch, capsys, run_dir, *args)
    assert code == 0, err[-3000:] + out[-2000:]
    table = pd.read_csv(run_dir / VALIDATION / VALIDATION_CSV, dtype={"arch_id": str})
    chosen = select(load_run(run_dir), 1, 1, references=True)
    assert len(table) == 3 and set(table["arch_id"]) == set(chosen["arch_id"])
    assert list(chosen["role"]) == ["top", "control", "reference"]
    # a fresh seed (the search's was 0) and the held-out images, not the search's validation images
    assert (table["seed"] == 1).all() and (table["epochs"] == 1).all() and (table["eval_split"] == "holdout").all()
    assert "seeds 1 (after the search's); evaluated on 32 held-out images of the training split" in out
    summary = pd.read_csv(run_dir / VALIDATION / "summary.csv", dtype={"arch_id": str}).set_index("role")
    assert summary.loc["reference", "verdict"] == "the best reference"
    assert summary.loc["top", "verdict"] == "cannot tell (fewer than 2 seeds)" and not np.isnan(
        summary.loc["top", "difference"])
    assert "vs best reference" in out and "Search vs the reference designs" in (run_dir / "report.html").read_text()
    assert (table["status"] == "ok").all() and table["validated_accuracy"].between(0, 1).all()
    assert "validation" in figures(run_dir / "report.html")
    # one line per ended trial while it runs
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"], out[-2000:]
    assert all(" seed 1: " in line and "% after 1 epoch (" in line for line in lines), lines
    # every epoch of every retrained (architecture, seed); its last epoch is the validated accuracy
    per_epoch = pd.read_csv(run_dir / VALIDATION / VALIDATION_EPOCHS_CSV, dtype={"arch_id": str})
    assert len(per_epoch) == 3 and (per_epoch["epoch"] == 1).all()
    merged = table.merge(per_epoch, on=["arch_id", "seed"])
    assert np.allclose(merged["validated_accuracy"], merged["val_accuracy"]) and (merged["epoch_seconds"] > 0).all()
    # A second invocation continues the same experiment (Tuner.restore): nothing is retrained twice.
    results = sorted((run_dir / VALIDATION).glob("*/result.json"))
    assert len(results) == 3 and all(len(p.read_text().splitlines()) == 1 for p in results)
    code, out, err = _validate(ray_instance, monkeypatch, capsys, run_dir, *args)
    assert code == 0, err[-3000:]
    assert len(pd.read_csv(run_dir / VALIDATION / VALIDATION_CSV)) == 3
    assert sorted((run_dir / VALIDATION).glob("*/result.json")) == results
    assert all(len(p.read_text().splitlines()) == 1 for p in results)
    # `python -m nas.validate` itself, refusing other settings for the same run before Ray starts
    other = cli("-m", "nas.validate", str(run_dir), "--top", "1", "--epochs", "1")
    assert other.returncode == 2 and other.stderr.strip().startswith("error: --top:")
    assert "other settings" in other.stderr and len(other.stderr.strip().splitlines()) == 1
