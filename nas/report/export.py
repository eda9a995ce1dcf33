"""Export a search's best architectures, ready to reuse (the layout of OUT is in nas/export.py).

Trials are ranked as in the report: completed trials by best validation accuracy, then trials with
an accuracy from fewer epochs (stopped by ASHA, or still running in a partial run). torch is imported
inside `_export_weights` on purpose: ranking and writing JSON need none.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from search_spaces import Architecture, build_model, save_architecture, with_io

from .run_data import RunData, RunDataError, load_run, safe_name
from .schema import EXPORT, json_value

DEFAULT_TOP = 5
METRICS = ("outcome", "accuracy", "val_accuracy", "best_val_accuracy", "val_loss", "train_loss", "epochs",
           "flops", "flops_train", "params", "images_per_second", "seconds", "seed", "lr", "batch_size")
_RANK_DIR = re.compile(r"rank\d+_.+")


def export_top(run_dir: str | Path, top: int = DEFAULT_TOP, out: str | Path | None = None) -> list[Path]:
    """Export the `top` best architectures of RUN_DIR to OUT; return their arch.json paths, best first.

    Raises `RunDataError` naming `run_dir` (not a run directory, or no trial has an accuracy yet),
    `top` (< 1) or `out` (not writable).
    """
    if top < 1:
        raise RunDataError("top", "expected a positive integer, got {top}", top=top)
    run = load_run(run_dir)
    ranked = run.ranked()
    if ranked.empty:
        raise RunDataError("run_dir", "{path}: no trial has reported an accuracy yet; nothing to export",
                           path=run.run_dir)
    out = Path(out) if out is not None else run.run_dir / EXPORT
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDataError("out", "cannot write to {path} ({why})", path=out, why=exc.strerror or exc) from None
    _remove_previous(out)
    paths, index = [], []
    for rank, (_, row) in enumerate(ranked.head(top).iterrows(), start=1):
        folder = out / f"rank{rank:02d}_{safe_name(row['trial_id'])}"
        folder.mkdir()
        arch_path = save_architecture(row["architecture"], folder / "arch.json")
        metrics = _metrics(run, row, rank)
        weights = None
        if rank == 1:
            weights, note = _export_weights(run, row, folder / "weights.pt")
            metrics["weights"] = weights.name if weights else None
            metrics["weights_note"] = note
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        paths.append(arch_path)
        index.append({
            "rank": rank, "trial_id": row["trial_id"], "name": row["name"], "outcome": row["outcome"],
            "accuracy": json_value(row["accuracy"]), "flops": json_value(row["flops"]),
            "params": json_value(row["params"]), "arch": str(arch_path.relative_to(out)),
            "metrics": str((folder / "metrics.json").relative_to(out)),
            "weights": str(weights.relative_to(out)) if weights else None,
        })
    (out / "index.json").write_text(json.dumps({
        "run_dir": str(run.run_dir.resolve()), "exported": _now(), "search": run.search,
        "ranking": "completed trials by best validation accuracy, then trials measured after fewer epochs",
        "architectures": index,
    }, indent=2, default=str) + "\n")
    return paths


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
        "run_dir": str(run.run_dir.resolve()),
        "checkpoint": row["checkpoint"] or None,
    }


def _checkpoint_file(run: RunData, location: str) -> Path | None:
    if not location:
        return None
    path = Path(location)
    if not path.is_absolute():
        path = run.run_dir / path
    if path.is_dir():
        path = path / "checkpoint.pt"
    return path if path.is_file() else None


def _export_weights(run: RunData, row, dest: Path) -> tuple[Path | None, str]:
    """Extract the state_dict from the trial's checkpoint.pt (read with weights_only=True), check that it
    loads into the architecture's model with strict=True, and save it alone to `dest`."""
    path = _checkpoint_file(run, row["checkpoint"])
    if path is None:
        why = "no checkpoint recorded" if not row["checkpoint"] else f"checkpoint not found: {row['checkpoint']}"
        return None, why
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: report it, export the rest
        return None, f"unreadable checkpoint {path}: {str(exc).splitlines()[0]}"
    model_state = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model_state, dict):
        return None, f"{path} has no 'model' state_dict"
    model_state = {_strip_prefix(k): v for k, v in model_state.items()}
    # Trials adapt the stem's input channels and the classifier to their dataset (trials.loop); the
    # checkpoint records the architecture it trained, which must be the searched one's body.
    trained = row["architecture"]
    if isinstance(state.get("arch"), dict):
        try:
            trained = Architecture.from_dict(state["arch"])
        except ValueError as exc:
            return None, f"{path} records an invalid architecture ({exc})"
        if with_io(trained, in_channels=row["architecture"].in_channels,
                   num_classes=row["architecture"].num_classes) != row["architecture"]:
            return None, f"{path} holds another architecture than {row['name']}"
    try:
        build_model(trained).load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        return None, f"weights in {path} do not fit {row['name']}: {str(exc).splitlines()[0]}"
    torch.save(model_state, dest)
    save_architecture(trained, dest.parent / "trained_arch.json")
    return dest, f"state_dict from {path}; it fits trained_arch.json ({trained.in_channels} input channels, " \
                 f"{trained.num_classes} classes)"


def _strip_prefix(key: str) -> str:
    # DistributedDataParallel and torch.compile wrap the model; the exported weights fit the bare one.
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


__all__ = ["DEFAULT_TOP", "export_top"]
