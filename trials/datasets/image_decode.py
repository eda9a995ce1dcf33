"""Image files to uint8 arrays: one image whatever its mode and orientation, a folder's images at once
(threads), and the decoded arrays cached on disk by the files' identity and the resolution.

An image folder is decoded once per search (on the driver) and shipped to the trials as arrays, like
Fashion-MNIST; a second search of the same folder at the same resolution reads the cache instead
(docs/performance.md: images/s decoding 10,000 JPEGs, first and cached).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

CACHE_ENV_VAR = "NAS_CACHE_DIR"  # where decoded folders are kept (default ~/.cache/resnext-nas)
CACHE_FORMAT = "imagefolder-v1"  # part of every key: a change to decoding must not read old arrays
_WHITE = (255, 255, 255)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "resnext-nas").expanduser()


def _to_rgb(img):
    """Any Pillow mode as 8-bit RGB: 16/32-bit grey scaled (not clipped) to 8 bits, transparency
    composited on white (what an image viewer shows), palette and CMYK converted."""
    from PIL import Image

    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info or img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, _WHITE)
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def decode_image(path: str | Path, resolution: int) -> np.ndarray:
    """One image as a (3, resolution, resolution) uint8 array: EXIF orientation applied, the shorter
    side resized to `resolution`, the centre square kept. Raises OSError/ValueError for a file Pillow
    cannot read (a corrupt or truncated image)."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (resolution, resolution))  # decode at 1/2, 1/4, 1/8 scale when that is enough
        img = ImageOps.exif_transpose(img)
        img = _to_rgb(img)
        w, h = img.size
        scale = resolution / min(w, h)
        size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
        if size != (w, h):
            img = img.resize(size, Image.BILINEAR)
        left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
        img = img.crop((left, top, left + resolution, top + resolution))
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def image_side(path: str | Path) -> int | None:
    """The shorter side of an image from its header (no decoding); None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return min(img.size)
    except (OSError, ValueError, SyntaxError):
        return None


def _decode_or_error(path: str, resolution: int) -> np.ndarray | str:
    from PIL import Image

    try:
        return decode_image(path, resolution)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()


def decode_files(paths: Sequence[str], resolution: int, threads: int | None = None
                 ) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """(images (n_ok, 3, r, r) uint8, indices of the decoded paths, [(path, why)] of the unreadable ones).
    Pillow releases the GIL while decoding, so threads use every core without pickling arrays."""
    threads = threads or max(1, min(8, os.cpu_count() or 1))
    images = np.empty((len(paths), 3, resolution, resolution), dtype=np.uint8)
    ok, bad = [], []
    with ThreadPoolExecutor(threads) as pool:
        for i, out in enumerate(pool.map(lambda p: _decode_or_error(p, resolution), paths, chunksize=64)):
            if isinstance(out, str):
                bad.append((paths[i], out))
            else:
                images[len(ok)] = out
                ok.append(i)
    return images[:len(ok)], ok, bad


def folder_key(root: Path, paths: Sequence[str], resolution: int) -> str:
    """The cache key of a folder's decoded arrays: every listed file's path (relative to the folder),
    size and modification time, and the resolution. Editing, adding, removing or renaming an image
    changes it; reading every byte to hash the contents would cost about as much as decoding them."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}\n{resolution}\n".encode())
    for p in paths:
        st = os.stat(p)
        digest.update(f"{os.path.relpath(p, root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def cached_decode(root: Path, paths: Sequence[str], resolution: int
                  ) -> tuple[np.ndarray, list[int], list[tuple[str, str]], bool]:
    """decode_files through the cache: (images, decoded indices, unreadable, whether it was cached).
    The cache file is .npz (no pickle), written atomically; an unreadable cache is decoded anew."""
    key = folder_key(root, paths, resolution)
    path = cache_dir() / f"{CACHE_FORMAT}-{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as cached:
            bad = list(zip(cached["bad_paths"].tolist(), cached["bad_why"].tolist(), strict=True))
            return cached["images"], cached["ok"].tolist(), bad, True
    except (OSError, KeyError, ValueError):
        pass
    images, ok, bad = decode_files(paths, resolution)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz.tmp", delete=False) as tmp:
            np.savez(tmp, images=images, ok=np.asarray(ok, dtype=np.int64),
                     bad_paths=np.asarray([b[0] for b in bad], dtype=str),
                     bad_why=np.asarray([b[1] for b in bad], dtype=str))
        os.replace(tmp.name, path)
    except OSError:  # a read-only home: decode every time rather than fail
        pass
    return images, ok, bad, False


__all__ = ["CACHE_ENV_VAR", "cache_dir", "cached_decode", "decode_files", "decode_image", "folder_key", "image_side"]
