"""CIFAR-10 and CIFAR-100 from their official binary versions (never unpickled): find, extract, decode.

The archive md5s are the ones published on https://www.cs.toronto.edu/~kriz/cifar.html. The extracted
.bin files have no published digest; they are checked by exact size (a truncated or padded file
fails) and label range.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._files import (
    RemoteFile,
    cached_or_download,
    candidate_dirs,
    download_dir,
    machine_lock,
    missing_error,
    verify_file,
)
from ._types import Augmentation, Dataset, DatasetError, DatasetInfo, TensorSplit

CHANNELS, RESOLUTION = 3, 32


@dataclass(frozen=True)
class CifarSpec:
    """One CIFAR variant's binary release: where it comes from and how its records are laid out."""

    archive: RemoteFile
    subdir: str  # the directory the archive extracts to
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_bytes: int  # record = labels + 3072 pixel bytes; the last label byte is the task's label
    classes: int
    augmentation: Augmentation
    train_images: int = 50000
    test_images: int = 10000

    class_names: tuple[str, ...] = ()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(CHANNELS, self.classes, RESOLUTION, self.augmentation.mean, self.augmentation.std,
                           self.class_names)

    @property
    def record(self) -> int:
        return self.label_bytes + CHANNELS * RESOLUTION * RESOLUTION

    def expected_sizes(self) -> dict[str, int]:
        """Exact byte size of every extracted file (each split's images are spread evenly over its files)."""
        sizes = {}
        for files, images in ((self.train_files, self.train_images), (self.test_files, self.test_images)):
            for f in files:
                sizes[f] = self.record * images // len(files)
        return sizes


# The standard pad-4 crop + flip.
CIFAR_SPECS = {
    "cifar10": CifarSpec(
        RemoteFile("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                   "c32a1d4ab5d03f1284b67883e8d87530"),
        "cifar-10-batches-bin", tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",),
        label_bytes=1, classes=10,
        augmentation=Augmentation(pad=4, flip=True, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
        class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
    # Each record is <coarse label><fine label><3072 pixels>; the 100 fine labels are the task.
    "cifar100": CifarSpec(
        RemoteFile("cifar-100-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                   "03b5dce01913d631647c71ecec9e9cb8"),
        "cifar-100-binary", ("train.bin",), ("test.bin",),
        label_bytes=2, classes=100,
        augmentation=Augmentation(pad=4, flip=True, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))),
}


def _read_cifar_bin(paths: list[Path], spec: CifarSpec) -> TensorSplit:
    """The records of `paths`, labelled by each record's last label byte."""
    arrays = []
    for p in paths:
        raw = np.fromfile(p, dtype=np.uint8)
        if raw.size == 0 or raw.size % spec.record:
            raise DatasetError(f"{p}: corrupt file (size {raw.size} is not a multiple of the "
                               f"{spec.record}-byte record)")
        arrays.append(raw.reshape(-1, spec.record))
    data = np.concatenate(arrays)
    labels = data[:, spec.label_bytes - 1].astype(np.int64)
    if labels.max() >= spec.classes:
        raise DatasetError(f"{paths[0].parent}: corrupt file (label {labels.max()} >= {spec.classes})")
    images = data[:, spec.label_bytes:].reshape(-1, CHANNELS, RESOLUTION, RESOLUTION)
    return TensorSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels))


def _extracted(spec: CifarSpec, d: Path) -> Path | None:
    """The directory under `d` holding all of spec's extracted files (sizes checked), or None."""
    sizes = spec.expected_sizes()
    for base in (d / spec.subdir, d):
        if all((base / f).is_file() for f in sizes):
            for f, expected in sizes.items():
                size = (base / f).stat().st_size
                if size != expected:
                    raise DatasetError(f"{base / f}: corrupt file (size {size}, expected {expected})")
            return base
    return None


def _find_cifar(name: str, spec: CifarSpec, data_dir: str | Path | None, download: bool) -> Path:
    """The directory holding the extracted binary files; extracts (after verifying) an archive if needed."""
    archive = spec.archive
    how = f"download {archive.url} (the binary version) and extract it"
    looked = candidate_dirs(name, data_dir)
    cache = download_dir(name, data_dir)
    for d in looked:
        base = _extracted(spec, d)
        if base is not None:
            return base
        if (d / archive.name).is_file() and not (d == cache and download):
            verify_file(d / archive.name, archive)
            return _extract(d / archive.name, d, spec.subdir)
    if not download:
        raise missing_error(name, looked, f"{spec.subdir}/ or {archive.name}", how, "downloads disabled")
    try:
        # One lock over fetch + extract: concurrent trials download and extract once, the others wait.
        with machine_lock(cache, archive.name):
            base = _extracted(spec, cache)
            if base is not None:
                return base
            return _extract(cached_or_download(archive, cache), cache, spec.subdir)
    except (OSError, urllib.error.URLError) as exc:
        raise missing_error(name, looked, f"{spec.subdir}/ or {archive.name}", how, str(exc)) from None


def _extract(path: Path, dest: Path, subdir: str) -> Path:
    """Extract a verified archive's `subdir` into dest atomically: into a temporary directory, then renamed."""
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".{subdir}."))
    try:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # 'data' refuses absolute paths and links outside tmp
        if not (tmp / subdir).is_dir():
            raise DatasetError(f"{path}: the archive holds no {subdir}/ directory")
        try:
            (tmp / subdir).rename(dest / subdir)
        except OSError:
            if not (dest / subdir).is_dir():  # lost a race to another extraction: theirs is as good
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / subdir


def load_cifar(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    if name not in CIFAR_SPECS:
        raise DatasetError(f"unknown CIFAR variant {name!r}; accepted: {', '.join(CIFAR_SPECS)}")
    spec = CIFAR_SPECS[name]
    base = _find_cifar(name, spec, data_dir, download)
    train = _read_cifar_bin([base / f for f in spec.train_files], spec)
    test = _read_cifar_bin([base / f for f in spec.test_files], spec)
    if len(train) != spec.train_images or len(test) != spec.test_images:
        raise DatasetError(f"{base}: corrupt files (expected {spec.train_images} + {spec.test_images} images)")
    return Dataset(name, train, test, spec.classes, CHANNELS, RESOLUTION, spec.augmentation)
