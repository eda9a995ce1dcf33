"""Finding, verifying and downloading a dataset's files: the data-directory look-up order, digests, locks.

Look-up order: `data_dir` (--data-dir), `$NAS_DATA_DIR`, then `/usr/share/datasets/<name>` (Debian's
dataset-fashion-mnist installs there), then the download directory, then a download from the official
source when the network allows. Every file is checked against known digests before it is decoded.
Concurrent trials on one machine download a file once: under a file lock, into a unique temporary
name, renamed into place only after it verifies.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._types import DatasetError

SYSTEM_DIR = Path("/usr/share/datasets")
DATA_DIR_ENV_VAR = "NAS_DATA_DIR"  # a directory holding the datasets, searched after --data-dir


@dataclass(frozen=True)
class RemoteFile:
    """A file as published: where it comes from and how to check it."""

    name: str
    url: str
    md5: str | None = None  # digest of the file as published
    # sha256 of the decompressed payload: the same data recompressed (Debian's gzip -n strips the
    # file name from the gzip header, changing the .gz md5) still verifies.
    payload_sha256: str | None = None
    size: int | None = None  # exact byte size of the payload, a structural check where no digest is known


def candidate_dirs(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Where `name` is looked for, in order: data_dir, $NAS_DATA_DIR, /usr/share/datasets, the download dir.

    Each user root is tried both as the dataset's own directory and as a parent holding `<name>/`.
    """
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get(DATA_DIR_ENV_VAR):
        roots.append(Path(os.environ[DATA_DIR_ENV_VAR]).expanduser())
    dirs: list[Path] = []
    for root in roots:
        dirs += [root, root / name]
    dirs.append(SYSTEM_DIR / name)
    cache = download_dir(name, data_dir)
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
def machine_lock(dest_dir: Path, name: str) -> Iterator[None]:
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


def cached_or_download(spec: RemoteFile, dest_dir: Path) -> Path:
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
    with machine_lock(dest_dir, spec.name):
        return cached_or_download(spec, dest_dir)


def download_dir(name: str, data_dir: str | Path | None) -> Path:
    """Where downloads go: the first user-given root, else ~/.cache/nas/<name>."""
    if data_dir is not None:
        return Path(data_dir).expanduser() / name
    if os.environ.get(DATA_DIR_ENV_VAR):
        return Path(os.environ[DATA_DIR_ENV_VAR]).expanduser() / name
    return Path.home() / ".cache" / "nas" / name


def missing_error(name: str, looked: list[Path], what: str, how: str, download_error: str) -> DatasetError:
    where = ", ".join(str(p) for p in looked)
    return DatasetError(
        f"{name}: {what} not found; looked in {where}; download failed ({download_error}). "
        f"To get the data: {how}, then pass --data-dir DIR or set ${DATA_DIR_ENV_VAR}"
    )


def find_files(name: str, files: tuple[RemoteFile, ...], data_dir: str | Path | None, download: bool,
               how: str) -> list[Path]:
    """Verified local paths of `files`: from the first directory that has them all, else downloaded.

    A file in the download directory that fails verification is fetched again (when downloads are
    allowed); anywhere else it is an error naming the file.
    """
    looked = candidate_dirs(name, data_dir)
    cache = download_dir(name, data_dir)
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
        raise missing_error(name, looked, "files", how, "downloads disabled")
    try:
        return [_fetch(f, cache) for f in files]
    except (OSError, urllib.error.URLError) as exc:
        raise missing_error(name, looked, "files", how, str(exc)) from None
