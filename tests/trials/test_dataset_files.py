"""Correctness fixes in trials.datasets: CIFAR-100 directories, the download cache, workers, describe()."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from trials import datasets as D
from trials.datasets import DatasetError, _files, _registry, cifar


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No $NAS_DATA_DIR, an empty system directory, a private download cache and no network."""
    monkeypatch.delenv(D.DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setattr(_files, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)  # the exact published size, all zeros (label 0 everywhere): valid records


def test_extracted_cifar100_directory_loads(tmp_path, offline):
    # Finding 11: the size check used per_file=0 for CIFAR-100, so a correct directory was "corrupt".
    base = tmp_path / "data" / "cifar-100-binary"
    _sparse(base / "train.bin", 50000 * 3074)
    _sparse(base / "test.bin", 10000 * 3074)
    ds = D.load_cifar("cifar100", tmp_path / "data", download=False)
    assert (len(ds.train), len(ds.test), ds.num_classes) == (50000, 10000, 100)


def test_extracted_cifar_with_a_wrong_size_is_corrupt(tmp_path, offline):
    base = tmp_path / "cifar-100-binary"
    _sparse(base / "train.bin", 50000 * 3074 - 3074)
    _sparse(base / "test.bin", 10000 * 3074)
    with pytest.raises(DatasetError, match="train.bin: corrupt file"):
        D.load_cifar("cifar100", tmp_path, download=False)


# --- the download cache (finding 10) ----------------------------------------------------------------


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fake_source(monkeypatch, payload: bytes, delay: float = 0.0):
    """urlopen serving `payload`; returns the list of URLs fetched."""
    fetched: list[str] = []
    lock = threading.Lock()

    def urlopen(url, timeout=None):
        with lock:
            fetched.append(url)
        if delay:
            threading.Event().wait(delay)
        return _Response(payload)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return fetched


def _spec(payload: bytes) -> D.RemoteFile:
    return D.RemoteFile("blob.bin", "http://example.invalid/blob.bin", hashlib.md5(payload).hexdigest())


def test_download_cache_is_looked_up(monkeypatch, tmp_path, offline):
    assert _files.download_dir("fashion-mnist", None) in D.candidate_dirs("fashion-mnist")


def test_cached_download_is_reused(monkeypatch, tmp_path, offline):
    payload = b"x" * 1000
    spec = _spec(payload)
    fetched = _fake_source(monkeypatch, payload)
    for _ in range(3):
        (path,) = D.find_files("blob", (spec,), None, True, "how")
        assert path.read_bytes() == payload
    assert len(fetched) == 1


def test_concurrent_trials_download_once(monkeypatch, tmp_path, offline):
    payload = bytes(range(256)) * 4000
    spec = _spec(payload)
    fetched = _fake_source(monkeypatch, payload, delay=0.05)
    errors: list[BaseException] = []

    def trial():
        try:
            (path,) = D.find_files("blob", (spec,), None, True, "how")
            assert path.read_bytes() == payload
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=trial) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(fetched) == 1
    cache = _files.download_dir("blob", None)
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == ["blob.bin"]


def test_corrupt_cached_download_is_fetched_again(monkeypatch, tmp_path, offline):
    payload = b"good data" * 100
    spec = _spec(payload)
    cache = _files.download_dir("blob", None)
    cache.mkdir(parents=True)
    (cache / "blob.bin").write_bytes(b"half a downl")
    fetched = _fake_source(monkeypatch, payload)
    (path,) = D.find_files("blob", (spec,), None, True, "how")
    assert path.read_bytes() == payload and len(fetched) == 1


def test_corrupt_file_in_a_user_directory_is_still_an_error(monkeypatch, tmp_path, offline):
    # Only our own cache is repaired; a user's --data-dir file is reported, never overwritten.
    payload = b"good data" * 100
    spec = _spec(payload)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "blob.bin").write_bytes(b"bad")
    fetched = _fake_source(monkeypatch, payload)
    with pytest.raises(DatasetError, match="blob.bin: corrupt file"):
        D.find_files("blob", (spec,), tmp_path / "mine", True, "how")
    assert fetched == [] and (tmp_path / "mine" / "blob.bin").read_bytes() == b"bad"


def test_cifar_archive_downloaded_once_then_found_extracted(monkeypatch, tmp_path, offline):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, n in (("train.bin", 3), ("test.bin", 2)):
            data = bytes(3074 * n)
            info = tarfile.TarInfo(f"cifar-100-binary/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = buf.getvalue()
    monkeypatch.setattr(cifar, "CIFAR_SPECS", {
        **D.CIFAR_SPECS,
        "cifar100": D.CIFAR_SPECS["cifar100"].__class__(**{
            **D.CIFAR_SPECS["cifar100"].__dict__,
            "archive": D.RemoteFile("cifar-100-binary.tar.gz", "http://example.invalid/c.tgz",
                                    hashlib.md5(archive).hexdigest()),
            "train_images": 3, "test_images": 2})})
    fetched = _fake_source(monkeypatch, archive)
    for _ in range(2):
        ds = D.load_cifar("cifar100")
        assert (len(ds.train), len(ds.test)) == (3, 2)
    assert len(fetched) == 1


# --- workers (finding 18) ---------------------------------------------------------------------------


def _folder(root: Path, n: int = 10) -> None:
    from PIL import Image

    for cls, value in (("cat", 30), ("dog", 220)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (12, 12), (value, value, value)).save(root / cls / f"{i}.png")


def test_workers_reach_the_image_folder_loader(tmp_path, monkeypatch):
    from trials.datasets import imagefolder

    _folder(tmp_path)
    assert D.load_dataset(f"imagefolder:{tmp_path}", resolution=8, workers=0).in_memory  # small: decoded once
    monkeypatch.setattr(imagefolder, "IN_MEMORY_LIMIT", 0)  # too large for memory: decoded by workers
    ds = D.load_dataset(f"imagefolder:{tmp_path}", resolution=8, workers=0)
    assert not ds.in_memory and ds.train.workers == 0 and ds.test.workers == 0
    images, _ = next(ds.train.batches(2, torch.arange(2)))
    assert images.shape == (2, 3, 8, 8) and images.dtype == torch.uint8


# --- describe -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, facts", [
    # nas/tuner.py's former _KNOWN_SHAPES, fact for fact
    ("fashion-mnist", (1, 10, 28)), ("cifar10", (3, 10, 32)), ("cifar100", (3, 100, 32)),
    ("synthetic", (3, 10, 32)),
])
def test_describe_known_datasets(name, facts, monkeypatch):
    for other in _registry._DATASETS:  # describe_dataset() must not load anything
        monkeypatch.setitem(_registry._DATASETS, other, dataclasses.replace(_registry._DATASETS[other], load=None))
    info = D.describe_dataset(name)
    assert (info.channels, info.classes, info.resolution) == facts


def test_describe_matches_what_loads():
    ds = D.load_dataset("synthetic")
    info = D.describe_dataset("synthetic")
    assert (info.channels, info.classes, info.resolution) == (ds.in_channels, ds.num_classes, ds.resolution)


def test_describe_imagefolder_counts_class_folders(tmp_path):
    _folder(tmp_path / "flat", n=1)
    info = D.describe_dataset(f"imagefolder:{tmp_path / 'flat'}")
    assert (info.channels, info.classes, info.resolution) == (3, 2, 12)  # the images' size
    assert len(info.class_names) == 2 and len(info.mean) == len(info.std) == 3  # what an export records
    assert D.describe_dataset(f"imagefolder:{tmp_path / 'flat'}", resolution=64).resolution == 64
    for split in ("train", "val"):
        _folder(tmp_path / "split" / split, n=1)
    assert D.describe_dataset(f"imagefolder:{tmp_path / 'split'}").classes == 2
    (tmp_path / "split" / "train" / "bird").mkdir()  # a class folder without images: refused, named
    with pytest.raises(DatasetError, match="bird holds no images"):
        D.describe_dataset(f"imagefolder:{tmp_path / 'split'}")
    with pytest.raises(DatasetError, match="not a directory"):
        D.describe_dataset(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="class"):
        D.describe_dataset(f"imagefolder:{tmp_path / 'empty'}")


def test_describe_unknown_lists_accepted_names():
    with pytest.raises(DatasetError) as err:
        D.describe_dataset("mnist")
    assert isinstance(err.value, ValueError)
    for name in ("fashion-mnist", "cifar10", "cifar100", "synthetic", "imagefolder:PATH"):
        assert name in str(err.value)
