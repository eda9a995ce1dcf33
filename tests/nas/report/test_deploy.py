"""nas.export's deployable files: weights for every exported rank (safetensors with the architecture inside),
ONNX and TorchScript model files checked against PyTorch, and a broken export refused (exit 2)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from nas.cli import run_main
from nas.export import main
from nas.report import deploy
from nas.report.deploy import DeployError, export_model, load_model, load_weights
from search_spaces import build_model, get_space
from tests.helpers.fake_run import write_fake_run

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("safetensors")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_fake_run(tmp_path_factory.mktemp("deploy") / "run", n_trials=10, space="resnext-cifar", seed=3,
                          checkpoints=2, failures=False)


def _tiny_model():
    arch = get_space("resnext-cifar").architecture(2, 2, (1, 1, 1), base_out=16)
    torch.manual_seed(0)
    return build_model(arch).eval()


def test_every_rank_weights_and_checked_model_files(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_main(main, [str(run_dir), "--top", "3", "--out", str(out), "--format", "onnx,torchscript"]) == 0
    printed = capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())["architectures"]
    with_weights = [a for a in index if a["weights"]]
    assert len(with_weights) == 2 and index[2]["weights"] is None  # the fixture kept 2 checkpoints
    x = torch.randn(4, 3, 32, 32)
    for entry in with_weights:
        folder = out / entry["weights"].split("/")[0]
        arch, _ = load_weights(out / entry["weights"])  # the architecture from the file's own metadata
        assert arch.to_dict() == json.loads((folder / "arch.json").read_text())
        model = load_model(out / entry["weights"])
        with torch.no_grad():
            expected = model(x).numpy()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert set(metrics["models"]) == {"onnx", "torchscript"}
        for fmt, check in metrics["models"].items():
            assert 0 <= check["max_abs_diff"] <= check["tolerance"]
            assert f"{fmt}: {check['file']} checked" in printed
        # independently of the export's own check: the files compute what the weights compute
        import onnxruntime as ort

        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert np.abs(got - expected).max() < 1e-4
        # height and width are dynamic: a deployer may feed another size (the net pools globally)
        assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
        other = torch.randn(2, 3, 45, 37)
        with torch.no_grad():
            want = model(other).numpy()
        assert np.abs(session.run(None, {"input": other.numpy()})[0] - want).max() < 1e-4
        # and the file says what it expects: the architecture it holds, the normalisation, the resolution
        meta = session.get_modelmeta().custom_metadata_map
        assert json.loads(meta["architecture"]) == arch.to_dict()
        assert json.loads(meta["mean"]) == pytest.approx([0.4914, 0.4822, 0.4465])
        assert json.loads(meta["std"]) == pytest.approx([0.2470, 0.2435, 0.2616])
        assert json.loads(meta["class_names"])[:2] == ["airplane", "automobile"]
        assert meta["train_resolution"] == "32" and "/ 255 - mean) / std" in meta["preprocessing"]
        assert metrics["input"]["mean"] == json.loads(meta["mean"]) and metrics["models"]["onnx"]["input_shape"] == [
            "batch", 3, "height", "width"]
        with torch.no_grad():
            traced = torch.jit.load(str(folder / "model.torchscript.pt"))(x).numpy()
        assert np.abs(traced - expected).max() < 1e-4
        assert entry["models"] == {"onnx": f"{folder.name}/model.onnx",
                                   "torchscript": f"{folder.name}/model.torchscript.pt"}
    assert not list((out / index[2]["arch"]).parent.glob("model.*"))  # no weights, no model file


def test_weights_round_trip_without_export_formats(run_dir, tmp_path):
    out = tmp_path / "plain"
    assert run_main(main, [str(run_dir), "--top", "2", "--out", str(out)]) == 0
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        assert not list(folder.glob("model.*"))
        model = load_model(folder / "weights.safetensors")
        ckpt_rel = json.loads((folder / "metrics.json").read_text())["checkpoint"]
        ckpt = torch.load(run_dir / ckpt_rel / "checkpoint.pt", weights_only=True)["model"]
        for key, tensor in model.state_dict().items():
            assert torch.equal(tensor, ckpt[key])


class _ShapeBranch(torch.nn.Module):
    """A model whose trace is wrong: tracing bakes in the branch its example batch (2) took."""

    def forward(self, x):
        y = x.mean(dim=(2, 3))
        return y if x.shape[0] == 2 else -y


def test_broken_torchscript_export_raises(tmp_path):
    with pytest.raises(DeployError, match=r"torchscript: .* differs from the PyTorch model"):
        export_model(_ShapeBranch(), "torchscript", tmp_path, (3, 8, 8))
    check = export_model(_tiny_model(), "torchscript", tmp_path, (3, 32, 32))  # a sound model passes
    assert check.max_abs_diff <= check.tolerance


def _perturbed_onnx(model, example, path, **_options):
    """An exporter gone wrong: it writes another model's weights (one conv weight nudged)."""
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        next(p for p in wrong.parameters() if p.dim() == 4).add_(0.5)
    torch.onnx.export(wrong, (example,), str(path), dynamo=False, input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_broken_onnx_export_is_an_error_and_leaves_nothing(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(deploy._EXPORTERS, "onnx", _perturbed_onnx)
    out = tmp_path / "broken"
    assert run_main(main, [str(run_dir), "--top", "2", "--out", str(out), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --format: onnx: ") and "differs from the PyTorch model" in err[0]
    assert list(out.iterdir()) == []  # no half-written export


def test_unknown_format_refused_before_writing(run_dir, tmp_path, capsys):
    out = tmp_path / "never"
    assert run_main(main, [str(run_dir), "--out", str(out), "--format", "tflite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --format: unknown format 'tflite'; accepted: onnx, torchscript"]
    assert not out.exists()
