"""An in-memory Dataset as plain numpy arrays and back: what the driver ships to trials via Ray's object store."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import torch

from ._types import Augmentation, Dataset, DatasetError, TensorSplit


def dataset_arrays(ds: Dataset) -> dict[str, Any]:
    """An in-memory Dataset as plain values (uint8/int64 numpy arrays), for Ray's object store: numpy
    arrays are stored once per node and read without a copy (torch tensors would be pickled)."""
    if not ds.in_memory:
        raise DatasetError(f"{ds.name}: only in-memory datasets can be shipped as arrays")
    return {"name": ds.name, "num_classes": ds.num_classes, "in_channels": ds.in_channels,
            "resolution": ds.resolution, "augmentation": dataclasses.asdict(ds.augmentation),
            "classes": list(ds.classes),
            **{f"{split}_{part}": getattr(getattr(ds, split), part).numpy()
               for split in ("train", "test") for part in ("images", "labels")}}


def dataset_from_arrays(payload: dict[str, Any]) -> Dataset:
    """The Dataset that dataset_arrays() shipped (sharing the arrays' memory: splits are only indexed)."""

    def tensor(key: str) -> torch.Tensor:
        with warnings.catch_warnings():  # the object store's arrays are read-only; nothing writes to them
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(payload[key])

    aug = payload["augmentation"]
    return Dataset(payload["name"], TensorSplit(tensor("train_images"), tensor("train_labels")),
                   TensorSplit(tensor("test_images"), tensor("test_labels")), payload["num_classes"],
                   payload["in_channels"], payload["resolution"],
                   Augmentation(aug["pad"], aug["flip"], tuple(aug["mean"]), tuple(aug["std"])),
                   list(payload["classes"]))
