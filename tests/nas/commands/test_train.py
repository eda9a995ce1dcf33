"""`python -m nas.train`: flag errors are one line, exit 2; a real run saves weights and a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas.cli import run_main
from nas.train import main
from search_spaces import save_architecture, template


@pytest.fixture
def arch_file(tmp_path) -> Path:
    # Built for ImageNet-like I/O on purpose: nas.train must adapt it to the dataset and say so.
    return save_architecture(template((1, 1, 1), 2, 4, in_channels=3, num_classes=1000, base_out=32),
                             tmp_path / "tiny.json")


@pytest.mark.parametrize("flag, value", [
    ("--epochs", "0"), ("--epochs", "two"), ("--lr", "-1"), ("--lr", "nan"), ("--batch-size", "0"),
    ("--train-subset", "-5"), ("--seed", "-1"), ("--dataset", "mnist"), ("--device", "tpu"),
])
def test_bad_flag_is_one_line_exit_2(arch_file, capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        run_main(main, [str(arch_file), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "Traceback" not in err


def test_bad_architecture_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"stem": "imagenet", "in_channels": 1, "num_classes": 10, "stages": []}')
    assert run_main(main, [str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "stages" in err and len(err.splitlines()) == 1
    assert run_main(main, [str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_missing_data_dir_is_a_clear_error(arch_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("trials.datasets._files.SYSTEM_DIR", tmp_path / "none")
    monkeypatch.delenv("NAS_DATA_DIR", raising=False)
    import urllib.error

    def offline(*args, **kwargs):  # no network in tests
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    assert run_main(main, [str(arch_file), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: fashion-mnist") and str(tmp_path / "data") in err


def test_trains_and_saves(arch_file, tmp_path, fashion_mnist, search_process):
    out = tmp_path / "out"
    proc = search_process.command("nas.train", str(arch_file), "--epochs", "1", "--train-subset", "512",
                                  "--batch-size", "64", "--threads", "2", "--out", str(out), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "adapted tiny.json from 3 input channels / 1000 classes to 1 / 10" in proc.stdout
    assert any(line.startswith("epoch 1/1") and "images/s" in line for line in lines)
    summary = json.loads(lines[-1])
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["epochs"] == 1 and summary["seconds"] > 0
    state = torch.load(out / "model.pt", weights_only=True)
    assert state["fc.weight"].shape == (10, 128)
    assert json.loads((out / "summary.json").read_text())["test_accuracy"] == summary["test_accuracy"]


def test_help_states_the_training_defaults():
    from nas.train import build_parser
    from trials import TrainConfig

    text = " ".join(build_parser().format_help().split())
    defaults = TrainConfig()
    assert f"peak learning rate (default {defaults.lr:g})" in text
    assert f"training epochs (default {defaults.epochs})" in text


class _Step:
    def __init__(self, epoch, step, steps):
        self.epoch, self.step, self.steps, self.loss = epoch, step, steps, 0.5


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_within_an_epoch_piped_and_on_a_terminal():
    import io

    from nas.train import StepLine

    clock, pipe = _Clock(), io.StringIO()
    line = StepLine(3, stream=pipe, interval=30, clock=clock)
    line(_Step(1, 1, 100))  # the first step: printed at once, so a log shows the training started
    clock.now = 10
    line(_Step(1, 11, 100))  # within 30 s: not printed
    clock.now = 31
    line(_Step(1, 50, 100))
    lines = pipe.getvalue().splitlines()
    assert lines[0] == "epoch 1/3: step 1/100 (1%), loss 0.5000"
    assert lines[1] == "epoch 1/3: step 50/100 (50%), loss 0.5000, ~32 s left in the epoch"  # 31 s / 49 steps x 50
    assert len(lines) == 2 and "\r" not in pipe.getvalue()

    class TTY(io.StringIO):
        def isatty(self):
            return True

    tty, clock = TTY(), _Clock()
    line = StepLine(3, stream=tty, clock=clock)
    for step in range(1, 101):
        clock.now = step * 0.1
        line(_Step(2, step, 100))
    drawn = tty.getvalue().split("\r\x1b[K")[1:]
    assert 2 <= len(drawn) <= 60 and drawn[-1].endswith("step 100/100 (100%), loss 0.5000, ~0 s left in the epoch, "
                                                        "evaluating")
    line.clear()
    assert tty.getvalue().endswith("\r\x1b[K")  # the epoch's own line then starts on a clean line


def test_a_runs_best_json_trains_on_the_runs_dataset_and_resolution(tmp_path, capsys):
    """RUN/best.json: the dataset and the training resolution come from RUN/search.json; flags still win."""
    run = tmp_path / "run"
    run.mkdir()
    save_architecture(template((1, 1, 1), 2, 4, stem="cifar", in_channels=3, num_classes=10, base_out=16),
                      run / "best.json")
    (run / "search.json").write_text(json.dumps({"dataset": "synthetic", "train_resolution": 16}))
    args = ["--epochs", "1", "--train-subset", "64", "--batch-size", "32", "--threads", "1", "--json"]
    assert run_main(main, [str(run / "best.json"), *args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert f"note: dataset synthetic and resolution 16 from {run / 'search.json'}" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["dataset"] == "synthetic" and summary["config"]["train_resolution"] == 16
    assert "epoch 1/1: step 1/2 (50%)" in out  # piped: progress lines within the epoch
    assert run_main(main, [str(run / "best.json"), *args, "--train-resolution", "24", "--out",
                           str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert f"note: dataset synthetic from {run / 'search.json'}" in out
    assert json.loads(out.strip().splitlines()[-1])["config"]["train_resolution"] == 24
