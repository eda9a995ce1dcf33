"""Training one architecture: datasets, the training loop, checkpoints, and the Ray Tune trainable.

This root is the package's public API. Its names are loaded on first use (PEP 562 `__getattr__`), on
purpose: the modules behind them import torch (and the trainable, ray), which a command line should
pay for only when it trains, and which must not be imported before nas configures Ray's environment.
Each access reads the module's current attribute (nothing is cached here), so a test that patches
`trials.loop.train` patches what `trials.train` returns.

Modules:
    config.py      TrainConfig and its checks, the accepted devices, the CPU preset (no torch)
    datasets/      the datasets a trial trains on and their files (its docstring lists its modules)
    augment.py     batched on-device crops, flips and normalisation
    loop.py        train(): one trial's training loop (FractionalOOM, resolve_device)
    checkpoint.py  checkpoint.pt, written atomically and read with weights_only=True
    trainable.py   train_trial: the Ray Tune function trainable (cheap to import), trial_device
    labels.py      the process title that names a Ray worker's trial
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for editors and type checkers; at run time __getattr__ imports each on first use
    from .checkpoint import CheckpointError, NotWritableError, check_writable_dir, load_checkpoint, save_checkpoint
    from .config import TrainConfig, TrainConfigError, check_device, cpu_defaults, default_val_size
    from .datasets import (
        DATA_DIR_ENV_VAR,
        DATASET_NAMES,
        IMAGEFOLDER,
        Dataset,
        DatasetError,
        DatasetInfo,
        dataset_arrays,
        dataset_from_arrays,
        describe_dataset,
        load_dataset,
    )
    from .labels import label_process, process_title
    from .loop import FractionalOOM, resolve_device, train
    from .trainable import train_trial, trial_device

_MODULES = {  # module -> the public names it defines, each exported here under its own name
    "checkpoint": ("CheckpointError", "NotWritableError", "check_writable_dir", "load_checkpoint", "save_checkpoint"),
    "config": ("TrainConfig", "TrainConfigError", "check_device", "cpu_defaults", "default_val_size"),
    "datasets": ("DATA_DIR_ENV_VAR", "DATASET_NAMES", "IMAGEFOLDER", "Dataset", "DatasetError", "DatasetInfo",
                 "dataset_arrays", "dataset_from_arrays", "describe_dataset", "load_dataset"),
    "labels": ("label_process", "process_title"),
    "loop": ("FractionalOOM", "resolve_device", "train"),
    "trainable": ("train_trial", "trial_device"),
}
_HOMES = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [  # the same names (tests/trials/test_loop.py checks that the three lists agree)
    "DATASET_NAMES", "DATA_DIR_ENV_VAR", "IMAGEFOLDER", "CheckpointError", "Dataset", "DatasetError", "DatasetInfo",
    "FractionalOOM", "NotWritableError", "TrainConfig", "TrainConfigError", "check_device", "check_writable_dir",
    "cpu_defaults", "dataset_arrays", "dataset_from_arrays", "default_val_size", "describe_dataset",
    "label_process", "load_checkpoint", "load_dataset", "process_title", "resolve_device", "save_checkpoint",
    "train", "train_trial", "trial_device",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trials' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
