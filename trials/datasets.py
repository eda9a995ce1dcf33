"""Datasets for trials: Fashion-MNIST, CIFAR-10/100 (official binary versions), image folders, synthetic.

In-memory datasets are decoded once into uint8 tensors (N, C, H, W) plus int64 labels and moved to
the training device whole; batches are then index selections on that device, so the hot loop has
no per-sample Python and no host-to-device copy. `imagefolder:PATH` is the exception: decoding
JPEGs at a larger resolution belongs in DataLoader worker processes.

Look-up order for the official datasets: `data_dir` (--data-dir), `$NAS_DATA_DIR`, then
`/usr/share/datasets/<name>` (Debian's dataset-fashion-mnist installs there), then a download from
the official source when the network allows. Every file is checked against known digests before it
is decoded, and nothing is ever unpickled (CIFAR is read from its binary version).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

SYSTEM_DIR = Path("/usr/share/datasets")
ENV_VAR = "NAS_DATA_DIR"
NAMES = ("fashion-mnist", "cifar10", "cifar100", "synthetic")  # plus "imagefolder:PATH"


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
# CPU trainings they cost nothing (docs/perf-training.md). CIFAR: the standard pad-4 crop + flip.
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
CIFAR10_ARCHIVE = RemoteFile("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                             "c32a1d4ab5d03f1284b67883e8d87530")
CIFAR100_ARCHIVE = RemoteFile("cifar-100-binary.tar.gz",
                              "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                              "03b5dce01913d631647c71ecec9e9cb8")
CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR100_DIR = "cifar-100-binary"
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = ("test_batch.bin",)
CIFAR100_TRAIN = ("train.bin",)
CIFAR100_TEST = ("test.bin",)


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
    """Where `name` is looked for, in order: data_dir, $NAS_DATA_DIR, /usr/share/datasets.

    Each root is tried both as the dataset's own directory and as a parent holding `<name>/`.
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


def _download(spec: RemoteFile, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / spec.name
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(spec.url, timeout=30) as response, open(tmp, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
    tmp.replace(dest)
    return dest


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
    """Verified local paths of `files`: from the first directory that has them all, else downloaded."""
    looked = candidate_dirs(name, data_dir)
    for d in looked:
        paths = [d / f.name for f in files]
        if all(p.is_file() for p in paths):
            for p, f in zip(paths, files, strict=True):
                verify_file(p, f)
            return paths
    partial = [d / f.name for d in looked for f in files if (d / f.name).is_file()]
    if partial:
        # A half-populated directory is more likely a user error than a reason to download.
        missing = [f.name for f in files if not (partial[0].parent / f.name).is_file()]
        raise DatasetError(f"{name}: {partial[0].parent} has only some of the files; missing "
                           f"{', '.join(missing)}. To get the data: {how}")
    if not download:
        raise _missing_error(name, looked, "files", how, "downloads disabled")
    dest = _download_dir(name, data_dir)
    try:
        paths = [_download(f, dest) for f in files]
    except (OSError, urllib.error.URLError) as exc:
        raise _missing_error(name, looked, "files", how, str(exc)) from None
    for p, f in zip(paths, files, strict=True):
        verify_file(p, f)
    return paths


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


def _find_cifar(name: str, archive: RemoteFile, subdir: str, files: tuple[str, ...], record: int,
                per_file: int, data_dir: str | Path | None, download: bool) -> Path:
    """The directory holding the extracted binary files; extracts (after verifying) an archive if needed."""
    how = f"download {archive.url} (the binary version) and extract it"
    looked = candidate_dirs(name, data_dir)
    for d in looked:
        for base in (d / subdir, d):
            if all((base / f).is_file() for f in files):
                for f in files:
                    size = (base / f).stat().st_size
                    if size != record * per_file * (1 if len(files) > 1 else 1):
                        if not (len(files) == 1 and size % record == 0 and size > 0):
                            raise DatasetError(f"{base / f}: corrupt file (unexpected size {size})")
                return base
        if (d / archive.name).is_file():
            return _extract(d / archive.name, archive, d, subdir)
    if not download:
        raise _missing_error(name, looked, f"{subdir}/ or {archive.name}", how, "downloads disabled")
    dest = _download_dir(name, data_dir)
    try:
        path = _download(archive, dest)
    except (OSError, urllib.error.URLError) as exc:
        raise _missing_error(name, looked, f"{subdir}/ or {archive.name}", how, str(exc)) from None
    return _extract(path, archive, dest, subdir)


def _extract(path: Path, archive: RemoteFile, dest: Path, subdir: str) -> Path:
    verify_file(path, archive)
    with tarfile.open(path, "r:gz") as tar:
        tar.extractall(dest, filter="data")  # 'data' refuses absolute paths and links outside dest
    return dest / subdir


def load_cifar(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    if name == "cifar10":
        base = _find_cifar(name, CIFAR10_ARCHIVE, CIFAR10_DIR, CIFAR10_TRAIN + CIFAR10_TEST, 3073, 10000,
                           data_dir, download)
        train = _read_cifar_bin([base / f for f in CIFAR10_TRAIN], 1, 0, 10)
        test = _read_cifar_bin([base / f for f in CIFAR10_TEST], 1, 0, 10)
        if len(train) != 50000 or len(test) != 10000:
            raise DatasetError(f"{base}: corrupt files (expected 50000 + 10000 images)")
        return Dataset(name, train, test, 10, 3, 32, CIFAR10_AUG)
    base = _find_cifar(name, CIFAR100_ARCHIVE, CIFAR100_DIR, CIFAR100_TRAIN + CIFAR100_TEST, 3074, 0,
                       data_dir, download)
    # Each record is <coarse label><fine label><3072 pixels>; the 100 fine labels are the task.
    train = _read_cifar_bin([base / f for f in CIFAR100_TRAIN], 2, 1, 100)
    test = _read_cifar_bin([base / f for f in CIFAR100_TEST], 2, 1, 100)
    if len(train) != 50000 or len(test) != 10000:
        raise DatasetError(f"{base}: corrupt files (expected 50000 + 10000 images)")
    return Dataset(name, train, test, 100, 3, 32, CIFAR100_AUG)


# --- image folders ---------------------------------------------------------------------------------

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _scan(root: Path, classes: list[str]) -> list[tuple[str, int]]:
    samples = []
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                samples.append((str(p), label))
    return samples


def load_imagefolder(path: str | Path, resolution: int | None = None, workers: int = 2) -> Dataset:
    """A class-per-folder tree. `PATH/train` + `PATH/test` (or `val`) if present; otherwise the classes
    are PATH's subdirectories and a fixed 10% of each class (independent of the trial seed) is the test set.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"imagefolder: {root} is not a directory (expected one sub-directory per class)")
    res = resolution or 224
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        train_s, test_s = _scan(root / "train", classes), _scan(test_dir, classes)
    else:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        samples = _scan(root, classes)
        train_s, test_s = [], []
        for label in range(len(classes)):
            of_class = [s for s in samples if s[1] == label]
            n_test = len(of_class) // 10
            test_s += of_class[:n_test]
            train_s += of_class[n_test:]
    if len(classes) < 2 or not train_s:
        raise DatasetError(f"imagefolder: {root} needs at least two class sub-directories holding images "
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


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True,
                 resolution: int | None = None) -> Dataset:
    """Load a dataset by name: fashion-mnist, cifar10, cifar100, synthetic or imagefolder:PATH."""
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir, download)
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, data_dir, download)
    if name == "synthetic":
        return load_synthetic()
    if name.startswith("imagefolder:"):
        return load_imagefolder(name.split(":", 1)[1], resolution)
    raise DatasetError(f"unknown dataset {name!r}; accepted: {', '.join(NAMES)}, imagefolder:PATH")


def split_train_val(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (seeded) disjoint train/validation indices of a training set of size n."""
    if not 0 < val_size < n:
        raise DatasetError(f"val_size must be between 1 and {n - 1} for a training set of {n} images, "
                           f"got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:], perm[:val_size]


__all__ = [
    "Augmentation", "Dataset", "DatasetError", "FolderSplit", "NAMES", "TensorSplit", "candidate_dirs",
    "load_cifar", "load_dataset", "load_fashion_mnist", "load_imagefolder", "load_synthetic",
    "split_train_val", "verify_file",
]
