"""nas.export: the top-K architectures round-trip (load, build, weights with strict=True)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

import nas
from nas.cli import run_main
from nas.export import main
from nas.report import export_top
from nas.report.deploy import load_weights
from nas.rundir.schema import COST_COLUMNS
from search_spaces import build_model, load_architecture, with_io
from tests.helpers.fake_run import write_fake_run

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory):
    # A small space (ResNeXt-29-like, 1-2 blocks per stage): real state_dicts stay a few MB.
    run_dir = write_fake_run(tmp_path_factory.mktemp("cifar") / "run", n_trials=16, space="resnext-cifar",
                             seed=2, checkpoints=2)
    return run_dir, pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})


def test_export_round_trip(cifar_run):
    run_dir, trials = cifar_run
    paths = export_top(run_dir, top=3)
    out = run_dir / "export"
    assert [p.parent.parent for p in paths] == [out] * 3
    done = trials[trials["outcome"] == "completed"].sort_values("best_val_accuracy", ascending=False)
    expected = list(done["trial_id"].head(3))
    assert [p.parent.name for p in paths] == [f"rank{i:02d}_{t}" for i, t in enumerate(expected, start=1)]
    rows = trials.set_index("trial_id")
    for path, tid in zip(paths, expected, strict=True):
        arch = nas.load_architecture(path)  # plain resnext-arch/1: the loader rejects extra fields
        # the cifar space's ends are the dataset's: as trained (arch.json) and as searched coincide
        assert arch.to_dict() == json.loads(rows.at[tid, "arch"])
        assert nas.load_architecture(path.parent / "arch_nominal.json") == arch
        build_model(arch)
        metrics = json.loads((path.parent / "metrics.json").read_text())
        assert metrics["trial_id"] == tid and metrics["name"] == arch.describe()
        assert metrics["accuracy"] == pytest.approx(rows.at[tid, "best_val_accuracy"])
        assert all(metrics[c] == rows.at[tid, c] for c in COST_COLUMNS)
    # the best trial's weights: extracted from checkpoint.pt, they fit the built model exactly
    weights = paths[0].parent / "weights.safetensors"
    trained, state = load_weights(weights)  # the architecture travels in the file's metadata
    assert trained == load_architecture(paths[0].parent / "arch.json")
    model = build_model(load_architecture(paths[0]))
    model.load_state_dict(state, strict=True)
    ckpt = torch.load(run_dir / rows.at[expected[0], "checkpoint"] / "checkpoint.pt", weights_only=True)
    for key, tensor in ckpt["model"].items():
        assert torch.equal(model.state_dict()[key], tensor)
    # every exported rank whose trial kept a checkpoint (2 here) has its weights; the third has none
    assert (paths[1].parent / "weights.safetensors").is_file()
    assert not list(paths[2].parent.glob("weights.*"))
    index = json.loads((out / "index.json").read_text())
    assert [a["trial_id"] for a in index["architectures"]] == expected
    assert index["architectures"][0]["weights"] == f"{paths[0].parent.name}/weights.safetensors"
    assert all((out / a["arch"]).is_file() for a in index["architectures"])


def test_reexport_replaces_stale_ranks_and_honours_out(cifar_run, tmp_path):
    run_dir, _ = cifar_run
    out = tmp_path / "exported"
    export_top(run_dir, top=4, out=out)
    (out / "notes.txt").write_text("mine")
    paths = export_top(run_dir, top=2, out=out)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(p.parent.name for p in paths)
    assert (out / "notes.txt").read_text() == "mine"  # nothing but our rank folders is removed


def test_absolute_checkpoint_and_wrapped_state_dict(tmp_path):
    run_dir = write_fake_run(tmp_path / "abs", n_trials=8, space="resnext-cifar", seed=4, checkpoints=1,
                             absolute_checkpoints=True, failures=False)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    ckpt_dir = Path(trials.loc[trials["checkpoint"].notna(), "checkpoint"].item())
    assert ckpt_dir.is_absolute()
    ckpt = torch.load(ckpt_dir / "checkpoint.pt", weights_only=True)
    ckpt["model"] = {f"module.{k}": v for k, v in ckpt["model"].items()}  # saved from a DDP wrapper
    torch.save(ckpt, ckpt_dir / "checkpoint.pt")
    best = export_top(run_dir, top=1)[0]
    build_model(load_architecture(best)).load_state_dict(load_weights(best.parent / "weights.safetensors")[1],
                                                         strict=True)


def test_no_checkpoint_or_a_bad_one_still_exports(tmp_path):
    run_dir = write_fake_run(tmp_path / "nockpt", n_trials=8, space="resnext-cifar", seed=6, failures=False)
    best = export_top(run_dir, top=2)[0]
    metrics = json.loads((best.parent / "metrics.json").read_text())
    assert metrics["weights"] is None and "no checkpoint" in metrics["weights_note"]
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str, "checkpoint": str})
    tid = best.parent.name.split("_", 1)[1]
    garbage = run_dir / "garbage"
    garbage.mkdir()
    (garbage / "checkpoint.pt").write_bytes(b"not a torch file")
    trials.loc[trials["trial_id"] == tid, "checkpoint"] = "garbage"
    trials.to_csv(run_dir / "trials.csv", index=False)
    best = export_top(run_dir, top=1)[0]
    metrics = json.loads((best.parent / "metrics.json").read_text())
    assert metrics["weights"] is None and "unreadable checkpoint" in metrics["weights_note"]


def test_partial_run_exports_provisional_best(tmp_path):
    run_dir = write_fake_run(tmp_path / "partial", n_trials=6, partial=True, seed=7)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    trials.loc[trials["outcome"] == "completed", "outcome"] = "running"  # nothing finished yet
    trials.to_csv(run_dir / "trials.csv", index=False)
    paths = export_top(run_dir, top=50)
    measured = trials[trials["outcome"].isin(["running", "stopped"]) & trials["best_val_accuracy"].notna()]
    assert len(paths) == len(measured)


def test_command_line(cifar_run, tmp_path, capsys):
    run_dir, _ = cifar_run
    assert run_main(main, [str(run_dir), "--top", "2", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "#1 " in out and "weights" in out and str(tmp_path / "o" / "index.json") in out


def test_arch_json_fits_the_weights_and_the_nominal_one_sits_beside_it(tmp_path):
    """A Fashion-MNIST search on the imagenet space trains 1 channel -> 10 classes; the space's nominal
    architecture has 3 -> 1000. arch.json is the trained one (the weights load into it), arch_nominal.json
    the searched one; a rank without weights still gets the dataset's ends."""
    from nas.report import load_run
    from nas.report.deploy import has_safetensors

    run_dir = write_fake_run(tmp_path / "run", n_trials=6, seed=2, failures=False, max_epochs=2)
    search = json.loads((run_dir / "search.json").read_text())
    (run_dir / "search.json").write_text(json.dumps({**search, "dataset": "fashion-mnist", "train_resolution": 28}))
    best = load_run(run_dir).ranked().iloc[0]
    nominal = best["architecture"]
    trained = with_io(nominal, in_channels=1, num_classes=10)
    ckpt = run_dir / "trials" / best["trial_id"] / "checkpoint_000001"
    ckpt.mkdir(parents=True)
    torch.save({"model": build_model(trained).state_dict(), "arch": trained.to_dict()}, ckpt / "checkpoint.pt")
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str, "checkpoint": object})
    trials.loc[trials["trial_id"] == best["trial_id"], "checkpoint"] = str(ckpt.relative_to(run_dir))
    trials.to_csv(run_dir / "trials.csv", index=False)

    paths = export_top(run_dir, top=2)
    first, second = (p.parent for p in paths)
    assert first.name.endswith(best["trial_id"])
    assert load_architecture(paths[0]) == trained and load_architecture(first / "arch_nominal.json") == nominal
    weights = next(first.glob("weights.*"))
    state = load_weights(weights)[1]
    build_model(load_architecture(paths[0])).load_state_dict(state, strict=True)  # the obvious file fits
    if has_safetensors():
        assert load_weights(weights)[0] == trained
    assert (load_architecture(paths[1]).in_channels, load_architecture(paths[1]).num_classes) == (1, 10)
    assert load_architecture(second / "arch_nominal.json").num_classes == 1000
    spec = json.loads((first / "metrics.json").read_text())["input"]
    assert spec["mean"] == [0.286] and spec["std"] == [0.353] and spec["train_resolution"] == 28
    assert spec["class_names"][0] == "T-shirt/top" and len(spec["class_names"]) == 10
