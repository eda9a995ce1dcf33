"""python -m nas.profile: one-line errors (exit 2, nothing written), a tiny real profile, and its resume."""

from __future__ import annotations

import json

import pytest

from nas import profile
from nas.cli import run_main
from search_spaces import LatencyTable, TableMeta


def run(argv, capsys):
    try:
        code = run_main(profile.main, argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_LATENCY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("argv,expect", [
    (["--budget=-3"], "--budget"),
    (["--budget", "20parsecs"], "--budget"),
    (["--budget", "1KFLOPs"], ("--budget", "cannot be met")),
    (["--threads", "0"], "--threads"),
    (["--batch", "x"], "--batch"),
    (["--device", "tpu"], ("--device", "accepted: cpu, cuda")),
    (["--space", "mobilenet"], "--space"),
    (["--table", "{notjson}"], ("--table", "not a readable JSON")),
    (["--table", "{other}", "--threads", "1", "--budget", "7MFLOPs"], ("--table", "holds times for")),
])
def test_bad_input_is_one_line(argv, expect, tmp_path, cache, capsys):
    (tmp_path / "notjson.json").write_text("{")
    other = tmp_path / "other.json"
    LatencyTable(TableMeta("cpu: elsewhere", 8, 1, "float32", 32, "0"), {"stem:cifar,3,32": 1.0}).save(other)
    argv = [a.format(notjson=tmp_path / "notjson.json", other=other) for a in argv]
    before = sorted(p for p in tmp_path.rglob("*"))
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for word in (expect if isinstance(expect, tuple) else (expect,)):
        assert word in err
    assert sorted(p for p in tmp_path.rglob("*")) == before and not cache.exists()


def test_cuda_without_a_gpu_is_one_line(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(["--device", "cuda"], capsys)
    assert code == 2 and "--device: cuda is not available" in err


def test_a_tiny_real_profile_and_its_resume(cache, cli):
    """cifar space at 32x32, one thread, the parts of the architectures feasible at 7 MFLOPs (9 entries)."""
    argv = ["-m", "nas.profile", "--space", "resnext-cifar", "--threads", "1",
            "--budget", "7MFLOPs", "--repeats", "3", "--warmup", "1"]
    first = cli(*argv)  # the cache fixture's NAS_LATENCY_CACHE is in os.environ, which cli passes on
    assert first.returncode == 0, first.stderr
    assert "9 entries, 0 already measured" in first.stdout and "9/9 entries" in first.stdout
    (path,) = cache.glob("*.json")
    data = json.loads(path.read_text())
    assert data["threads"] == 1 and data["batch"] == 1 and data["resolution"] == 32
    assert len(data["entries"]) == 9 and all(v >= 0 for v in data["entries"].values())
    assert any(v > 0 for v in data["entries"].values())
    again = cli(*argv)
    assert again.returncode == 0 and "9 entries, 9 already measured" in again.stdout
    assert json.loads(path.read_text())["entries"] == data["entries"]  # nothing measured twice
