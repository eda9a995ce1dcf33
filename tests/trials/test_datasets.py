"""Datasets: look-up, checksums, clear errors, binary CIFAR records, image folders, splits, augmentation."""

from __future__ import annotations

import gzip
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from trials import datasets as D
from trials.augment import normalise, prepare, random_crop_flip
from trials.datasets import Augmentation, DatasetError, _files, cifar, fashion_mnist

FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(not (FMNIST / "train-images-idx3-ubyte.gz").is_file(),
                                  reason="Fashion-MNIST not installed (apt install dataset-fashion-mnist)")


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """No $NAS_DATA_DIR, an empty system directory and no network."""
    monkeypatch.delenv(D.DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setattr(_files, "SYSTEM_DIR", tmp_path / "system")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)


@pytest.fixture(scope="module")
def fmnist():
    if not (FMNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed")
    return D.load_fashion_mnist(download=False)


def test_fashion_mnist_loads_verified(fmnist):
    assert fmnist.train.images.shape == (60000, 1, 28, 28) and fmnist.train.images.dtype == torch.uint8
    assert fmnist.test.images.shape == (10000, 1, 28, 28)
    assert fmnist.train.labels.dtype == torch.int64
    assert torch.bincount(fmnist.train.labels).tolist() == [6000] * 10  # the published class balance
    assert torch.bincount(fmnist.test.labels).tolist() == [1000] * 10
    assert (fmnist.num_classes, fmnist.in_channels, fmnist.resolution) == (10, 1, 28)


@needs_fmnist
def test_debian_files_verify_by_payload_although_gz_md5_differs():
    # Debian's files are recompressed (no file name in the gzip header): the published .gz md5 does
    # not match, the payload digest does.
    spec = fashion_mnist.FILES[3]
    assert _files._digest(FMNIST / spec.name, "md5") != spec.md5
    D.verify_file(FMNIST / spec.name, spec)


@needs_fmnist
def test_data_dir_first_and_corrupt_file_named(tmp_path, no_system_data):
    for f in fashion_mnist.FILES:
        shutil.copy(FMNIST / f.name, tmp_path / f.name)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(labels, "rb") as f:
        payload = bytearray(f.read())
    payload[100] ^= 1  # one flipped label byte: still a valid gzip, wrong digest
    with gzip.open(labels, "wb") as f:
        f.write(bytes(payload))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz: corrupt file"):
        D.load_fashion_mnist(tmp_path, download=False)


@needs_fmnist
def test_env_var_is_searched(tmp_path, monkeypatch, no_system_data):
    (tmp_path / "fashion-mnist").mkdir()
    for f in fashion_mnist.FILES:
        (tmp_path / "fashion-mnist" / f.name).symlink_to(FMNIST / f.name)
    monkeypatch.setenv(D.DATA_DIR_ENV_VAR, str(tmp_path))
    assert D.candidate_dirs("fashion-mnist")[:2] == [tmp_path, tmp_path / "fashion-mnist"]
    D.verify_file(tmp_path / "fashion-mnist" / fashion_mnist.FILES[1].name, fashion_mnist.FILES[1])


def test_missing_data_says_where_and_how(tmp_path, no_system_data):
    with pytest.raises(DatasetError) as err:
        D.load_fashion_mnist(tmp_path / "mine")
    msg = str(err.value)
    assert str(tmp_path / "mine") in msg and str(tmp_path / "system" / "fashion-mnist") in msg
    assert "download failed" in msg and "network unreachable" in msg
    assert "dataset-fashion-mnist" in msg and "--data-dir" in msg
    with pytest.raises(DatasetError, match="cifar-10-binary.tar.gz"):
        D.load_cifar("cifar10", tmp_path / "mine")


def test_partial_directory_is_an_error(tmp_path, no_system_data):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"x")
    with pytest.raises(DatasetError, match="missing .*t10k-labels"):
        D.load_fashion_mnist(tmp_path, download=False)


def test_corrupt_cifar_archive_is_named(tmp_path, no_system_data):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(b"not the archive")
    with pytest.raises(DatasetError, match=r"cifar-10-binary.tar.gz: corrupt file \(checksum mismatch\)"):
        D.load_cifar("cifar10", tmp_path)


def test_cifar_binary_records(tmp_path):
    # cifar-100 layout: <coarse><fine><3072 bytes R, G, B planes>
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    records = np.concatenate([np.array([[3, 97]] * 5, dtype=np.uint8), pixels], axis=1)
    (tmp_path / "train.bin").write_bytes(records.tobytes())
    split = cifar._read_cifar_bin([tmp_path / "train.bin"], cifar.CIFAR_SPECS["cifar100"])
    assert split.labels.tolist() == [97] * 5
    assert torch.equal(split.images[2], torch.from_numpy(pixels[2].reshape(3, 32, 32)))
    (tmp_path / "bad.bin").write_bytes(records.tobytes()[:-1])
    with pytest.raises(DatasetError, match="bad.bin: corrupt file"):
        cifar._read_cifar_bin([tmp_path / "bad.bin"], cifar.CIFAR_SPECS["cifar100"])


def test_imagefolder(tmp_path):
    from PIL import Image

    for cls, value in (("cat", 30), ("dog", 220)):
        (tmp_path / cls).mkdir()
        for i in range(10):
            Image.new("RGB", (40 + i, 30), (value, value, value)).save(tmp_path / cls / f"{i}.png")
    ds = D.load_dataset(f"imagefolder:{tmp_path}", resolution=16)
    assert ds.classes == ["cat", "dog"] and ds.num_classes == 2 and ds.in_memory  # decoded once, shipped
    assert len(ds.train) == 18 and len(ds.test) == 2  # 10% of each class held out as test
    images, labels = next(ds.train.batches(8, torch.arange(len(ds.train))))
    assert images.shape == (8, 3, 16, 16) and images.dtype == torch.uint8
    assert labels.tolist() == [0] * 8 and int(images.max()) == 30
    with pytest.raises(DatasetError, match="not a directory"):
        D.load_dataset(f"imagefolder:{tmp_path / 'nope'}")


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'.*fashion-mnist"):
        D.load_dataset("mnist")


def test_split_is_seeded_and_disjoint():
    tr, va = D.split_train_val(100, 20, seed=3)
    tr2, va2 = D.split_train_val(100, 20, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert len(va) == 20 and set(tr.tolist()).isdisjoint(va.tolist()) and len(tr) + len(va) == 100
    assert not torch.equal(D.split_train_val(100, 20, seed=4)[1], va)
    with pytest.raises(DatasetError, match="val_size"):
        D.split_train_val(100, 100, seed=0)


def test_random_crop_is_a_shifted_window():
    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    aug = Augmentation(pad=2, flip=False)
    g = torch.Generator().manual_seed(0)
    out = random_crop_flip(images, aug, g)
    g = torch.Generator().manual_seed(0)
    dy = torch.randint(0, 5, (2,), generator=g)
    dx = torch.randint(0, 5, (2,), generator=g)
    padded = torch.nn.functional.pad(images.float(), (2, 2, 2, 2)).to(torch.uint8)
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 6])
    assert out.dtype == torch.uint8


def test_flip_and_identity():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(random_crop_flip(images, Augmentation(), torch.Generator()), images)
    out = random_crop_flip(images, Augmentation(flip=True), torch.Generator().manual_seed(1))
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, images, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 10 < sum(flipped) < 54


def test_normalise_and_resize():
    aug = Augmentation(mean=(0.5,), std=(0.25,))
    x = normalise(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), aug)
    assert torch.allclose(x, torch.full_like(x, 2.0))
    y = prepare(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), aug, train=False, generator=None, resolution=40,
                channels_last=True)
    assert y.shape == (2, 1, 40, 40) and y.is_contiguous(memory_format=torch.channels_last)
