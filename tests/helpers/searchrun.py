"""Running `python -m nas.search` as a user does, in a subprocess, and cleaning up after it by PID.

Every process a test starts (the driver, and the Ray processes the driver starts) is ended by its
PID, never by name: other Ray instances on the machine are not touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil

# A small, fast search: ResNeXt-50-template architectures of ~0.5 GFLOPs at 224 trained on synthetic
# 32x32 images (about 10 MFLOPs per image), a few hundred images per epoch.
FAST = ["--budget", "500MFLOPs", "--dataset", "synthetic", "--train-subset", "192", "--batch-size", "32",
        "--max-concurrent", "1", "--cpus-per-trial", "2"]
ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e["PYTHONUNBUFFERED"] = "1"
    return e


def start(args: list[str], log: Path) -> subprocess.Popen:
    handle = open(log, "w")  # noqa: SIM115 - closed by the OS when the child exits; read by the test
    return subprocess.Popen([sys.executable, "-m", "nas.search", *args], stdout=handle,
                            stderr=subprocess.STDOUT, env=env(), cwd=ROOT, start_new_session=True)


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.search", *args], capture_output=True, text=True,
                          env=env(), cwd=ROOT, timeout=timeout)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_pids(processes: list[psutil.Process]) -> None:
    for p in processes:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=10)


def kill_driver(proc: subprocess.Popen) -> list[psutil.Process]:
    """kill -9 the driver alone (as a crash would); return the Ray processes it had started."""
    children = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return children


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"search exited early ({proc.returncode}):\n{log.read_text() if log else ''}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s:\n{log.read_text()[-3000:] if log else ''}")


def trials(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "trials.csv"
    if not path.exists():
        return pd.DataFrame(columns=["trial_id", "outcome", "epochs"])
    try:
        return pd.read_csv(path, dtype={"trial_id": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame(columns=["trial_id", "outcome", "epochs"])
