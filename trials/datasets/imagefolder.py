"""`imagefolder:PATH`: a class-per-folder tree of image files.

A folder is listed once (hidden files and folders and files that are not images are ignored; a class
folder without images is refused, naming it), decoded once at the training resolution into uint8
arrays (trials.datasets.image_decode: any Pillow mode, EXIF orientation, a content-keyed cache) and
then held in memory like Fashion-MNIST, so the driver can ship it to every trial. Unreadable (corrupt)
images are skipped and counted (`Dataset.skipped`). Only a folder whose decoded arrays would exceed
IN_MEMORY_LIMIT stays on disk, decoded batch by batch in DataLoader workers (FolderSplit).

Without a resolution, images are decoded at their own size: the median shorter side of up to
SIZE_SAMPLE of them, read from their headers.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._types import Augmentation, Dataset, DatasetError, DatasetInfo, TensorSplit
from .image_decode import cached_decode, decode_image, image_side

IMAGEFOLDER = "imagefolder:"  # the dataset name's prefix: imagefolder:PATH
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CHANNELS = 3  # every image is decoded as RGB (grey, palette, RGBA and 16-bit ones included)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIZE_SAMPLE = 256  # image headers read to find a folder's own image size (about 20 ms)
# Decoded folders above this many bytes stay on disk (batches decoded by DataLoader workers): 4 GiB is
# ~28,000 images at 224x224, or 1.4 million at 32x32.
IN_MEMORY_LIMIT = 4 << 30


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
            _FolderDataset(self.samples, self.resolution),
            batch_size=batch_size,
            sampler=None if order is None else order.tolist(),
            drop_last=drop_last,
            num_workers=self.workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )
        yield from loader


class _FolderDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[tuple[str, int]], resolution: int) -> None:
        self.samples, self.resolution = samples, resolution

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return torch.from_numpy(decode_image(path, self.resolution)), label


@dataclass(frozen=True)
class FolderListing:
    """An image folder's files, listed without reading an image."""

    root: Path
    classes: list[str]
    train: list[tuple[str, int]]
    test: list[tuple[str, int]]  # PATH/test (or val), else a fixed 10% of each class
    ignored: int = 0  # hidden files and files that are not images


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _scan(root: Path, classes: list[str]) -> tuple[list[tuple[str, int]], int]:
    """(path, label) of every image under root/<class>, and how many other files were ignored."""
    samples, ignored = [], 0
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).rglob("*")):
            if not p.is_file():
                continue
            if _hidden(p, root) or p.suffix.lower() not in IMAGE_SUFFIXES:
                ignored += 1
            else:
                samples.append((str(p), label))
    return samples, ignored


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
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DatasetError(f"{IMAGEFOLDER} {root} needs at least two class sub-directories holding images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))}), as PATH/<class>/<image> or "
                           "PATH/train/<class>/<image> with PATH/val or PATH/test")
    return root, train_root, test_dir, classes


def list_folder(path: str | Path) -> FolderListing:
    """A class-per-folder tree listed: `PATH/train` + `PATH/test` (or `val`) if present; otherwise the
    classes are PATH's subdirectories and a fixed 10% of each class (independent of the trial seed) is
    the test set. A training class folder without images is refused in one line naming it."""
    root, train_root, test_dir, classes = _layout(path)
    train_s, ignored = _scan(train_root, classes)
    empty = [cls for label, cls in enumerate(classes) if not any(s[1] == label for s in train_s)]
    if empty:
        raise DatasetError(f"{IMAGEFOLDER} class folder {train_root / empty[0]} holds no images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})"
                           + (f"; nor do {len(empty) - 1} other class folders" if len(empty) > 1 else "")
                           + "; remove it or add images")
    if test_dir is not None:
        test_s, ignored_test = _scan(test_dir, classes)
        return FolderListing(root, classes, train_s, test_s, ignored + ignored_test)
    train, test = [], []
    for label in range(len(classes)):
        of_class = [s for s in train_s if s[1] == label]
        n_test = len(of_class) // 10
        test += of_class[:n_test]
        train += of_class[n_test:]
    return FolderListing(root, classes, train, test, ignored)


def own_resolution(listing: FolderListing) -> int:
    """The folder's own image size: the median shorter side of up to SIZE_SAMPLE images spread over
    the listing (headers only)."""
    files = listing.train + listing.test
    step = max(1, len(files) // SIZE_SAMPLE)
    sides = [s for s in (image_side(p) for p, _ in files[::step][:SIZE_SAMPLE]) if s]
    if not sides:
        raise DatasetError(f"{IMAGEFOLDER} {listing.root}: none of its image files could be read")
    return int(statistics.median_low(sides))


@functools.lru_cache(maxsize=8)
def _facts(root: Path, modified_ns: tuple[int, ...]) -> tuple[int, int]:
    listing = list_folder(root)
    return len(listing.classes), own_resolution(listing)


def describe_imagefolder(path: str | Path, resolution: int | None = None) -> DatasetInfo:
    """An image folder's facts without decoding it: its classes are its class folders; its resolution
    is `resolution` (the training resolution it will be decoded at), else its images' own size.
    Remembered per folder (a search asks several times) until it or a class folder changes."""
    root, train_root, test_dir, classes = _layout(path)  # a missing or class-less folder: refused every time
    folders = [root, train_root, *(train_root / c for c in classes), *([test_dir] if test_dir else [])]
    _, own = _facts(root, tuple(f.stat().st_mtime_ns for f in folders))
    return DatasetInfo(CHANNELS, len(classes), resolution or own, IMAGENET_MEAN, IMAGENET_STD, tuple(classes))


def _decoded(listing: FolderListing, samples: list[tuple[str, int]], res: int
             ) -> tuple[TensorSplit, list[tuple[str, str]]]:
    images, ok, bad, _ = cached_decode(listing.root, [p for p, _ in samples], res)
    labels = torch.tensor([samples[i][1] for i in ok], dtype=torch.int64)
    return TensorSplit(torch.from_numpy(np.ascontiguousarray(images)), labels), bad


def load_imagefolder(path: str | Path, resolution: int | None = None, workers: int = 2,
                     in_memory_limit: int | None = None) -> Dataset:
    """The folder decoded once at `resolution` (default: its own size) and held in memory; unreadable
    images are skipped and listed in `Dataset.skipped`. Above `in_memory_limit` decoded bytes, it stays
    on disk and DataLoader workers decode each batch (`workers` processes; default limit IN_MEMORY_LIMIT)."""
    in_memory_limit = IN_MEMORY_LIMIT if in_memory_limit is None else in_memory_limit
    listing = list_folder(path)
    res = resolution or own_resolution(listing)
    aug = Augmentation(pad=max(1, res // 8), flip=True, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    name = f"{IMAGEFOLDER}{listing.root}"
    n = len(listing.train) + len(listing.test)
    if n * CHANNELS * res * res > in_memory_limit:
        train = FolderSplit(listing.train, res, CHANNELS, workers)
        test = FolderSplit(listing.test, res, CHANNELS, workers)
        return Dataset(name, train, test, len(listing.classes), CHANNELS, res, aug, listing.classes)
    train, bad_train = _decoded(listing, listing.train, res)
    test, bad_test = _decoded(listing, listing.test, res)
    if not len(train):
        raise DatasetError(f"{IMAGEFOLDER} {listing.root}: none of its {len(listing.train)} training images "
                           f"could be read (first: {bad_train[0][0]}: {bad_train[0][1]})")
    return Dataset(name, train, test, len(listing.classes), CHANNELS, res, aug, listing.classes,
                   skipped=bad_train + bad_test, ignored=listing.ignored)
