"""Decoding an image folder: images/s the first time (threads, Pillow) and from the cache after.

Generates N JPEGs (default 10,000; mixed sizes around 64-500 px, noise so they do not compress to
nothing) in a temporary folder of 10 classes, then times trials.load_dataset("imagefolder:...") twice at
the resolution given (a fresh cache directory: the first load decodes, the second reads the cache).

    python benchmarks/decode_folder.py [--images 10000] [--resolution 32] [--side 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_folder(root: Path, n: int, side: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        cls = root / f"class{i % 10}"
        cls.mkdir(parents=True, exist_ok=True)
        w, h = (int(side * f) for f in rng.uniform(0.75, 1.25, 2))
        small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)  # smooth-ish noise
        Image.fromarray(small).resize((w, h), Image.BILINEAR).save(cls / f"{i}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--side", type=int, default=256, help="typical image side in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "imgs", Path(tmp) / "cache"
        t0 = time.perf_counter()
        make_folder(folder, args.images, args.side)
        print(f"generated {args.images} JPEGs of ~{args.side}px in {time.perf_counter() - t0:.1f} s")
        os.environ["NAS_CACHE_DIR"] = str(cache)
        from trials import load_dataset

        for label in ("first (decoded)", "again (cached)"):
            t0 = time.perf_counter()
            ds = load_dataset(f"imagefolder:{folder}", resolution=args.resolution)
            s = time.perf_counter() - t0
            n = len(ds.train) + len(ds.test)
            print(f"{label:<16} {n} images at {args.resolution}x{args.resolution}: {s:.2f} s, {n / s:,.0f} images/s")
        print(f"cpus {os.cpu_count()}, cache {sum(p.stat().st_size for p in cache.iterdir()) / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
