"""Trained weights and deployable model files for an exported architecture, each checked where it is written.

- weights: safetensors (no pickle; loads in any framework), with the architecture JSON in the file's
  metadata, so the weights and the architecture they fit travel as one file (`load_weights`). Without
  the `export` extra the weights stay a torch state_dict (weights.pt beside the arch.json it fits).
- ONNX (torch.onnx.export; batch, height and width dynamic; the architecture, input normalisation, class
  names and training resolution in its metadata_props) and TorchScript (torch.jit.trace): every file is
  loaded back by the runtime that will serve it (onnxruntime's CPUExecutionProvider; torch.jit.load) and
  run on random inputs next to the PyTorch model (ONNX at a second input size too); a max abs difference
  above `TOLERANCE` raises `DeployError`, since a silently wrong model file is worse than none.

torch, safetensors, onnx and onnxruntime are imported inside the functions: ranking and JSON need none.
Nothing here is a library's job already: torch exports and the runtimes run, this module only wires
them and compares their outputs.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_spaces import Architecture, build_model

from .run_data import RunDataError

FORMATS = ("onnx", "torchscript")
FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
WEIGHTS_FORMAT = "resnext-weights/1"  # the metadata's "format"; "architecture" holds resnext-arch/1
# Max abs difference of the logits allowed between the PyTorch model and its exported file, in float32.
# Measured: 4e-8 (ONNX) and 0 (TorchScript) on a 3-stage CIFAR ResNeXt; operator reordering across a
# ResNeXt-50's ~50 layers stays near 1e-5 on logits of size ~10. A wrong export (a lost op, a baked-in
# shape, other weights) differs by O(0.1-1), so 1e-3 scaled by the logits' size separates the two by
# two orders of magnitude either way.
TOLERANCE = 1e-3
CHECK_BATCH = 3  # differs from the export batch (2): a batch size baked into the file is caught
EXPORT_EXTRA = "pip install 'resnext-nas[export]'"
_NEEDS = {"onnx": ("onnx", "onnxruntime", "onnxscript"), "torchscript": (), "safetensors": ("safetensors",)}


class DeployError(RunDataError):
    """A model file could not be written, or does not compute what the PyTorch model computes."""


@dataclass
class DeployCheck:
    format: str
    path: Path
    max_abs_diff: float
    tolerance: float  # what max_abs_diff was held to (TOLERANCE * max(1, max |logit|))
    export_seconds: float
    checked_sizes: list[str] = field(default_factory=list)  # C x H x W of the random inputs compared

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path.name, "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance,
                "export_seconds": round(self.export_seconds, 3),
                "check": f"{CHECK_BATCH} random inputs of each of {', '.join(self.checked_sizes)}"}


def missing_packages(fmt: str) -> list[str]:
    return [name for name in _NEEDS[fmt] if importlib.util.find_spec(name) is None]


def check_formats(formats: list[str]) -> None:
    """Refuse unknown formats and formats whose packages are missing, before anything is written."""
    for fmt in formats:
        if fmt not in FORMATS:
            raise DeployError("format", "unknown format {fmt!r}; accepted: {accepted}", fmt=fmt,
                              accepted=", ".join(FORMATS))
        missing = missing_packages(fmt)
        if missing:
            raise DeployError("format", "{fmt} needs {missing}: {extra}", fmt=fmt, missing=", ".join(missing),
                              extra=EXPORT_EXTRA)


# --- weights -----------------------------------------------------------------------------------------

def has_safetensors() -> bool:
    return not missing_packages("safetensors")


def save_weights(state: dict, arch: Architecture, path: Path) -> Path:
    """`state` (a state_dict fitting `arch`) as safetensors, the architecture in the metadata."""
    from safetensors.torch import save_file

    # safetensors refuses tensors sharing memory and non-contiguous ones; a state_dict has neither
    # normally, but clone so that a view from a wrapped model cannot make the file unwritable.
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(path), metadata={"format": WEIGHTS_FORMAT, "architecture": arch.to_json()})
    return path


def load_weights(path: str | Path) -> tuple[Architecture, dict]:
    """(architecture, state_dict) from a weights.safetensors written by `save_weights`, or from a
    weights.pt with the arch.json it fits beside it."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        if meta.get("format") != WEIGHTS_FORMAT or "architecture" not in meta:
            raise ValueError(f"{path}: no {WEIGHTS_FORMAT} architecture in its metadata")
        return Architecture.from_dict(json.loads(meta["architecture"])), state
    import torch

    from search_spaces import load_architecture

    return load_architecture(path.parent / "arch.json"), torch.load(path, map_location="cpu",
                                                                             weights_only=True)


def load_model(path: str | Path):
    """The exported model, built and loaded (strict), in eval mode."""
    arch, state = load_weights(path)
    model = build_model(arch)
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- model files -------------------------------------------------------------------------------------

def _export_onnx(model, example, path: Path, min_side: int = 1) -> None:
    import torch

    # torch 2.13: the torch.export-based exporter (dynamo=True, needs onnxscript) is the default and the
    # supported one; the TorchScript-based one (dynamo=False) warns it is deprecated. Measured on 2 cores
    # shared with other jobs: a small CIFAR ResNeXt, dynamo 15.7 s vs legacy 1.0-1.5 s; ResNeXt-50-template
    # models of 0.5 GFLOPs, dynamo 10-35 s (TorchScript trace 1.4-1.7 s). Slow, but the supported path.
    # Batch, height and width are dynamic: the network is convolutional with global pooling, so a deployer
    # may feed any size from `min_side` (every stage keeps at least a 1x1 map) up.
    batch = torch.export.Dim("batch", min=1)
    height, width = (torch.export.Dim(n, min=max(2, min_side), max=16384) for n in ("height", "width"))
    # The exporter logs that torchvision's detection ops are skipped and pytree's FutureWarnings: noise
    # for a ResNeXt, which uses none of them; real problems still raise.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=["input"],
                                        output_names=["logits"], dynamic_shapes=({0: batch, 2: height, 3: width},),
                                        verbose=False)
    finally:
        registration.setLevel(level)
    program.save(str(path))


def add_onnx_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Write `metadata` into the ONNX file's metadata_props (onnxruntime: get_modelmeta().custom_metadata_map)."""
    import onnx

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **metadata})
    onnx.save(proto, str(path))


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata an ONNX file carries, as onnxruntime reads it."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def _export_torchscript(model, example, path: Path, **_options) -> None:
    import torch

    # trace, not script: the models have no data-dependent control flow, and the check below catches one
    # that had (the trace bakes in the branch it took).
    torch.jit.trace(model, example, check_trace=False).save(str(path))


def _run_onnx(path: Path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _run_torchscript(path: Path, x):
    import torch

    with torch.no_grad():
        return torch.jit.load(str(path), map_location="cpu")(x).numpy()


_EXPORTERS = {"onnx": _export_onnx, "torchscript": _export_torchscript}
_RUNNERS = {"onnx": _run_onnx, "torchscript": _run_torchscript}


def export_model(model, fmt: str, folder: Path, input_shape: tuple[int, int, int], *, seed: int = 0,
                 tolerance: float = TOLERANCE, metadata: dict[str, str] | None = None,
                 min_side: int = 1) -> DeployCheck:
    """Write `model` (eval mode) as FORMAT into FOLDER and check it on random inputs of `input_shape`
    (C, H, W) and, for ONNX (whose height and width are dynamic, from `min_side`), also of another size;
    raise DeployError when it cannot be written or its outputs differ by more than
    `tolerance` * max(1, max |logit|). `metadata`: strings stored in the ONNX file (metadata_props)."""
    import numpy as np
    import torch

    check_formats([fmt])
    model = model.eval()
    path = folder / FILES[fmt]
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(2, *input_shape, generator=gen)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            _EXPORTERS[fmt](model, example, path, min_side=min_side)
            if fmt == "onnx" and metadata:
                add_onnx_metadata(path, metadata)
    except Exception as exc:  # noqa: BLE001 - any exporter failure is this format's error, in one line
        raise DeployError("format", "{fmt} export failed: {why}", fmt=fmt,
                          why=(str(exc).strip().splitlines() or [type(exc).__name__])[0]) from None
    seconds = time.perf_counter() - start
    channels, h, w = input_shape
    shapes = [input_shape] + ([(channels, h + 5, w + 11)] if fmt == "onnx" else [])  # a size unlike the export's
    worst, allowed_at_worst = 0.0, 0.0
    for shape in shapes:
        x = torch.randn(CHECK_BATCH, *shape, generator=gen)
        with torch.no_grad():
            expected = model(x).numpy()
        try:
            got = np.asarray(_RUNNERS[fmt](path, x))
        except Exception as exc:  # noqa: BLE001 - a file its runtime cannot run is a failed export
            raise DeployError("format", "{fmt}: {path} does not run on {shape} inputs: {why}", fmt=fmt, path=path,
                              shape="x".join(map(str, shape)),
                              why=(str(exc).strip().splitlines() or [type(exc).__name__])[0]) from None
        if got.shape != expected.shape:
            raise DeployError("format", "{fmt}: {path} gives outputs of shape {got}, the model {expected}", fmt=fmt,
                              path=path, got=got.shape, expected=expected.shape)
        diff = float(np.abs(got - expected).max())
        allowed = tolerance * max(1.0, float(np.abs(expected).max()))
        if not diff <= allowed:  # also NaN
            raise DeployError("format", "{fmt}: {path} differs from the PyTorch model by {diff:.3g} (max abs, "
                              "allowed {allowed:.3g}) on random {shape} inputs", fmt=fmt, path=path, diff=diff,
                              allowed=allowed, shape="x".join(map(str, shape)))
        if diff >= worst:
            worst, allowed_at_worst = diff, allowed
    return DeployCheck(fmt, path, worst, allowed_at_worst, seconds, ["x".join(map(str, s)) for s in shapes])


__all__ = ["CHECK_BATCH", "FILES", "FORMATS", "TOLERANCE", "WEIGHTS_FORMAT", "DeployCheck", "DeployError",
           "add_onnx_metadata", "check_formats", "export_model", "has_safetensors", "load_model", "load_weights",
           "missing_packages", "onnx_metadata", "save_weights"]
