"""A real 2-node Ray cluster on this machine, isolated in a network namespace the test makes itself.

`unshare -n` gives a namespace with nothing but its own loopback. Inside it, with
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1, `ray start --head` and a second `ray start --address` on
127.0.0.1 form a real multi-node cluster (two raylets, one GCS); outside a namespace that variable
would make Ray listen on every interface, which we never do. One long-lived `sleep` holds the
namespace; every command enters it with `nsenter -t PID -n`, so drivers, the S3 server and the
nodes all talk over the namespace's loopback only.

Stopping: only the processes in that namespace (all of them ours: nothing else can enter it), by
pid. Never `ray stop`, which kills every Ray process on the machine.
Token authentication (on by default in Ray 2.60): a fresh token in a temp file, RAY_AUTH_TOKEN_PATH
and RAY_AUTH_MODE=token in every command's environment, so ~/.ray/auth_token is never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.s3_server import CLIENT_ENV, S3Server, start_s3_server

REPO = Path(__file__).resolve().parents[2]
PORT = 6379  # the namespace has its own port space: Ray's default port is free there


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class RayCluster:
    holder: subprocess.Popen = field(repr=False)  # `unshare -n sleep`: keeps the namespace alive
    tmp: Path
    env: dict[str, str]  # for every command inside: Ray, token, S3 credentials, PYTHONPATH
    s3: S3Server | None = None
    node_pids: dict[str, set[int]] = field(default_factory=dict)  # "head", "worker": processes at start

    @property
    def netns(self) -> str:
        return _netns(self.holder.pid)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORT}"

    def prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n"]

    def namespace_pids(self) -> set[int]:
        ns = self.netns
        return {p for p in _pids() if p != self.holder.pid and _netns(p) == ns}

    def _env(self, env: dict[str, str] | None) -> dict[str, str]:
        return {**os.environ, **self.env, **(env or {})}

    def run(self, cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess:
        """Run CMD inside the namespace (cwd: the repository) and wait; stdout/stderr captured."""
        return subprocess.run([*self.prefix(), *cmd], env=self._env(env), cwd=REPO, capture_output=True,
                              text=True, timeout=timeout, check=check)

    def popen(self, cmd: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.STDOUT)
        return subprocess.Popen([*self.prefix(), *cmd], env=self._env(env), cwd=REPO, text=True, **kwargs)

    def _ray_start(self, role: str, args: list[str]) -> None:
        before = self.namespace_pids()
        out = self.run([shutil.which("ray") or "ray", "start", "--node-ip-address", "127.0.0.1",
                        "--disable-usage-stats", *args], timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"ray start ({role}) failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        self.node_pids[role] = self.namespace_pids() - before

    def start_head(self, cpus: int = 1) -> None:
        self._ray_start("head", ["--head", "--port", str(PORT), "--num-cpus", str(cpus),
                                 "--resources", '{"head": 1}', "--include-dashboard=false",
                                 "--temp-dir", str(self.tmp / "ray")])

    def add_worker(self, cpus: int = 1) -> None:
        """(Re)start the worker node: `ray start --address` with the custom resource `worker`."""
        self._ray_start("worker", ["--address", self.address, "--num-cpus", str(cpus),
                                   "--resources", '{"worker": 1}'])

    def _tree(self, roots: set[int]) -> set[int]:
        found, changed = set(roots), True
        while changed:
            changed = False
            for p in self.namespace_pids():
                if p not in found and _ppid(p) in found:
                    found.add(p)
                    changed = True
        return found

    def worker_raylet_pids(self) -> list[int]:
        return [p for p in self.node_pids.get("worker", ()) if "/raylet/raylet " in _cmdline(p)]

    def kill_worker_node(self) -> list[int]:
        """kill -9 the worker node: its raylet, everything it started (trial workers, agents) and the
        other processes its `ray start` left. Returns the pids killed."""
        victims = self._tree(set(self.node_pids.get("worker", ())))
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return sorted(victims)

    def stop(self) -> None:
        for _ in range(3):  # processes may fork while we kill: repeat until the namespace is empty
            left = self.namespace_pids()
            if not left:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        self.holder.kill()
        self.holder.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_cluster(with_s3: bool = True, worker: bool = True) -> RayCluster:
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("needs unshare and nsenter (util-linux)")
    tmp = Path(tempfile.mkdtemp(prefix="rc-"))  # short: Ray's unix socket paths live under it
    token = tmp / "auth_token"
    token.write_text(secrets.token_hex(32))
    holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep infinity"])
    deadline = time.monotonic() + 10
    while _netns(holder.pid) == _netns(os.getpid()) or not _cmdline(holder.pid).startswith("sleep"):
        if holder.poll() is not None or time.monotonic() > deadline:
            pytest.skip(f"cannot create a network namespace here (unshare -n exit {holder.poll()})")
        time.sleep(0.05)
    env = {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # keeps 127.0.0.1; safe only inside the namespace
        "RAY_AUTH_TOKEN_PATH": str(token), "RAY_AUTH_MODE": "token",
        "RAY_ADDRESS": f"127.0.0.1:{PORT}",
        # notice a dead node in ~2 s instead of Ray's default ~15 s, so a killed worker is retried soon
        "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
        "RAY_AIR_NEW_OUTPUT": "0", "PYTHONPATH": str(REPO), **CLIENT_ENV,
    }
    cluster = RayCluster(holder, tmp, env)
    try:
        if with_s3:
            cluster.s3 = start_s3_server(prefix_cmd=cluster.prefix())
        cluster.start_head()
        if worker:
            cluster.add_worker()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-node Ray cluster (head: 1 CPU + resource `head`; worker: 1 CPU + resource `worker`) and a
    moto S3 server, all inside a private network namespace. Module-scoped: ~15 s to start."""
    t0 = time.monotonic()
    cluster = start_cluster()
    print(f"ray_cluster: started in {time.monotonic() - t0:.1f} s")
    yield cluster
    cluster.stop()
