"""Per-epoch checkpoints of a trial: one `checkpoint.pt`, written atomically, read with weights_only=True.

The file holds only tensors and plain Python containers (dicts, lists, str, int, float, bool, None),
so `torch.load(path, weights_only=True)` can read it: a checkpoint from an untrusted or half-written
location cannot execute code when loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FILENAME = "checkpoint.pt"
REQUIRED_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not one of ours."""


class NotWritableError(ValueError):
    """An output location that cannot be written; the message starts with the setting's name."""


def check_writable_dir(path: str | Path, setting: str) -> Path:
    """Refuse, before any work, an output directory that cannot be created or written.

    Creates nothing: the nearest existing ancestor must be a directory we may write into (so that
    `path` and its parents can be made later). Returns the expanded path. The commands turn the
    error into `--flag: ...` (the setting's name is the message's first word).
    """
    target = Path(path).expanduser()
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise NotWritableError(f"{setting}: cannot write to {path} ({probe} is not a writable directory)")
    return target


def checkpoint_path(location: str | Path) -> Path:
    """`location` may be the checkpoint file itself or the directory that holds checkpoint.pt."""
    path = Path(location)
    return path / FILENAME if path.is_dir() or path.suffix != ".pt" else path


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` to directory/checkpoint.pt; a crash mid-write leaves the previous file intact."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint state lacks {', '.join(missing)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILENAME
    tmp = directory / (FILENAME + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half of one
    return path


def load_checkpoint(location: str | Path) -> dict[str, Any]:
    """Read a checkpoint (a directory holding checkpoint.pt, or the file) on the CPU, weights only."""
    path = checkpoint_path(location)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, disallowed globals: all mean "not usable"
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a trial checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    return state


__all__ = ["FILENAME", "CheckpointError", "NotWritableError", "check_writable_dir", "checkpoint_path",
           "load_checkpoint", "save_checkpoint"]
