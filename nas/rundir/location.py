"""Where a run lives: a local directory, a shared filesystem, or an object store URI (s3://, gs://, ...).

Ray Tune resolves `RunConfig(storage_path=...)` with `pyarrow.fs.FileSystem.from_uri`
(ray/train/_internal/storage.py:get_fs_and_path); this module resolves the same string the same way,
so the run's own files (trials.csv, search.json, best.json, report.html, ...) live beside Tune's
experiment state, wherever that is. No hand-written S3/GCS client: pyarrow.fs does the I/O.

Object-store endpoints and credentials come from where pyarrow reads them (checked with pyarrow 26 and
ray 2.60 against a moto server on 127.0.0.1):
- credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or ~/.aws, an instance role, ...). They are
  NOT part of the pickled filesystem Ray ships to trials, so every Ray node needs them in its
  environment (`ray start` inherits the shell's; or `runtime_env={"env_vars": ...}`).
- endpoint: either in the URI, `s3://bucket/runs?endpoint_override=HOST:PORT&scheme=http` (pickled
  with the filesystem, so trials on other nodes get it), or AWS_ENDPOINT_URL=http://HOST:PORT in every
  node's environment. Both work for Tuner.fit and Tuner.restore.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow.fs as pafs

from ..errors import SettingError

_SECRET_QUERY = ("access_key", "secret_key", "session_token")  # never printed


class StorageError(SettingError):
    """A run location that cannot be used; `setting` names the setting that gave it (str: "setting: why")."""

    def __init__(self, message: str, setting: str = "storage_path") -> None:
        super().__init__(setting, "{why}", why=message)


def is_uri(path: str) -> bool:
    """True for `scheme://...` (s3://, gs://, file://, ...). A Windows drive `C:\\x` is not one."""
    scheme = urlsplit(str(path)).scheme
    return len(scheme) > 1 and "://" in str(path)


def _join_uri(uri: str, *parts: str) -> str:
    """Append path parts to a URI, keeping its query (`?endpoint_override=...`) at the end."""
    s = urlsplit(uri)
    path = posixpath.join(s.path or "/", *[p.strip("/") for p in parts if p])
    return urlunsplit((s.scheme, s.netloc, path, s.query, s.fragment))


@dataclass(frozen=True)
class RunLocation:
    """RUN_DIR = STORAGE_PATH/NAME on whatever filesystem STORAGE_PATH names.

    `storage_path` and `name` go to `tune.RunConfig(storage_path=..., name=...)` unchanged;
    `run_uri` is what `Tuner.restore`, `nas.analyze`, `nas.export` and `--resume` take.
    """

    storage_path: str  # absolute local path, or the URI exactly as given (query kept)
    name: str
    fs: pafs.FileSystem = field(repr=False, compare=False)
    root: str  # the run directory as a path on `fs` (no scheme, no query): "bucket/runs/NAME"

    @classmethod
    def parse(cls, storage_path: str | os.PathLike, name: str) -> RunLocation:
        """Resolve STORAGE_PATH (relative and `~` paths made absolute; URIs never touched) and NAME."""
        text = str(storage_path).strip()
        if not text:
            raise StorageError("is empty")
        if not name or "/" in name or name in (".", ".."):
            raise StorageError(f"{name!r} is not a run name (one path component)", setting="name")
        if is_uri(text):
            if urlsplit(text).scheme == "file":
                return cls.parse(urlsplit(text).path, name)
            try:
                fs, base = pafs.FileSystem.from_uri(text)
            except (ValueError, OSError) as exc:  # ArrowInvalid is a ValueError
                raise StorageError(f"{text} is not a storage URI pyarrow understands ({exc})") from None
            return cls(text, name, fs, posixpath.join(base, name))
        # Resolved on the driver so that trials (which Tune runs in their own working directory)
        # and every node see the same absolute path.
        local = str(Path(text).expanduser().resolve())
        return cls(local, name, pafs.LocalFileSystem(), str(Path(local) / name))

    @classmethod
    def from_run_uri(cls, run: str | os.PathLike) -> RunLocation:
        """The location of an existing run from its directory or URI (what `--resume`/analyze take)."""
        text = str(run).strip().rstrip("/")
        if is_uri(text):
            s = urlsplit(text)
            parent, name = posixpath.split(s.path.rstrip("/"))
            if not name:
                raise StorageError(f"{text} names no run directory", setting="run_dir")
            return cls.parse(urlunsplit((s.scheme, s.netloc, parent or "/", s.query, s.fragment)), name)
        path = Path(text).expanduser().resolve()
        return cls.parse(str(path.parent), path.name)

    # --- names ------------------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def uri(self) -> str:
        """STORAGE_PATH as Tune takes it (`RunConfig(storage_path=loc.uri, name=loc.name)`)."""
        return self.storage_path

    @property
    def run_uri(self) -> str:
        """RUN_DIR as a string Tune/pyarrow take back (`Tuner.restore(loc.run_uri, ...)`)."""
        if self.is_local:
            return self.root
        return _join_uri(self.storage_path, self.name)

    @property
    def display(self) -> str:
        """RUN_DIR for messages: the URI without its query (endpoints are noise, keys could be secrets)."""
        if self.is_local:
            return self.root
        s = urlsplit(self.run_uri)
        return urlunsplit((s.scheme, s.netloc, s.path, "", ""))

    @property
    def public_uri(self) -> str:
        """RUN_DIR as users pass it back (`--resume`, nas.analyze, nas.export): the run URI with its endpoint
        query, but without credentials should a URI carry any."""
        if self.is_local:
            return self.root
        s = urlsplit(self.run_uri)
        query = urlencode([(k, v) for k, v in parse_qsl(s.query) if k not in _SECRET_QUERY], safe=":")
        return urlunsplit((s.scheme, s.netloc, s.path, query, ""))

    @property
    def local_dir(self) -> Path | None:
        """RUN_DIR as a local Path, or None on an object store."""
        return Path(self.root) if self.is_local else None

    def path(self, rel: str = "") -> str:
        """RUN_DIR/REL as a path on `self.fs`."""
        return posixpath.join(self.root, rel) if rel else self.root

    def relative(self, fs_path: str) -> str | None:
        """REL for a path on `self.fs` inside RUN_DIR (e.g. a Tune checkpoint's `.path`), else None."""
        fs_path = str(fs_path)
        prefix = self.root.rstrip("/") + "/"
        return fs_path[len(prefix):] if fs_path.startswith(prefix) else None

    # --- I/O --------------------------------------------------------------------------------------
    def exists(self, rel: str = "") -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def is_file(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type == pafs.FileType.File

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(rel)) as f:
                return f.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            # pyarrow's S3 filesystem says "Path does not exist" as an OSError subclass of its own
            if "does not exist" in str(exc) or "NoSuchKey" in str(exc):
                raise FileNotFoundError(f"{self.display}/{rel}") from None
            raise

    def read_text(self, rel: str, encoding: str = "utf-8") -> str:
        return self.read_bytes(rel).decode(encoding)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Readers never see a half-written file: locally a temp file + os.replace; on an object store a
        single PUT is atomic already (the object appears whole or not at all)."""
        target = self.path(rel)
        if self.is_local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return
        with self.fs.open_output_stream(target) as f:
            f.write(data)

    def write_text(self, rel: str, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(rel, text.encode(encoding))

    def delete(self, rel: str) -> None:
        info = self.fs.get_file_info(self.path(rel))
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(self.path(rel))
        elif info.type == pafs.FileType.File:
            self.fs.delete_file(self.path(rel))

    def list(self, rel: str = "", recursive: bool = False) -> list[str]:
        """Names under RUN_DIR/REL, relative to it, sorted; [] if it does not exist."""
        base = self.path(rel)
        infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=recursive))
        return sorted(posixpath.relpath(i.path, base) for i in infos)

    def upload_dir(self, local_dir: str | os.PathLike, rel: str = "") -> None:
        """Copy a local directory's contents into RUN_DIR/REL (pyarrow.fs.copy_files, as Tune does)."""
        if self.is_local and Path(local_dir).resolve() == Path(self.path(rel)).resolve():
            return
        self.fs.create_dir(self.path(rel), recursive=True)
        pafs.copy_files(str(Path(local_dir).resolve()), self.path(rel), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def download(self, rel: str, local_path: str | os.PathLike) -> Path:
        """Copy RUN_DIR/REL (a file or a directory) to LOCAL_PATH; returns LOCAL_PATH."""
        local_path = Path(local_path)
        info = self.fs.get_file_info(self.path(rel))
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"{self.display}/{rel}")
        if info.type == pafs.FileType.File:
            local_path.parent.mkdir(parents=True, exist_ok=True)
            local_path.write_bytes(self.read_bytes(rel))
        else:
            local_path.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(self.path(rel), str(local_path.resolve()), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
        return local_path

    @contextmanager
    def staged(self, rel: str = ""):
        """A local directory to write RUN_DIR/REL's files into (plotly's write_html, PNG figures, an
        export folder); uploaded on a clean exit. Locally it is RUN_DIR/REL itself: no copy."""
        if self.is_local:
            target = Path(self.path(rel))
            target.mkdir(parents=True, exist_ok=True)
            yield target
            return
        with tempfile.TemporaryDirectory(prefix="nas-stage-") as tmp:
            yield Path(tmp)
            self.upload_dir(tmp, rel)

    # --- checks -----------------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Create RUN_DIR and write + delete a probe file; StorageError naming storage_path if that fails
        (before Ray starts, so a typo does not cost a cluster start-up)."""
        if self.is_local:
            probe = Path(self.storage_path)
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
                raise StorageError(f"cannot write to {self.storage_path} ({probe} is not a writable directory)")
        probe_rel = f".write-test-{uuid.uuid4().hex[:8]}"
        try:
            self.fs.create_dir(self.root, recursive=True)
            self.write_bytes(probe_rel, b"ok")
            self.delete(probe_rel)
        except OSError as exc:
            raise StorageError(f"cannot write to {self.display} ({exc})") from None


class ThrottledWriter:
    """Writes small, often-rewritten files (trials.csv, epochs.csv) to a RunLocation at most every
    `min_interval_s` per file, plus once more on flush().

    Why: the results callback rewrites both tables on every reported epoch, inside Tune's driver loop.
    Locally that is a cheap atomic replace and goes through at once; on an object store each write is
    an HTTP PUT: 36 ms per 12 KB write against moto on 127.0.0.1 (0.8 ms locally; measured on this
    2-core machine, pyarrow 26), more against a real bucket, twice per reported epoch, which would
    stall the loop. The newest content is always kept; only the upload is deferred.
    """

    def __init__(self, location: RunLocation, min_interval_s: float = 5.0, clock=time.monotonic) -> None:
        self.location = location
        self.min_interval_s = 0.0 if location.is_local else min_interval_s
        self._clock = clock
        self._pending: dict[str, bytes] = {}
        self._last: dict[str, float] = {}

    def write_text(self, rel: str, text: str) -> bool:
        """Queue REL's new content; write it now if its interval has passed. True if written."""
        self._pending[rel] = text.encode("utf-8")
        now = self._clock()
        if now - self._last.get(rel, -1e18) >= self.min_interval_s:
            self._write(rel, now)
            return True
        return False

    def flush(self) -> None:
        for rel in list(self._pending):
            self._write(rel, self._clock())

    def _write(self, rel: str, now: float) -> None:
        self.location.write_bytes(rel, self._pending.pop(rel))
        self._last[rel] = now


def alive_nodes(nodes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The alive entries of `ray.nodes()` (Ray keeps dead nodes in that list)."""
    if nodes is None:
        import ray

        nodes = ray.nodes()
    return [n for n in nodes if n.get("Alive")]


def refuse_local_on_multinode(location: RunLocation, nodes: list[dict[str, Any]] | None = None) -> None:
    """A local storage path on a cluster of more than one node: refuse before any trial starts.

    Tune persists each checkpoint from the node the trial runs on; a path only the driver's node sees
    makes every trial elsewhere fail at its first checkpoint. A shared
    filesystem mounted at the same path everywhere is fine, but we cannot tell it from a local disk, so
    the message says what to use; NAS_SHARED_STORAGE=1 confirms the path is shared.
    """
    if not location.is_local or os.environ.get("NAS_SHARED_STORAGE") == "1":
        return
    count = len(alive_nodes(nodes))
    if count > 1:
        raise StorageError(
            f"{location.storage_path} is a local path but the Ray cluster has {count} nodes; use a shared "
            "filesystem mounted at the same path on every node (and set NAS_SHARED_STORAGE=1), or an "
            "s3:// / gs:// URI")
