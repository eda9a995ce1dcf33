"""Training one architecture: datasets, the training loop, checkpoints, and the Ray Tune trainable.

This root is the package's public API. Its names are loaded on first use (PEP 562 `__getattr__`), on
purpose: the modules behind them import torch (and the trainable, ray), which a command line should
pay for only when it trains, and which must not be imported before nas configures Ray's environment.
Each access reads the module's current attribute (nothing is cached here), so a test that patches
`trials.loop.train` patches what `trials.train` returns.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "TrainConfig": "loop", "TrainConfigError": "loop", "train": "loop", "resolve_device": "loop",
    "cpu_defaults": "loop",
    "DATASET_NAMES": "datasets", "Dataset": "datasets", "DatasetError": "datasets", "load_dataset": "datasets",
    "describe_dataset": "datasets", "DatasetInfo": "datasets", "FractionalOOM": "loop", "check_device": "loop",
    "default_val_size": "loop", "check_writable_dir": "checkpoint", "NotWritableError": "checkpoint",
    "trial_device": "trainable",
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "train_trial": "trainable",
}
_RENAMED = {"DATASET_NAMES": "NAMES", "describe_dataset": "describe"}  # the name in its module

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trials' has no attribute {name!r}")
    module = importlib.import_module(f".{_HOMES[name]}", __name__)
    return getattr(module, _RENAMED.get(name, name))


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
