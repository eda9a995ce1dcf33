"""`--compile` on nas.search and nas.train reaches the trial's TrainConfig and really compiles; with
Tune's reused actors (one process, trial after trial) every architecture compiles, the 9th and 10th
too (Dynamo's recompile limit is 8: correctness review, finding 17).

Compilation uses the "eager" backend here (Dynamo traces, no code generation), so the tests stay fast.
"""

from __future__ import annotations

import json

import pytest
import torch

from search_spaces import get_space, save_architecture, template


@pytest.fixture
def eager_backend(monkeypatch):
    """torch.compile, recording each call, with the eager backend whatever was asked for."""
    calls: list[str] = []
    real = torch.compile

    def compile_spy(model, *args, backend="inductor", **kwargs):
        calls.append(backend)
        return real(model, backend="eager")

    monkeypatch.setattr(torch, "compile", compile_spy)
    return calls


def test_nas_search_compile_flag_reaches_every_trial(tmp_path):
    from nas.orchestration.plan import train_config
    from nas.search import build_parser, settings_from_args

    args = build_parser().parse_args(["--budget", "500MFLOPs", "--compile", "--storage-path", str(tmp_path)])
    settings = settings_from_args(args)
    assert settings.compile and train_config(settings, get_space("resnext-imagenet"))["compile"] is True
    plain = settings_from_args(build_parser().parse_args(["--budget", "500MFLOPs"]))
    assert "compile" not in train_config(plain, get_space("resnext-imagenet"))


def test_nas_train_compile_flag_compiles(tmp_path, eager_backend, capsys):
    from nas.train import main

    arch = save_architecture(template((1, 1, 1), 2, 4, in_channels=3, num_classes=10, base_out=32),
                             tmp_path / "tiny.json")
    assert main([str(arch), "--dataset", "synthetic", "--epochs", "1", "--train-subset", "64", "--batch-size",
                 "32", "--threads", "1", "--device", "cpu", "--compile", "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    assert eager_backend == ["inductor"]
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["config"]["compile"] is True and summary["status"] == "ok"


def test_reused_process_compiles_every_architecture(eager_backend):
    from torch._dynamo.utils import counters

    from trials.datasets import load_synthetic
    from trials.loop import TrainConfig, train

    data = load_synthetic(n_train=96, n_test=16, resolution=16)
    config = TrainConfig(dataset="synthetic", epochs=1, batch_size=32, val_size=32, device="cpu", threads=1,
                         compile=True, compile_backend="eager")
    graphs = []
    for i in range(10):  # ten architectures in one process, as a reused Tune actor runs them
        arch = template((1, 1 + i % 2, 1 + i // 2), 2, 4, in_channels=3, num_classes=10, base_out=16)
        before = counters["stats"]["unique_graphs"]
        assert train(arch, config, dataset=data)["status"] == "ok"
        graphs.append(counters["stats"]["unique_graphs"] - before)
    assert len(eager_backend) == 10 and all(n >= 1 for n in graphs), graphs  # the 9th and 10th compiled too
