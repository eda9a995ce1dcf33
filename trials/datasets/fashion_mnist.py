"""Fashion-MNIST: the four IDX files (published digests), decoded into uint8 tensors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ._files import RemoteFile, find_files
from ._types import Augmentation, Dataset, DatasetError, DatasetInfo, TensorSplit

NAME = "fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# A 2-pixel shift (7% of 28) and flips. Flips are label-preserving for clothes and shoes (the
# silhouette of a left shoe mirrored is a plausible right shoe), and measured on short CPU trainings
# they cost nothing (docs/performance.md).
AUGMENTATION = Augmentation(pad=2, flip=True, mean=(0.2860,), std=(0.3530,))
INFO = DatasetInfo(channels=1, classes=10, resolution=28, mean=AUGMENTATION.mean, std=AUGMENTATION.std,
                   class_names=tuple(CLASSES))

_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# md5 of the .gz files as published by Zalando; payload sha256 computed from the files of Debian's
# dataset-fashion-mnist package, whose .gz md5s differ only because their gzip headers lack the
# file name (23-24 bytes shorter each).
FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", _URL + "train-images-idx3-ubyte.gz",
               "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
               "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    RemoteFile("train-labels-idx1-ubyte.gz", _URL + "train-labels-idx1-ubyte.gz",
               "25c81989df183df01b3e8a0aad5dffbe",
               "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    RemoteFile("t10k-images-idx3-ubyte.gz", _URL + "t10k-images-idx3-ubyte.gz",
               "bef4ecab320f06d8554ea6380940ec79",
               "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    RemoteFile("t10k-labels-idx1-ubyte.gz", _URL + "t10k-labels-idx1-ubyte.gz",
               "bb300cfdad3c16e7a12a480ee83cd310",
               "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
)


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


def load_fashion_mnist(data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    how = ("apt install dataset-fashion-mnist, or download the four .gz files from "
           "https://github.com/zalandoresearch/fashion-mnist#get-the-data")
    tr_x, tr_y, te_x, te_y = find_files(NAME, FILES, data_dir, download, how)
    train = TensorSplit(torch.from_numpy(_read_idx(tr_x, 3).copy()).unsqueeze(1),
                        torch.from_numpy(_read_idx(tr_y, 1).astype(np.int64)))
    test = TensorSplit(torch.from_numpy(_read_idx(te_x, 3).copy()).unsqueeze(1),
                       torch.from_numpy(_read_idx(te_y, 1).astype(np.int64)))
    for split, path in ((train, tr_y), (test, te_y)):
        if len(split.images) != len(split.labels) or int(split.labels.max()) >= INFO.classes:
            raise DatasetError(f"{path}: corrupt file (labels do not match the images)")
    return Dataset(NAME, train, test, INFO.classes, INFO.channels, INFO.resolution, AUGMENTATION, CLASSES)
