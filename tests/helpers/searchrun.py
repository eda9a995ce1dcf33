"""Running `python -m nas.search` as a user does, in a subprocess, and cleaning up after it by PID.

Tests reach this module's process starters through two fixtures of tests/conftest.py, never directly
(tests/test_suite_rules.py checks it): `search_process` (a `SearchProcesses`: real searches, other
commands that start Ray or train, a Ray head of their own; every test using it is marked `slow`) and
`cli` (a `QuickCommands`: `python -m ...` runs that stop before Ray starts, part of the fast tier).

Every process a test starts (the driver, and the Ray processes the driver starts) is ended by its
PID, never by name: other Ray instances on the machine are not touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil

# A small, fast search: ResNeXt-50-template architectures of ~150 MFLOPs at 224 trained on synthetic
# 32x32 images (about 3 MFLOPs per image), 128 images per epoch: what these searches test is the
# machinery (Tune, Optuna, storage, resume), not what the trials learn. At 500 MFLOPs and 192 images
# a trial's epoch took 3-4x longer.
# No reference designs (they are trained first in every search, and at this budget they are the largest
# architectures; a test of them uses the session's finished_search): every trial is the sampler's.
FAST_BUDGET = "150MFLOPs"
FAST = ["--budget", FAST_BUDGET, "--dataset", "synthetic", "--train-subset", "128", "--batch-size", "32",
        "--max-concurrent", "1", "--cpus-per-trial", "2", "--references", "none"]
ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e["PYTHONUNBUFFERED"] = "1"
    e.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage-stats reporter (and its notice) in each driver
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path) -> subprocess.Popen:
    handle = open(log, "w")  # noqa: SIM115 - closed by the OS when the child exits; read by the test
    return subprocess.Popen([sys.executable, "-m", "nas.search", *args], stdout=handle,
                            stderr=subprocess.STDOUT, env=env(), cwd=ROOT, start_new_session=True)


def run(args: list[str], timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.search", *args], capture_output=True, text=True,
                          env=env(), cwd=cwd or ROOT, timeout=timeout)


def command(module: str, *args: str, timeout: float = 300, cwd: Path | None = None,
            environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` (nas.analyze, nas.export, nas.train, nas.validate, a helper module)."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=environ or env(), cwd=cwd or ROOT, timeout=timeout)


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


@contextlib.contextmanager
def ray_head(port: int, *extra: str, environ: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """`ray start --head --block` on 127.0.0.1:PORT with 2 CPUs, ended (with every process it started,
    by PID) when the block exits."""
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        # as nas.search does for loopback: without it Ray moves the head onto the network address
        env={**(environ or env()), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    try:
        yield head
    finally:
        leftovers = descendants(head.pid)
        head.terminate()
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        kill_pids(leftovers)


class SearchProcesses:
    """The `search_process` fixture: processes that start Ray, run a search or train (all `slow`)."""

    FAST = FAST
    ROOT = ROOT
    env = staticmethod(env)
    run = staticmethod(run)
    start = staticmethod(start)
    command = staticmethod(command)
    ray_head = staticmethod(ray_head)

    @staticmethod
    def call(cmd: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
        """Any other command line, e.g. `ray job submit` or a benchmark script."""
        kwargs.setdefault("env", env())
        kwargs.setdefault("cwd", ROOT)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)

    @staticmethod
    def popen(cmd: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(cmd, **kwargs)


# What Ray prints when a driver starts its own instance (ray.init): a `cli` command must never get there.
RAY_STARTED = ("Started a local Ray instance", "Connecting to existing Ray cluster")


class QuickCommands:
    """The `cli` fixture: `python ARGS` for commands that stop before Ray starts (a dry run, an argument
    error, an import check). Fast tier: it fails a command that started Ray anyway."""

    def __call__(self, *args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env(),
                              cwd=cwd or ROOT, timeout=timeout)
        started = [m for m in RAY_STARTED if m in proc.stdout + proc.stderr]
        assert not started, f"{args}: started Ray ({started}); run it through the search_process fixture"
        return proc
