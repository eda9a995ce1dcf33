"""Datasets for trials: Fashion-MNIST, CIFAR-10/100 (official binary versions), image folders, synthetic.

In-memory datasets are decoded once into uint8 tensors (N, C, H, W) plus int64 labels and moved to
the training device whole; batches are then index selections on that device, so the hot loop has
no per-sample Python and no host-to-device copy. `imagefolder:PATH` too is decoded once (at the
training resolution, cached on disk); only a folder too large for memory is decoded batch by batch in
DataLoader worker processes. Every downloaded or found file
is checked against known digests before it is decoded, and nothing is ever unpickled.

Modules:
    _types.py         Dataset, TensorSplit, Augmentation, DatasetInfo, DatasetError, split_train_val
    _files.py         finding, verifying and downloading files: --data-dir, $NAS_DATA_DIR, locks
    _registry.py      each name's facts and loader: describe_dataset, load_dataset, DATASET_NAMES
    fashion_mnist.py  Fashion-MNIST's IDX files
    cifar.py          CIFAR-10/100 binary archives (CifarSpec, CIFAR_SPECS)
    imagefolder.py    imagefolder:PATH: listed, its own size, decoded once (FolderSplit when too large)
    image_decode.py   image files to uint8 arrays (any mode, EXIF orientation), the content-keyed cache
    synthetic.py      learnable random images for tests and benchmarks
    shipping.py       dataset_arrays / dataset_from_arrays: the arrays the driver ships to trials
"""

from ._files import DATA_DIR_ENV_VAR, RemoteFile, candidate_dirs, find_files, verify_file
from ._registry import DATASET_NAMES, describe_dataset, load_dataset
from ._types import Augmentation, Dataset, DatasetError, DatasetInfo, TensorSplit, split_train_val
from .cifar import CIFAR_SPECS, CifarSpec, load_cifar
from .fashion_mnist import load_fashion_mnist
from .imagefolder import IMAGEFOLDER, FolderSplit, load_imagefolder
from .shipping import dataset_arrays, dataset_from_arrays
from .synthetic import load_synthetic

__all__ = [
    "CIFAR_SPECS", "DATASET_NAMES", "DATA_DIR_ENV_VAR", "IMAGEFOLDER", "Augmentation", "CifarSpec", "Dataset",
    "DatasetError", "DatasetInfo", "FolderSplit", "RemoteFile", "TensorSplit", "candidate_dirs", "dataset_arrays",
    "dataset_from_arrays", "describe_dataset", "find_files", "load_cifar", "load_dataset", "load_fashion_mnist",
    "load_imagefolder", "load_synthetic", "split_train_val", "verify_file",
]
