"""Export a search's best architectures, ready to reuse (the layout of OUT is in nas/export.py).

Trials are ranked as everywhere (schema.rank_key: completed trials first, then best validation accuracy,
epochs, FLOPs), the ranking that decides which checkpoints a search keeps. torch is imported
inside `_export_weights` on purpose: ranking and writing JSON need none.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from search_spaces import Architecture, build_model, save_architecture, smallest_resolution, with_io

from ..rundir.location import RunLocation
from ..rundir.schema import COST_COLUMNS, EXPORT, json_value
from .deploy import EXPORT_EXTRA, DeployError, check_formats, export_model, has_safetensors, save_weights
from .run_data import RunData, RunDataError, load_run, run_location, safe_name

DEFAULT_TOP = 5
NOMINAL_ARCH = "arch_nominal.json"  # the architecture as searched (the space's channels and classes)
ONNX_METADATA_FORMAT = "resnext-onnx/1"
PREPROCESSING = "x = (pixel / 255 - mean) / std per channel, pixels in 0..255"
# The weights are the trial's last checkpoint (its final epoch): `val_accuracy` describes them; `accuracy`
# (best_val_accuracy, at any epoch) is what the trial was ranked by.
METRICS = ("outcome", "accuracy", "val_accuracy", "best_val_accuracy", "val_loss", "train_loss", "epochs",
           *COST_COLUMNS, "images_per_second", "seconds", "seed", "lr", "batch_size")
_RANK_DIR = re.compile(r"rank\d+_.+")


@dataclass
class Exported:
    out: str  # OUT for people: a local path, or a URI without its query
    entries: list[dict[str, Any]]  # index.json's architectures, each with its `metrics`
    paths: list[Path | str]  # each arch.json: a local Path, or OUT/REL on an object store


def export_top(run_dir: str | Path | RunLocation, top: int = DEFAULT_TOP,
               out: str | Path | None = None, formats: Sequence[str] = ()) -> list[Path | str]:
    """Export the `top` best architectures of RUN_DIR to OUT; return their arch.json paths, best first.

    RUN_DIR and OUT may be local paths or object-store URIs (OUT defaults to RUN_DIR/export).
    Raises `RunDataError` naming `run_dir` (not a run directory, or no trial has an accuracy yet),
    `top` (< 1) or `out` (not writable); `DeployError` naming `format` (an unknown format, its packages
    missing, a failed export, or a model file whose outputs differ from the PyTorch model's).
    """
    return export_run(run_dir, top, out, formats).paths


def export_run(run_dir: str | Path | RunLocation, top: int = DEFAULT_TOP,
               out: str | Path | None = None, formats: Sequence[str] = ()) -> Exported:
    """export_top, also returning what was exported (for the command's summary)."""
    if top < 1:
        raise RunDataError("top", "expected a positive integer, got {top}", top=top)
    formats = list(dict.fromkeys(formats))
    check_formats(formats)  # unknown or not installed: refused before anything is written
    run = load_run(run_dir)
    ranked = run.ranked()
    if ranked.empty:
        raise RunDataError("run_dir", "{path}: no trial has reported an accuracy yet; nothing to export",
                           path=run.where)
    if out is None:
        target, rel = run.location, EXPORT
    else:
        try:
            target, rel = run_location(out), ""
        except RunDataError as exc:
            raise RunDataError("out", "{why}", why=exc.message.format_map(exc.values)) from None
    shown = f"{target.display}/{rel}" if rel else target.display
    if target.is_local:
        folder = Path(target.path(rel))
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDataError("out", "cannot write to {path} ({why})", path=folder,
                               why=exc.strerror or exc) from None
        _remove_previous(folder)
    else:
        try:
            for name in target.list(rel):
                if _RANK_DIR.fullmatch(name):
                    target.delete(f"{rel}/{name}" if rel else name)
        except OSError as exc:
            raise RunDataError("out", "cannot write to {path} ({why})", path=shown,
                               why=str(exc).splitlines()[0]) from None
    with target.staged(rel) as staging:  # OUT itself when local; uploaded on exit otherwise
        try:
            entries = _write_export(run, ranked.head(top), staging, formats)
        except DeployError:
            _remove_previous(staging)  # a failed check leaves no half-written export behind
            (staging / "index.json").unlink(missing_ok=True)
            raise
    paths: list[Path | str] = [staging / e["arch"] if target.is_local else f"{shown}/{e['arch']}"
                               for e in entries]
    return Exported(shown, entries, paths)


def _write_export(run: RunData, ranked, out: Path, formats: Sequence[str] = ()) -> list[dict[str, Any]]:
    index = []
    for rank, (_, row) in enumerate(ranked.iterrows(), start=1):
        folder = out / f"rank{rank:02d}_{safe_name(row['trial_id'])}"
        folder.mkdir()
        nominal = row["architecture"]
        save_architecture(nominal, folder / NOMINAL_ARCH)
        metrics = _metrics(run, row, rank)
        # Every exported rank whose trial kept a checkpoint (a search keeps its best --keep-checkpoints).
        weights, note, model, trained = _export_weights(run, row, folder)
        # arch.json is the architecture as trained: the one the weights fit (the checkpoint's), else the
        # nominal one with the dataset's channels and classes, which is what nas.train would build.
        info = dataset_info(run)
        if trained is None and info is not None:
            trained = with_io(nominal, in_channels=info.channels, num_classes=info.classes)
        arch_path = save_architecture(trained or nominal, folder / "arch.json")
        metrics["weights"] = weights.name if weights else None
        metrics["weights_note"] = note
        metrics["input"] = input_spec(run, info, trained or nominal)
        models = {}
        if model is not None:
            shape = (trained.in_channels, *(2 * [_input_resolution(run)]))
            meta = onnx_metadata_of(trained, metrics["input"])
            for fmt in formats:
                check = export_model(model, fmt, folder, shape, metadata=meta if fmt == "onnx" else None,
                                     min_side=smallest_resolution(trained, 1))
                dims = ["batch", trained.in_channels, "height", "width"] if fmt == "onnx" else ["batch", *shape]
                models[fmt] = {**check.to_dict(), "input_shape": dims,
                               **({"metadata": sorted(meta)} if fmt == "onnx" else {})}
        if formats:
            metrics["models"] = models
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        index.append({
            "rank": rank, "trial_id": row["trial_id"], "name": row["name"], "outcome": row["outcome"],
            "accuracy": json_value(row["accuracy"]),
            **{c: json_value(row[c]) for c in ("flops_nominal", "params_nominal")},
            "arch": str(arch_path.relative_to(out)),
            "metrics": str((folder / "metrics.json").relative_to(out)),
            "weights": str(weights.relative_to(out)) if weights else None,
            **({"models": {f: f"{folder.name}/{m['file']}" for f, m in models.items()}} if formats else {}),
        })
    (out / "index.json").write_text(json.dumps({
        "run_dir": run.where, "exported": _now(), "search": run.search,
        "ranking": "completed trials first, then best validation accuracy, epochs, fewer FLOPs",
        "weights": "the trial's last checkpoint: metrics val_accuracy describes them, accuracy ranked the trial",
        "architectures": index,
    }, indent=2, default=str) + "\n")
    for entry in index:
        entry["metrics_data"] = json.loads((out / entry["metrics"]).read_text())
    return index


def dataset_info(run: RunData):
    """The run's dataset's facts (channels, classes, normalisation, class names), or None when unknown."""
    from trials import describe_dataset

    name = run.search.get("dataset")
    if not name:
        return None
    try:
        return describe_dataset(name, run.search.get("train_resolution"))
    except (ValueError, OSError):  # an image folder that has moved, a dataset this version does not know
        return None


def input_spec(run: RunData, info, arch: Architecture) -> dict[str, Any]:
    """What the exported model expects as input (metrics.json's `input`, the ONNX file's metadata)."""
    return {
        "layout": f"float32 NCHW, {arch.in_channels} channel(s)",
        "normalisation": PREPROCESSING,
        "mean": list(info.mean) if info and info.mean else None,
        "std": list(info.std) if info and info.std else None,
        "class_names": list(info.class_names) if info and info.class_names else None,
        "train_resolution": _input_resolution(run),
        "dataset": run.search.get("dataset"),
    }


def onnx_metadata_of(trained: Architecture, spec: dict[str, Any]) -> dict[str, str]:
    """The ONNX file's metadata_props: strings, JSON where structured."""
    meta = {"format": ONNX_METADATA_FORMAT, "architecture": trained.to_json(),
            "preprocessing": spec["normalisation"], "train_resolution": str(spec["train_resolution"]),
            "dataset": str(spec["dataset"] or "")}
    for key in ("mean", "std", "class_names"):
        if spec[key] is not None:
            meta[key] = json.dumps(spec[key])
    return meta


def _remove_previous(out: Path) -> None:
    """Drop the rank folders of an earlier export (a re-export with another --top must not leave stale
    ranks); nothing else in OUT is touched."""
    for child in out.iterdir():
        if child.is_dir() and _RANK_DIR.fullmatch(child.name) and (child / "arch.json").exists():
            shutil.rmtree(child)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _metrics(run: RunData, row, rank: int) -> dict[str, Any]:
    s = run.search
    return {
        "rank": rank,
        "trial_id": row["trial_id"],
        "name": row["name"],
        **{k: json_value(row[k]) for k in METRICS},
        "budget_flops": s.get("budget_flops"),
        "budget_resolution": s.get("budget_resolution"),
        "train_resolution": s.get("train_resolution"),
        "dataset": s.get("dataset"),
        "space": s.get("space"),
        "max_epochs": s.get("max_epochs"),
        "run_dir": run.where,
        "checkpoint": row["checkpoint"] or None,
    }


def _checkpoint_file(run: RunData, location: str, scratch: Path) -> Path | None:
    """The trial's checkpoint.pt as a local file: in place for a local run, else downloaded to SCRATCH."""
    if not location:
        return None
    loc = run.location
    if loc.is_local:
        path = Path(location)
        if not path.is_absolute():
            path = Path(loc.root) / path
        if path.is_dir():
            path = path / "checkpoint.pt"
        return path if path.is_file() else None
    rel = loc.relative(location) or location  # trials.csv keeps it relative to RUN_DIR
    for candidate in (rel, f"{rel.rstrip('/')}/checkpoint.pt"):
        if loc.is_file(candidate):
            return loc.download(candidate, scratch / "checkpoint.pt")
    return None


def _input_resolution(run: RunData) -> int:
    """The resolution the trials trained at (what the exported model file is checked on)."""
    s = run.search
    return int(s.get("train_resolution") or s.get("budget_resolution") or 32)


def _export_weights(run: RunData, row, folder: Path):
    """Extract the state_dict from the trial's checkpoint.pt (read with weights_only=True), check that it
    loads into the architecture's model with strict=True, and save it alone in FOLDER: weights.safetensors
    with the architecture inside (the `export` extra), else weights.pt. Returns (path or None, note, the
    loaded model or None, the trained architecture or None)."""
    with tempfile.TemporaryDirectory(prefix="nas-export-") as scratch:
        path = _checkpoint_file(run, row["checkpoint"], Path(scratch))
        if path is None:
            why = ("no checkpoint recorded" if not row["checkpoint"] else
                   f"checkpoint not found: {row['checkpoint']} (a search keeps the checkpoints of its best "
                   "--keep-checkpoints finished trials only)")
            return None, why, None, None
        return _weights_from(path, row, folder, shown=path if run.location.is_local else
                             f"{run.where}/{run.location.relative(row['checkpoint']) or row['checkpoint']}")


def _weights_from(path: Path, row, folder: Path, shown):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: report it, export the rest
        return None, f"unreadable checkpoint {shown}: {str(exc).splitlines()[0]}", None, None
    model_state = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model_state, dict):
        return None, f"{shown} has no 'model' state_dict", None, None
    model_state = {_strip_prefix(k): v for k, v in model_state.items()}
    # Trials adapt the stem's input channels and the classifier to their dataset (trials.loop); the
    # checkpoint records the architecture it trained, which must be the searched one's body.
    trained = row["architecture"]
    if isinstance(state.get("arch"), dict):
        try:
            trained = Architecture.from_dict(state["arch"])
        except ValueError as exc:
            return None, f"{shown} records an invalid architecture ({exc})", None, None
        if with_io(trained, in_channels=row["architecture"].in_channels,
                   num_classes=row["architecture"].num_classes) != row["architecture"]:
            return None, f"{shown} holds another architecture than {row['name']}", None, None
    model = build_model(trained)
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        return None, f"weights in {shown} do not fit {row['name']}: {str(exc).splitlines()[0]}", None, None
    if has_safetensors():
        dest = save_weights(model_state, trained, folder / "weights.safetensors")
        inside = "safetensors with arch.json in its metadata (nas.report.deploy.load_model reads it)"
    else:
        dest = folder / "weights.pt"
        torch.save(model_state, dest)
        inside = f"a torch state_dict ({EXPORT_EXTRA} for safetensors)"
    return dest, f"state_dict from {shown}, as {inside}; it fits arch.json ({trained.in_channels} input " \
                 f"channels, {trained.num_classes} classes; the searched one is {NOMINAL_ARCH})", model.eval(), trained


def _strip_prefix(key: str) -> str:
    # DistributedDataParallel and torch.compile wrap the model; the exported weights fit the bare one.
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


__all__ = ["DEFAULT_TOP", "Exported", "export_run", "export_top"]
