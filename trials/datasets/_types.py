"""What every loader returns: Dataset (with its splits and Augmentation), DatasetInfo, DatasetError."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .imagefolder import FolderSplit


class DatasetError(ValueError):
    """Missing, corrupt or unknown data; the message says where we looked and what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a search needs to know about a dataset before loading it."""

    channels: int
    classes: int
    resolution: int  # native (square) image size
    # What a deployed model needs (nas.export writes them into the ONNX file): the normalisation the
    # trials applied, x = (pixel / 255 - mean) / std per channel, and the classes' names where known.
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Augmentation:
    """What the on-device augmentation does for a dataset (see trials.augment)."""

    pad: int = 0  # random crop of the original size from the zero-padded image; 0 = none
    flip: bool = False  # random horizontal flip
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)


@dataclass
class TensorSplit:
    """A split held as tensors: images uint8 (N, C, H, W), labels int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.images[index], self.labels[index])

    def to(self, device: torch.device | str) -> TensorSplit:
        return TensorSplit(self.images.to(device), self.labels.to(device))

    def batches(self, batch_size: int, order: torch.Tensor | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (uint8 images, labels) on the split's device, in `order` (CPU index tensor) if given."""
        n = len(self)
        if order is not None:
            order = order.to(self.labels.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            if order is None:
                yield self.images[start:start + batch_size], self.labels[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield self.images.index_select(0, idx), self.labels.index_select(0, idx)


@dataclass
class Dataset:
    name: str
    train: TensorSplit | FolderSplit
    test: TensorSplit | FolderSplit
    num_classes: int
    in_channels: int
    resolution: int  # native (square) image size
    augmentation: Augmentation
    classes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): unreadable images left out
    ignored: int = 0  # files that are not images (hidden ones, other suffixes) left out

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, TensorSplit)


def split_train_val(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (seeded) disjoint train/validation indices of a training set of size n."""
    if not 0 < val_size < n:
        raise DatasetError(f"val_size must be between 1 and {n - 1} for a training set of {n} images, "
                           f"got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:], perm[:val_size]
