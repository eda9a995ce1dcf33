"""Memory is a budget, like FLOPs: each trial asks Ray for its estimated peak memory.

search_spaces.training_memory estimates a trial's peak from its architecture, batch and resolution
(parameters, optimizer state, saved activations; benchmarks/memory_estimate.py checks it against the
measured RSS). Each trial asks for that as Ray's `memory` resource, so a node never runs more trials at
once than its memory holds (Ray's memory monitor killed a 20.5 GB trial on a 24 GB machine otherwise).
A search whose trials cannot fit any node is refused before any trial starts, naming what to change.
On a GPU the activations live in GPU memory (the GPU share accounts for them); host memory is the
process and the parameters.
"""

from __future__ import annotations

import math

from search_spaces import Architecture, training_memory, with_io

from .settings import SearchConfigError, SearchSettings

TRAIN_BATCH = 32  # trials.TrainConfig's defaults, used when the search does not set them
EVAL_BATCH = 256
SAMPLE = 64  # proposals whose estimates bound what a search can ask (the grid: all its points)
GB = 1 << 30
# Requests are rounded up to a step of 2^(1/4) (at most +19%): Tune reuses a finished trial's actor only
# for a trial asking exactly the same resources, and per-architecture requests made every trial start a
# new worker process (measured: ~4.5 s between trials of a small search instead of ~0.5 s; the process
# start, imports and torch's first optimizer, ray 2.60, torch 2.13).
STEPS_PER_DOUBLING = 4


def batch_of(settings: SearchSettings) -> int:
    return settings.batch_size or TRAIN_BATCH


def estimate(arch: Architecture, settings: SearchSettings, resolution: int, on_gpu: bool = False,
             ends: tuple[int, int] | None = None):
    """The MemoryEstimate of one trial of `arch` (with the dataset's `ends`: channels, classes)."""
    if ends is not None:
        arch = with_io(arch, in_channels=ends[0], num_classes=ends[1])
    est = training_memory(arch, resolution, batch_of(settings), EVAL_BATCH)
    if on_gpu:
        from dataclasses import replace

        est = replace(est, activations=0)
    return est


def memory_line(archs: list[Architecture], settings: SearchSettings, resolution: int,
                ends: tuple[int, int] | None = None, on_gpu: bool = False) -> str:
    """One line: the range of the trials' estimated peak memory (for --dry-run and the search's start)."""
    totals = sorted(estimate(a, settings, resolution, on_gpu, ends).total for a in archs)
    where = "host memory (activations on the GPU)" if on_gpu else "memory"
    span = f"{totals[0] / GB:.2f}" + (f"-{totals[-1] / GB:.2f}" if totals[-1] != totals[0] else "")
    return (f"{where} per trial (estimate): {span} GB at batch {batch_of(settings)}, {resolution}x{resolution} "
            "(parameters, optimizer state, activations)")


def check_fits(archs: list[Architecture], settings: SearchSettings, resolution: int, node_memory: float,
               ends: tuple[int, int] | None = None, on_gpu: bool = False) -> None:
    """Refuse a search whose smallest trial needs more memory than the largest node offers."""
    if not archs or not node_memory:
        return
    smallest = min((estimate(a, settings, resolution, on_gpu, ends) for a in archs), key=lambda e: e.total)
    if smallest.total > node_memory:
        raise SearchConfigError(
            "batch_size", "trials need at least {need:.1f} GB of memory each at batch {batch}, {r}x{r} (activations "
            "{act:.1f} GB) but the largest Ray node offers {have:.1f} GB; lower {batch_size} or --train-resolution",
            need=smallest.total / GB, batch=batch_of(settings), r=resolution, act=smallest.activations / GB,
            have=node_memory / GB)


class WithMemory:
    """Picklable `config -> resources`: the trial's resources (a dict, or a callable for GPU shares) plus
    its estimated peak memory as Ray's `memory` resource (bytes), capped at the largest node's memory (a
    larger request would wait forever; such a trial runs and, if it does not fit, ends as `oom`)."""

    def __init__(self, base, settings: SearchSettings, resolution: int, node_memory: float,
                 ends: tuple[int, int] | None, on_gpu: bool) -> None:
        self.base, self.settings, self.resolution = base, settings, resolution
        self.node_memory, self.ends, self.on_gpu = node_memory, ends, on_gpu

    def __call__(self, config: dict) -> dict:
        resources = dict(self.base(config) if callable(self.base) else self.base)
        est = estimate(Architecture.from_dict(config["arch"]), self.settings, self.resolution, self.on_gpu,
                       self.ends)
        need = request_step(est.total)
        return {**resources, "memory": need if not self.node_memory else min(need, int(self.node_memory))}


def request_step(estimate_bytes: int) -> int:
    """`estimate_bytes` rounded up to the next step, 2^(k/STEPS_PER_DOUBLING) bytes rounded up to a whole
    MiB, so that trials of similar size ask for one amount and share Tune's reused actors."""
    if estimate_bytes <= 0:
        return 0

    def step(k: int) -> int:
        return -(-int(2 ** (k / STEPS_PER_DOUBLING)) // (1 << 20)) * (1 << 20)

    k = math.floor(math.log2(estimate_bytes) * STEPS_PER_DOUBLING) - 1  # float error: start a step below
    while step(k) < estimate_bytes:
        k += 1
    return step(k)


def largest_node_memory(nodes: list[dict[str, float]]) -> float:
    """The `memory` resource of the node that has most (bytes; 0 when unknown)."""
    return max((n.get("memory", 0.0) for n in nodes), default=0.0)


__all__ = ["WithMemory", "batch_of", "check_fits", "estimate", "largest_node_memory", "memory_line", "request_step"]
