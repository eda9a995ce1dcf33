"""The registry: each dataset name's facts and loader (pycls's `_models` style), read by
`describe_dataset` without loading anything and dispatched through by `load_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import fashion_mnist, synthetic
from ._types import Dataset, DatasetError, DatasetInfo
from .cifar import CIFAR_SPECS, load_cifar
from .fashion_mnist import load_fashion_mnist
from .imagefolder import IMAGEFOLDER, describe_imagefolder, folder_path, load_imagefolder
from .synthetic import load_synthetic


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    load: Callable[..., Dataset]  # called with the keywords data_dir, download, resolution, workers


_DATASETS: dict[str, _Entry] = {
    fashion_mnist.NAME: _Entry(fashion_mnist.INFO,
                               lambda data_dir, download, **_: load_fashion_mnist(data_dir, download)),
    "cifar10": _Entry(CIFAR_SPECS["cifar10"].info,
                      lambda data_dir, download, **_: load_cifar("cifar10", data_dir, download)),
    "cifar100": _Entry(CIFAR_SPECS["cifar100"].info,
                       lambda data_dir, download, **_: load_cifar("cifar100", data_dir, download)),
    synthetic.NAME: _Entry(synthetic.INFO, lambda **_: load_synthetic()),
}
DATASET_NAMES = tuple(_DATASETS)  # plus f"{IMAGEFOLDER}PATH"


def _unknown(name: str) -> DatasetError:
    return DatasetError(f"unknown dataset {name!r}; accepted: {', '.join(DATASET_NAMES)}, {IMAGEFOLDER}PATH")


def describe_dataset(name: str, resolution: int | None = None) -> DatasetInfo:
    """Channels, classes and native resolution of `name`, without loading it.

    An image folder's classes are its class folders; its resolution is `resolution` (the training
    resolution it will be decoded at) or 224. Raises DatasetError listing the accepted names.
    """
    if name in _DATASETS:
        return _DATASETS[name].info
    path = folder_path(name)
    if path is None:
        raise _unknown(name)
    return describe_imagefolder(path, resolution)


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True,
                 resolution: int | None = None, workers: int = 2) -> Dataset:
    """Load a dataset by name: fashion-mnist, cifar10, cifar100, synthetic or imagefolder:PATH.

    `workers` is the number of DataLoader processes that decode an image folder (in-memory datasets
    need none).
    """
    if name in _DATASETS:
        return _DATASETS[name].load(data_dir=data_dir, download=download, resolution=resolution, workers=workers)
    path = folder_path(name)
    if path is None:
        raise _unknown(name)
    return load_imagefolder(path, resolution, workers)
