"""Ray itself: the environment it must see before it is imported, starting it (or joining a cluster),
and how much of the cluster each trial asks for.

ray is imported inside `start_ray` on purpose: `configure_ray_env` must run first.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from search_spaces import Architecture, complexity

from .settings import SearchConfigError, SearchSettings


def configure_ray_env(address: str | None) -> None:
    """Environment Ray reads when it is imported: call before the first `import ray`."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress table replaces Tune's
    # Save the experiment state at every step of Tune's loop (its default waits 10 s or more): a
    # killed driver then loses no finished trial, which a resumed search would otherwise rerun.
    # The state of a few hundred trials is small; the cost is in docs/performance.md.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    host = (address or "").removeprefix("ray://").rsplit(":", 1)[0]
    if not address or host in ("127.0.0.1", "localhost", "::1"):
        # Ray rewrites a loopback address to this machine's network IP, so a head started on loopback
        # would be unreachable and our embedded instance would listen on the network. This variable
        # makes Ray keep a single-node instance on 127.0.0.1.
        if "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ and "ray" in sys.modules:
            raise RuntimeError("configure_ray_env must run before ray is imported")
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address and "RAY_AUTH_MODE" not in os.environ:
        # Ray enables token authentication by default, but a driver given an explicit address does
        # not send the token unless told to: keep authentication on when a token is at hand.
        token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        if os.environ.get("RAY_AUTH_TOKEN") or token.is_file():
            os.environ["RAY_AUTH_MODE"] = "token"


DEFAULT_DASHBOARD_PORT = 8265  # Ray's own default
# Embedded Ray instances started on this machine take turns (a file lock) from choosing the dashboard's
# port until that port is bound: two searches started at the same moment would otherwise both find 8265
# free, and the second Ray would wait a minute and die ("Failed to find a valid port for dashboard").
START_LOCK = Path(tempfile.gettempdir()) / "nas-ray-start.lock"


def start_ray(address: str | None, dashboard_host: str, dashboard_port: int | None, num_cpus: int | None = None
              ) -> dict[str, Any]:
    """Start an embedded Ray (or join a cluster) and say where its dashboard and token are.

    `dashboard_port` None: 8265, or the next free port when another Ray (another search) holds it; a port
    asked for that is taken is refused at once, naming the setting.
    """
    configure_ray_env(address)
    import ray

    if address:
        context = ray.init(address=address, log_to_driver=True)
    else:
        # Everything on loopback: nothing listens on a public address unless the user asks for it.
        loopback = dashboard_host in ("127.0.0.1", "localhost")
        with _start_lock():
            port = free_dashboard_port(dashboard_host, dashboard_port)
            context = ray.init(
                address="local", include_dashboard=True, dashboard_host=dashboard_host,
                dashboard_port=port, num_cpus=num_cpus, log_to_driver=True,
                **({"_node_ip_address": "127.0.0.1"} if loopback else {}),
            )
    url = context.dashboard_url or ""
    token_path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return {"dashboard": f"http://{url}" if url and not url.startswith("http") else url,
            "token_path": token_path, "resources": ray.cluster_resources()}


def free_dashboard_port(host: str, asked: int | None, tries: int = 50) -> int:
    """The dashboard's port: `asked` if free (else refused), or the first free one from 8265 up."""
    if asked is not None:
        if not _port_free(host, asked):
            raise SearchConfigError("dashboard_port", "{port} is in use on {host} (another Ray dashboard, or "
                                    "another search?); give a free port, or leave {dashboard_port} out to take "
                                    "the next free one", port=asked, host=host)
        return asked
    for port in range(DEFAULT_DASHBOARD_PORT, DEFAULT_DASHBOARD_PORT + tries):
        if _port_free(host, port):
            return port
    raise SearchConfigError("dashboard_port", "no free port in {lo}..{hi} on {host}; give one",
                            lo=DEFAULT_DASHBOARD_PORT, hi=DEFAULT_DASHBOARD_PORT + tries - 1, host=host)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


@contextmanager
def _start_lock():
    with open(START_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, also if this process dies
        yield


def gpu_fraction(flops_train: int) -> float:
    """GPU share of one trial from its cost at training resolution: small trials share a GPU (on an
    H100, 4 packed ResNeXt-50 trials at 32x32 gave 3.2x the throughput of one)."""
    if flops_train <= 0.5e9:
        return 0.25
    if flops_train <= 2e9:
        return 0.5
    return 1.0


def alive_node_resources() -> list[dict[str, float]]:
    """Each alive Ray node's resources ([] when Ray is not running): a trial runs on one node, so it can
    never get more than one node has (ray.cluster_resources() is the sum over nodes)."""
    import ray

    if not ray.is_initialized():
        return []
    return [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]


def trial_resources(settings: SearchSettings, cluster: dict[str, float], train_resolution: int,
                    node: dict[str, float] | None = None, nodes: list[dict[str, float]] | None = None):
    """A function config -> resources, so each trial's GPU share follows its architecture.

    Trials are sized by single nodes (`nodes`, default: asked of Ray; `node`: one node's resources),
    never by the cluster's total, which no single node has: CPU-only trials by the CPU-richest node, GPU
    trials by the nodes that have a GPU. A request that no node can host is refused (it would wait forever).
    """
    nodes = [node] if node is not None else (nodes if nodes is not None else alive_node_resources())
    gpus = cluster.get("GPU", 0.0)
    on_gpu = bool(gpus) and settings.gpus_per_trial != 0
    hosts = ([n for n in nodes if n.get("GPU", 0.0) > 0] or nodes) if on_gpu else nodes
    node_cpus = max((n.get("CPU", 0.0) for n in hosts), default=0.0) or cluster.get("CPU", 1.0)
    if settings.cpus_per_trial and settings.cpus_per_trial > node_cpus:
        where = "Ray node with a GPU" if on_gpu else "Ray node"
        raise SearchConfigError("cpus_per_trial", "{cpus:g} but the largest {where} has {node:g} CPUs (trials "
                                "would wait forever)", cpus=settings.cpus_per_trial, where=where, node=node_cpus)
    if settings.gpus_per_trial and settings.gpus_per_trial > gpus:
        raise SearchConfigError("gpus_per_trial", "{share:g} but the Ray cluster has {gpus:g} GPUs (trials would "
                                "wait forever); use {gpus_per_trial} 0 or a cluster with GPUs",
                                share=settings.gpus_per_trial, gpus=gpus)
    cpus = settings.cpus_per_trial or (1.0 if gpus else max(1.0, cluster.get("CPU", 1.0) //
                                                             (settings.max_concurrent or 1)))
    cpus = min(cpus, node_cpus)
    if not gpus or settings.gpus_per_trial == 0:
        return {"cpu": cpus}
    if settings.gpus_per_trial:
        return {"cpu": cpus, "gpu": settings.gpus_per_trial}
    return _GpuShare(cpus, train_resolution)


class _GpuShare:
    """Picklable `config -> resources` callable (Ray pickles the trainable with it)."""

    def __init__(self, cpus: float, train_resolution: int) -> None:
        self.cpus, self.train_resolution = cpus, train_resolution

    def __call__(self, config: dict) -> dict:
        arch = Architecture.from_dict(config["arch"])
        return {"cpu": self.cpus, "gpu": gpu_fraction(complexity(arch, self.train_resolution).flops)}


__all__ = ["configure_ray_env", "gpu_fraction", "alive_node_resources", "start_ray", "trial_resources"]


def skip_callback_telemetry_when_off() -> None:
    """Ray Tune records which callback classes a search uses for its usage statistics even when those
    are turned off, and finding out imports its MLflow, W&B, Comet and Aim integrations: 2.0 s of every
    search driver here, nearly all of it `import mlflow` (cProfile of a 2-trial search, ray 2.60, 2-core
    CPU). With usage statistics off (`RAY_USAGE_STATS_ENABLED=0`, `ray disable-usage-stats`) that record
    is never sent, so the search skips it; with them on, Ray's behaviour is left as it is. Ray has no
    setting for this: the one function is replaced, and nothing happens if a Ray version moved it."""
    try:
        from ray._common.usage.usage_lib import usage_stats_enabled
        from ray.air._internal import usage
    except ImportError:
        return
    if not usage_stats_enabled() and hasattr(usage, "tag_callbacks"):
        usage.tag_callbacks = _no_callback_tags


def _no_callback_tags(callbacks) -> bool:
    return False  # what Ray's tag_callbacks returns when it records nothing
