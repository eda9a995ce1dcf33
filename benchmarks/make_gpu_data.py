"""Build .gpudata/: what benchmarks/gpu_check.py needs on a GPU machine that has no network, in < 64 MiB.

    bash ../shared/device/make-bundle.sh          # once: .whl/ (Ray, Optuna and their needs, ~51 MB)
    python benchmarks/make_gpu_data.py            # .gpudata/wheels.tar.xz + .gpudata/fashion-mnist.tar.xz

Why not carry .whl/ and the dataset's .gz files as they are: .whl/ (51 MB) + plotly (9.7 MB, the
report needs it and the GPU image lacks it) + Fashion-MNIST (30.9 MB) is 92 MB, over the 64 MiB one
device call may carry. Wheels and gzip are deflate; the same bytes re-packed as one xz stream
(the wheels re-zipped uncompressed first, so xz sees the raw binaries) measured 32.1 MB for all
wheels and 26.5 MB for the four Fashion-MNIST payloads (xz -9, 2 threads; 5 min + 80 s on 2 cores).

Fashion-MNIST travels whole (not a subset): trials.datasets verifies the sha256 of each file's
decompressed payload, so gpu_check re-gzips the payloads it unpacks and the loader accepts them,
while a subset would fail verification.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FASHION = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
           "t10k-labels-idx1-ubyte")
# Packages the GPU image lacks beyond make-bundle.sh's (KINDS.md "Python packages already there"):
# the report's plotly (narwhals, its one requirement, is there).
EXTRA_WHEELS = ("plotly==7.1.0",)
PIP_PLATFORM = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                "--platform", "manylinux2014_x86_64"]


def xz_tar(members: dict[str, bytes | Path], dest: Path) -> None:
    """A tar of `members` (name -> bytes or file), compressed with xz -9 (the xz tool uses every core;
    Python's lzma one)."""
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for name, data in members.items():
            if isinstance(data, Path):
                shutil.copyfile(data, stage / name)
            else:
                (stage / name).write_bytes(data)
        tmp_dest = dest.with_suffix(".part")
        if shutil.which("xz"):
            with open(tmp_dest, "wb") as out:
                tar = subprocess.Popen(["tar", "-cf", "-", "-C", str(stage), *members], stdout=subprocess.PIPE)
                subprocess.run(["xz", "-9", "-T0", "-c"], stdin=tar.stdout, stdout=out, check=True)
                if tar.wait():
                    raise RuntimeError("tar failed")
        else:
            with tarfile.open(tmp_dest, "w:xz", preset=9) as tar:
                for name in members:
                    tar.add(stage / name, arcname=name)
        tmp_dest.replace(dest)


def stored_wheel(path: Path) -> bytes:
    """The wheel re-zipped without compression (same files, same RECORD), for xz to compress."""
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zo:
        for info in zi.infolist():
            data = zi.read(info)  # before the change below: the entry is read by its own compress_type
            info.compress_type = zipfile.ZIP_STORED
            zo.writestr(info, data)
    return buf.getvalue()


def build_wheels(whl_dir: Path, out: Path) -> Path:
    wheels = sorted(whl_dir.glob("*.whl"))
    if not any(w.name.startswith("ray-") for w in wheels):
        raise SystemExit(f"{whl_dir}: no Ray wheel; run `bash ../shared/device/make-bundle.sh` in the project root")
    have = {w.name.split("-")[0].lower() for w in wheels}
    missing = [spec for spec in EXTRA_WHEELS if spec.split("==")[0] not in have]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *PIP_PLATFORM,
                        "-d", str(whl_dir), *missing], check=True)
        wheels = sorted(whl_dir.glob("*.whl"))
    dest = out / "wheels.tar.xz"
    xz_tar({w.name: stored_wheel(w) for w in wheels}, dest)
    return dest


def build_fashion(src: Path, out: Path) -> Path:
    members = {}
    for name in FASHION:
        with gzip.open(src / f"{name}.gz", "rb") as f:
            members[name] = f.read()
    dest = out / "fashion-mnist.tar.xz"
    xz_tar(members, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / ".gpudata"))
    p.add_argument("--whl-dir", default=str(ROOT / ".whl"))
    p.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist",
                   help="directory holding the four official Fashion-MNIST .gz files")
    p.add_argument("--skip-wheels", action="store_true")
    p.add_argument("--skip-data", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    if not args.skip_wheels:
        made.append(build_wheels(Path(args.whl_dir), out))
    if not args.skip_data:
        made.append(build_fashion(Path(args.fashion_dir), out))
    for path in made:
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    total = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"{out}: {total / 2**20:.1f} MiB in all (a device call carries at most 64 MiB, the repository included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
