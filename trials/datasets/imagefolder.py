"""`imagefolder:PATH`: a class-per-folder tree of image files, decoded in DataLoader worker processes.

Decoding JPEGs at a larger resolution belongs in workers, so unlike the in-memory datasets an image
folder is listed (path, label) and decoded batch by batch; crops and flips still happen on the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._types import Augmentation, Dataset, DatasetError, DatasetInfo

IMAGEFOLDER = "imagefolder:"  # the dataset name's prefix: imagefolder:PATH
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEFAULT_RESOLUTION = 224  # images are resized to this unless a training resolution is given
CHANNELS = 3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def folder_path(name: str) -> str | None:
    """PATH of "imagefolder:PATH", or None for any other name."""
    if name.startswith(IMAGEFOLDER) and len(name) > len(IMAGEFOLDER):
        return name[len(IMAGEFOLDER):]
    return None


@dataclass
class FolderSplit:
    """Image files listed as (path, label); decoded to uint8 tensors in DataLoader workers."""

    samples: list[tuple[str, int]]
    resolution: int
    channels: int = CHANNELS
    workers: int = 2

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, index: torch.Tensor) -> FolderSplit:
        return FolderSplit([self.samples[i] for i in index.tolist()], self.resolution, self.channels,
                           self.workers)

    def to(self, device: torch.device | str) -> FolderSplit:
        return self  # batches move to the device as they are produced

    def batches(self, batch_size: int, order: torch.Tensor | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(
            _FolderDataset(self.samples, self.resolution, self.channels),
            batch_size=batch_size,
            sampler=None if order is None else order.tolist(),
            drop_last=drop_last,
            num_workers=self.workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )
        yield from loader


class _FolderDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[tuple[str, int]], resolution: int, channels: int) -> None:
        self.samples, self.resolution, self.channels = samples, resolution, channels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image  # Pillow is needed only for image folders

        path, label = self.samples[i]
        with Image.open(path) as img:
            img = img.convert("RGB" if self.channels == 3 else "L")
            # Resize the shorter side, then centre-crop to a square: random crops and flips happen
            # later, batched on the device, like for the in-memory datasets.
            w, h = img.size
            scale = self.resolution / min(w, h)
            img = img.resize((max(self.resolution, round(w * scale)), max(self.resolution, round(h * scale))),
                             Image.BILINEAR)
            w, h = img.size
            left, top = (w - self.resolution) // 2, (h - self.resolution) // 2
            img = img.crop((left, top, left + self.resolution, top + self.resolution))
            arr = np.asarray(img, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(arr.copy()).permute(2, 0, 1), label


def _scan(root: Path, classes: list[str]) -> list[tuple[str, int]]:
    samples = []
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                samples.append((str(p), label))
    return samples


def _layout(path: str | Path) -> tuple[Path, Path, Path | None, list[str]]:
    """(root, train root, test dir or None, class names) of an image folder, without reading images."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{IMAGEFOLDER} {root} is not a directory (expected one sub-directory per class)")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        train_root = root / "train"
    else:
        train_root, test_dir = root, None
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"{IMAGEFOLDER} {root} needs at least two class sub-directories holding images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))}), as PATH/<class>/<image> or "
                           "PATH/train/<class>/<image> with PATH/val or PATH/test")
    return root, train_root, test_dir, classes


def describe_imagefolder(path: str | Path, resolution: int | None = None) -> DatasetInfo:
    """An image folder's facts without reading an image: its classes are its class folders; its
    resolution is `resolution` (the training resolution it will be decoded at) or 224."""
    _, _, _, classes = _layout(path)
    return DatasetInfo(CHANNELS, len(classes), resolution or DEFAULT_RESOLUTION, IMAGENET_MEAN, IMAGENET_STD,
                       tuple(classes))


def load_imagefolder(path: str | Path, resolution: int | None = None, workers: int = 2) -> Dataset:
    """A class-per-folder tree. `PATH/train` + `PATH/test` (or `val`) if present; otherwise the classes
    are PATH's subdirectories and a fixed 10% of each class (independent of the trial seed) is the test set.
    """
    root, train_root, test_dir, classes = _layout(path)
    res = resolution or DEFAULT_RESOLUTION
    if test_dir is not None:
        train_s, test_s = _scan(train_root, classes), _scan(test_dir, classes)
    else:
        samples = _scan(root, classes)
        train_s, test_s = [], []
        for label in range(len(classes)):
            of_class = [s for s in samples if s[1] == label]
            n_test = len(of_class) // 10
            test_s += of_class[:n_test]
            train_s += of_class[n_test:]
    if not train_s:
        raise DatasetError(f"{IMAGEFOLDER} {root}'s class sub-directories hold no images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    train = FolderSplit(train_s, res, CHANNELS, workers)
    test = FolderSplit(test_s, res, CHANNELS, workers)
    aug = Augmentation(pad=max(1, res // 8), flip=True, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return Dataset(f"{IMAGEFOLDER}{root}", train, test, len(classes), CHANNELS, res, aug, classes)
