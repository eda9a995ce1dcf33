"""Datasets for trials: Fashion-MNIST, CIFAR-10/100 (official binary versions), image folders, synthetic.

In-memory datasets are decoded once into uint8 tensors (N, C, H, W) plus int64 labels and moved to
the training device whole; batches are then index selections on that device, so the hot loop has
no per-sample Python and no host-to-device copy. `imagefolder:PATH` is the exception: decoding
JPEGs at a larger resolution belongs in DataLoader worker processes.

Look-up order for the official datasets: `data_dir` (--data-dir), `$NAS_DATA_DIR`, then
`/usr/share/datasets/<name>` (Debian's dataset-fashion-mnist installs there), then the download
directory, then a download from the official source when the network allows. Every file is checked
against known digests before it is decoded, and nothing is ever unpickled (CIFAR is read from its
binary version). Concurrent trials on one machine download a file once: under a file lock, into a
unique temporary name, renamed into place only after it verifies.

Dataset facts (channels, classes, resolution) live in one registry, `_DATASETS` (pycls's `_models`
style); `describe(name)` reads them without loading anything, `load_dataset(name)` dispatches
through it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

SYSTEM_DIR = Path("/usr/share/datasets")
ENV_VAR = "NAS_DATA_DIR"


class DatasetError(ValueError):
    """Missing, corrupt or unknown data; the message says where we looked and what to do."""


# --- per-dataset facts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """What the on-device augmentation does for a dataset (see trials.augment)."""

    pad: int = 0  # random crop of the original size from the zero-padded image; 0 = none
    flip: bool = False  # random horizontal flip
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)


# Fashion-MNIST: a 2-pixel shift (7% of 28) and flips. Flips are label-preserving for clothes and
# shoes (the silhouette of a left shoe mirrored is a plausible right shoe), and measured on short
# CPU trainings they cost nothing (docs/performance.md). CIFAR: the standard pad-4 crop + flip.
FASHION_AUG = Augmentation(pad=2, flip=True, mean=(0.2860,), std=(0.3530,))
CIFAR10_AUG = Augmentation(pad=4, flip=True, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
CIFAR100_AUG = Augmentation(pad=4, flip=True, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))
IMAGENET_AUG_MEAN = (0.485, 0.456, 0.406)
IMAGENET_AUG_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    md5: str | None = None  # digest of the file as published
    # sha256 of the decompressed payload: the same data recompressed (Debian's gzip -n strips the
    # file name from the gzip header, changing the .gz md5) still verifies.
    payload_sha256: str | None = None
    size: int | None = None  # exact byte size of the payload, a structural check where no digest is known


_FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# md5 of the .gz files as published by Zalando; payload sha256 computed from the files of Debian's
# dataset-fashion-mnist package, whose .gz md5s differ only because their gzip headers lack the
# file name (23-24 bytes shorter each).
FASHION_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", _FMNIST_URL + "train-images-idx3-ubyte.gz",
               "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
               "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    RemoteFile("train-labels-idx1-ubyte.gz", _FMNIST_URL + "train-labels-idx1-ubyte.gz",
               "25c81989df183df01b3e8a0aad5dffbe",
               "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    RemoteFile("t10k-images-idx3-ubyte.gz", _FMNIST_URL + "t10k-images-idx3-ubyte.gz",
               "bef4ecab320f06d8554ea6380940ec79",
               "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    RemoteFile("t10k-labels-idx1-ubyte.gz", _FMNIST_URL + "t10k-labels-idx1-ubyte.gz",
               "bb300cfdad3c16e7a12a480ee83cd310",
               "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
)

# CIFAR binary versions: the archive md5s are the ones published on https://www.cs.toronto.edu/~kriz/
# cifar.html. The extracted .bin files have no published digest; they are checked by exact size
# (a truncated or padded file fails) and label range.


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

    @property
    def record(self) -> int:
        return self.label_bytes + 3 * 32 * 32

    def expected_sizes(self) -> dict[str, int]:
        """Exact byte size of every extracted file (each split's images are spread evenly over its files)."""
        sizes = {}
        for files, images in ((self.train_files, self.train_images), (self.test_files, self.test_images)):
            for f in files:
                sizes[f] = self.record * images // len(files)
        return sizes


CIFAR_SPECS = {
    "cifar10": CifarSpec(
        RemoteFile("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                   "c32a1d4ab5d03f1284b67883e8d87530"),
        "cifar-10-batches-bin", tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",),
        label_bytes=1, classes=10, augmentation=CIFAR10_AUG),
    # Each record is <coarse label><fine label><3072 pixels>; the 100 fine labels are the task.
    "cifar100": CifarSpec(
        RemoteFile("cifar-100-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                   "03b5dce01913d631647c71ecec9e9cb8"),
        "cifar-100-binary", ("train.bin",), ("test.bin",),
        label_bytes=2, classes=100, augmentation=CIFAR100_AUG),
}


# --- the data types the loop consumes ------------------------------------------------------------


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
class FolderSplit:
    """Image files listed as (path, label); decoded to uint8 tensors in DataLoader workers."""

    samples: list[tuple[str, int]]
    resolution: int
    channels: int = 3
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

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, TensorSplit)


# --- look-up, verification, download --------------------------------------------------------------


def candidate_dirs(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Where `name` is looked for, in order: data_dir, $NAS_DATA_DIR, /usr/share/datasets, the download dir.

    Each user root is tried both as the dataset's own directory and as a parent holding `<name>/`.
    """
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]).expanduser())
    dirs: list[Path] = []
    for root in roots:
        dirs += [root, root / name]
    dirs.append(SYSTEM_DIR / name)
    cache = _download_dir(name, data_dir)
    if cache not in dirs:
        dirs.append(cache)
    return dirs


def _digest(path: Path, algorithm: str, decompress: bool = False) -> str:
    h = hashlib.new(algorithm)
    opener = gzip.open if decompress else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, spec: RemoteFile) -> None:
    """Raise DatasetError naming `path` unless it matches the published md5 or the payload digest."""
    if spec.md5 is not None and _digest(path, "md5") == spec.md5:
        return
    if spec.payload_sha256 is not None:
        try:
            if _digest(path, "sha256", decompress=path.suffix == ".gz") == spec.payload_sha256:
                return
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DatasetError(f"{path}: corrupt file ({exc}); delete it and fetch it again "
                               f"from {spec.url}") from None
    elif spec.md5 is None:
        return
    raise DatasetError(f"{path}: corrupt file (checksum mismatch); delete it and fetch it again "
                       f"from {spec.url}")


@contextlib.contextmanager
def _machine_lock(dest_dir: Path, name: str) -> Iterator[None]:
    """Exclusive lock on dest_dir/.name.lock, shared by every process and thread of this machine.

    flock locks belong to the open file description, so two threads of one process exclude each other
    too. Not re-entrant: never take the same lock twice in one call chain.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    with open(dest_dir / f".{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached_or_download(spec: RemoteFile, dest_dir: Path) -> Path:
    """dest_dir/spec.name, verified; downloaded first when absent or failing verification. Hold the lock."""
    dest = dest_dir / spec.name
    if dest.is_file():
        try:
            verify_file(dest, spec)
            return dest
        except DatasetError:
            pass  # a stale or half-written file (older versions wrote in place): fetch it again
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{spec.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        try:
            verify_file(tmp, spec)
        except DatasetError:
            raise DatasetError(f"{spec.url}: the downloaded file fails its checksum; try again later, "
                               f"or fetch it by hand into {dest_dir}") from None
        os.replace(tmp, dest)  # atomic: other trials see no file or the whole verified one
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _fetch(spec: RemoteFile, dest_dir: Path) -> Path:
    """The verified file, downloaded at most once per machine however many trials ask at once."""
    with _machine_lock(dest_dir, spec.name):
        return _cached_or_download(spec, dest_dir)


def _download_dir(name: str, data_dir: str | Path | None) -> Path:
    """Where downloads go: the first user-given root, else ~/.cache/nas/<name>."""
    if data_dir is not None:
        return Path(data_dir).expanduser() / name
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser() / name
    return Path.home() / ".cache" / "nas" / name


def _missing_error(name: str, looked: list[Path], what: str, how: str, download_error: str) -> DatasetError:
    where = ", ".join(str(p) for p in looked)
    return DatasetError(
        f"{name}: {what} not found; looked in {where}; download failed ({download_error}). "
        f"To get the data: {how}, then pass --data-dir DIR or set ${ENV_VAR}"
    )


def find_files(name: str, files: tuple[RemoteFile, ...], data_dir: str | Path | None, download: bool,
               how: str) -> list[Path]:
    """Verified local paths of `files`: from the first directory that has them all, else downloaded.

    A file in the download directory that fails verification is fetched again (when downloads are
    allowed); anywhere else it is an error naming the file.
    """
    looked = candidate_dirs(name, data_dir)
    cache = _download_dir(name, data_dir)
    for d in looked:
        paths = [d / f.name for f in files]
        if all(p.is_file() for p in paths):
            if d == cache and download:
                break  # verified (and repaired if need be) under the lock below
            for p, f in zip(paths, files, strict=True):
                verify_file(p, f)
            return paths
    partial = [d / f.name for d in looked for f in files
               if (d / f.name).is_file() and not (d == cache and download)]
    if partial:
        # A half-populated directory is more likely a user error than a reason to download.
        missing = [f.name for f in files if not (partial[0].parent / f.name).is_file()]
        raise DatasetError(f"{name}: {partial[0].parent} has only some of the files; missing "
                           f"{', '.join(missing)}. To get the data: {how}")
    if not download:
        raise _missing_error(name, looked, "files", how, "downloads disabled")
    try:
        return [_fetch(f, cache) for f in files]
    except (OSError, urllib.error.URLError) as exc:
        raise _missing_error(name, looked, "files", how, str(exc)) from None


# --- Fashion-MNIST ---------------------------------------------------------------------------------


def _read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08 or (magic & 0xFF) != expected_ndim:  # 0x08 = unsigned byte elements
        raise DatasetError(f"{path}: not an IDX file of {expected_ndim}-d unsigned bytes")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_ndim)]
    offset = 4 + 4 * expected_ndim
    if len(data) - offset != int(np.prod(dims)):
        raise DatasetError(f"{path}: corrupt file (size does not match its header {dims})")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def load_fashion_mnist(data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    how = ("apt install dataset-fashion-mnist, or download the four .gz files from "
           "https://github.com/zalandoresearch/fashion-mnist#get-the-data")
    tr_x, tr_y, te_x, te_y = find_files("fashion-mnist", FASHION_FILES, data_dir, download, how)
    train = TensorSplit(torch.from_numpy(_read_idx(tr_x, 3).copy()).unsqueeze(1),
                        torch.from_numpy(_read_idx(tr_y, 1).astype(np.int64)))
    test = TensorSplit(torch.from_numpy(_read_idx(te_x, 3).copy()).unsqueeze(1),
                       torch.from_numpy(_read_idx(te_y, 1).astype(np.int64)))
    for split, path in ((train, tr_y), (test, te_y)):
        if len(split.images) != len(split.labels) or int(split.labels.max()) > 9:
            raise DatasetError(f"{path}: corrupt file (labels do not match the images)")
    return Dataset("fashion-mnist", train, test, 10, 1, 28, FASHION_AUG, FASHION_CLASSES)


# --- CIFAR (binary versions) -----------------------------------------------------------------------


def _read_cifar_bin(paths: list[Path], label_bytes: int, label_index: int, classes: int) -> TensorSplit:
    record = label_bytes + 3 * 32 * 32
    arrays = []
    for p in paths:
        raw = np.fromfile(p, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise DatasetError(f"{p}: corrupt file (size {raw.size} is not a multiple of the "
                               f"{record}-byte record)")
        arrays.append(raw.reshape(-1, record))
    data = np.concatenate(arrays)
    labels = data[:, label_index].astype(np.int64)
    if labels.max() >= classes:
        raise DatasetError(f"{paths[0].parent}: corrupt file (label {labels.max()} >= {classes})")
    images = data[:, label_bytes:].reshape(-1, 3, 32, 32)
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
    cache = _download_dir(name, data_dir)
    for d in looked:
        base = _extracted(spec, d)
        if base is not None:
            return base
        if (d / archive.name).is_file() and not (d == cache and download):
            verify_file(d / archive.name, archive)
            return _extract(d / archive.name, d, spec.subdir)
    if not download:
        raise _missing_error(name, looked, f"{spec.subdir}/ or {archive.name}", how, "downloads disabled")
    try:
        # One lock over fetch + extract: concurrent trials download and extract once, the others wait.
        with _machine_lock(cache, archive.name):
            base = _extracted(spec, cache)
            if base is not None:
                return base
            return _extract(_cached_or_download(archive, cache), cache, spec.subdir)
    except (OSError, urllib.error.URLError) as exc:
        raise _missing_error(name, looked, f"{spec.subdir}/ or {archive.name}", how, str(exc)) from None


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
    train = _read_cifar_bin([base / f for f in spec.train_files], spec.label_bytes, spec.label_bytes - 1,
                            spec.classes)
    test = _read_cifar_bin([base / f for f in spec.test_files], spec.label_bytes, spec.label_bytes - 1,
                           spec.classes)
    if len(train) != spec.train_images or len(test) != spec.test_images:
        raise DatasetError(f"{base}: corrupt files (expected {spec.train_images} + {spec.test_images} images)")
    return Dataset(name, train, test, spec.classes, 3, 32, spec.augmentation)


# --- image folders ---------------------------------------------------------------------------------

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _scan(root: Path, classes: list[str]) -> list[tuple[str, int]]:
    samples = []
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                samples.append((str(p), label))
    return samples


IMAGEFOLDER_RESOLUTION = 224  # images are resized to this unless a training resolution is given


def _imagefolder_layout(path: str | Path) -> tuple[Path, Path, Path | None, list[str]]:
    """(root, train root, test dir or None, class names) of an image folder, without reading images."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"imagefolder: {root} is not a directory (expected one sub-directory per class)")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        train_root = root / "train"
    else:
        train_root, test_dir = root, None
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"imagefolder: {root} needs at least two class sub-directories holding images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))}), as PATH/<class>/<image> or "
                           "PATH/train/<class>/<image> with PATH/val or PATH/test")
    return root, train_root, test_dir, classes


def load_imagefolder(path: str | Path, resolution: int | None = None, workers: int = 2) -> Dataset:
    """A class-per-folder tree. `PATH/train` + `PATH/test` (or `val`) if present; otherwise the classes
    are PATH's subdirectories and a fixed 10% of each class (independent of the trial seed) is the test set.
    """
    root, train_root, test_dir, classes = _imagefolder_layout(path)
    res = resolution or IMAGEFOLDER_RESOLUTION
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
        raise DatasetError(f"imagefolder: {root}'s class sub-directories hold no images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    train = FolderSplit(train_s, res, 3, workers)
    test = FolderSplit(test_s, res, 3, workers)
    aug = Augmentation(pad=max(1, res // 8), flip=True, mean=IMAGENET_AUG_MEAN, std=IMAGENET_AUG_STD)
    return Dataset(f"imagefolder:{root}", train, test, len(classes), 3, res, aug, classes)


# --- synthetic -------------------------------------------------------------------------------------


def load_synthetic(n_train: int = 2048, n_test: int = 512, channels: int = 3, resolution: int = 32,
                   num_classes: int = 10, seed: int = 0) -> Dataset:
    """Random images whose label is learnable (a class-dependent mean), for benchmarks and fast tests."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> TensorSplit:
        labels = torch.randint(0, num_classes, (n,), generator=g)
        base = (labels.float() * (200.0 / max(1, num_classes - 1)) + 28).view(-1, 1, 1, 1)
        noise = torch.randn(n, channels, resolution, resolution, generator=g) * 40
        return TensorSplit((base + noise).clamp(0, 255).to(torch.uint8), labels)

    return Dataset("synthetic", make(n_train), make(n_test), num_classes, channels, resolution,
                   Augmentation(pad=resolution // 8, flip=True, mean=(0.5,) * channels,
                                std=(0.25,) * channels))


# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """What a search needs to know about a dataset before loading it."""

    channels: int
    classes: int
    resolution: int  # native (square) image size


# (data_dir, download, resolution, workers) -> Dataset
Loader = Callable[[str | Path | None, bool, int | None, int], Dataset]


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    load: Loader


_DATASETS: dict[str, _Entry] = {
    "fashion-mnist": _Entry(DatasetInfo(1, 10, 28), lambda d, dl, r, w: load_fashion_mnist(d, dl)),
    "cifar10": _Entry(DatasetInfo(3, 10, 32), lambda d, dl, r, w: load_cifar("cifar10", d, dl)),
    "cifar100": _Entry(DatasetInfo(3, 100, 32), lambda d, dl, r, w: load_cifar("cifar100", d, dl)),
    "synthetic": _Entry(DatasetInfo(3, 10, 32), lambda d, dl, r, w: load_synthetic()),
}
NAMES = tuple(_DATASETS)  # plus "imagefolder:PATH"
IMAGEFOLDER = "imagefolder:"


def _unknown(name: str) -> DatasetError:
    return DatasetError(f"unknown dataset {name!r}; accepted: {', '.join(NAMES)}, {IMAGEFOLDER}PATH")


def _folder_path(name: str) -> str | None:
    """PATH of "imagefolder:PATH", or None for any other name."""
    if name.startswith(IMAGEFOLDER) and len(name) > len(IMAGEFOLDER):
        return name[len(IMAGEFOLDER):]
    return None


def describe(name: str, resolution: int | None = None) -> DatasetInfo:
    """Channels, classes and native resolution of `name`, without loading it.

    An image folder's classes are its class folders; its resolution is `resolution` (the training
    resolution it will be decoded at) or 224. Raises DatasetError listing the accepted names.
    """
    if name in _DATASETS:
        return _DATASETS[name].info
    path = _folder_path(name)
    if path is None:
        raise _unknown(name)
    _, _, _, classes = _imagefolder_layout(path)
    return DatasetInfo(3, len(classes), resolution or IMAGEFOLDER_RESOLUTION)


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True,
                 resolution: int | None = None, workers: int = 2) -> Dataset:
    """Load a dataset by name: fashion-mnist, cifar10, cifar100, synthetic or imagefolder:PATH.

    `workers` is the number of DataLoader processes that decode an image folder (in-memory datasets
    need none).
    """
    if name in _DATASETS:
        return _DATASETS[name].load(data_dir, download, resolution, workers)
    path = _folder_path(name)
    if path is None:
        raise _unknown(name)
    return load_imagefolder(path, resolution, workers)


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
    import warnings

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


def split_train_val(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (seeded) disjoint train/validation indices of a training set of size n."""
    if not 0 < val_size < n:
        raise DatasetError(f"val_size must be between 1 and {n - 1} for a training set of {n} images, "
                           f"got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:], perm[:val_size]


__all__ = [
    "Augmentation", "CIFAR_SPECS", "CifarSpec", "Dataset", "DatasetError", "DatasetInfo", "FolderSplit", "NAMES",
    "TensorSplit", "candidate_dirs", "dataset_arrays", "dataset_from_arrays",
    "describe", "load_cifar", "load_dataset", "load_fashion_mnist",
    "load_imagefolder", "load_synthetic", "split_train_val", "verify_file",
]
