"""`python -m nas.export RUN_DIR [--top K] [--out DIR]`: the search's best architectures, ready to reuse.

Layout of OUT (default RUN_DIR/export):

    OUT/index.json                  the ranking: one entry per exported architecture, with its files
    OUT/rank01_<trial_id>/arch.json the architecture, plain resnext-arch/1 (nas.load_architecture reads it)
    OUT/rank01_<trial_id>/metrics.json  what the search measured for it, and where it came from
    OUT/rank01_<trial_id>/weights.pt    the best trial's trained weights (a state_dict), when it has a
                                        checkpoint: model.load_state_dict(torch.load(p, weights_only=True))
    OUT/rank01_<trial_id>/trained_arch.json  the architecture those weights fit: arch.json with the
                                        stem's input channels and the classifier of the dataset it
                                        trained on (arch.json keeps the space's nominal ends, which
                                        is what its FLOPs budget was measured on)

Trials are ranked as in the report: completed trials by best validation accuracy, then trials with
an accuracy from fewer epochs (stopped by ASHA, or still running in a partial run).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from search_spaces import Architecture, save_architecture, with_io

from .cli import Parser, UsageError, positive_int, run_main
from .run_data import RunData, load_run, safe_name

DEFAULT_TOP = 5
METRICS = ("outcome", "accuracy", "val_accuracy", "best_val_accuracy", "val_loss", "train_loss", "epochs",
           "flops", "flops_train", "params", "images_per_second", "seconds", "seed", "lr", "batch_size")
_RANK_DIR = re.compile(r"rank\d+_.+")


def export_top(run_dir: str | Path, top: int = DEFAULT_TOP, out: str | Path | None = None) -> list[Path]:
    """Export the `top` best architectures of RUN_DIR to OUT; return their arch.json paths, best first.

    Raises a UsageError (one line, exit 2 from the command line) for a bad run directory or `top` < 1,
    or when no trial has an accuracy yet.
    """
    if top < 1:
        raise UsageError(f"--top: expected a positive integer, got {top}")
    run = load_run(run_dir)
    ranked = run.ranked()
    if ranked.empty:
        raise UsageError(f"{run.run_dir}: no trial has reported an accuracy yet; nothing to export")
    out = Path(out) if out is not None else run.run_dir / "export"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot write to {out} ({exc.strerror or exc})") from None
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
            "accuracy": _json_value(row["accuracy"]), "flops": _json_value(row["flops"]),
            "params": _json_value(row["params"]), "arch": str(arch_path.relative_to(out)),
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


def _json_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if hasattr(v, "item"):
        return _json_value(v.item())
    return v


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _metrics(run: RunData, row, rank: int) -> dict[str, Any]:
    s = run.search
    return {
        "rank": rank,
        "trial_id": row["trial_id"],
        "name": row["name"],
        **{k: _json_value(row[k]) for k in METRICS},
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

    from search_spaces import build_model

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


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.export", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(
                        __doc__.splitlines()[2:]))
    parser.add_argument("run_dir", type=Path, help="the search's run directory (contains trials.csv)")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"how many architectures to export (default {DEFAULT_TOP})")
    parser.add_argument("--out", type=Path, default=None, help="where to write them (default RUN_DIR/export)")
    args = parser.parse_args(argv)
    paths = export_top(args.run_dir, args.top, args.out)
    out = paths[0].parent.parent
    for p in paths:
        metrics = json.loads((p.parent / "metrics.json").read_text())
        acc = metrics.get("accuracy")
        acc_text = f"{acc * 100:.2f}%" if isinstance(acc, int | float) else "n/a"
        weights = f", weights {p.parent / metrics['weights']}" if metrics.get("weights") else ""
        print(f"#{metrics['rank']} {metrics['name']} ({metrics['outcome']}, {acc_text}): {p}{weights}")
    best = json.loads((paths[0].parent / "metrics.json").read_text())
    if not best.get("weights"):
        print(f"note: no weights exported for the best trial ({best.get('weights_note')})", file=sys.stderr)
    print(f"index: {out / 'index.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))


__all__ = ["export_top", "main"]
