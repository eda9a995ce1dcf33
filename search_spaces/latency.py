"""A latency table per device, and the predictor built on it: latency(arch) = stem + sum(blocks) + head.

Why a table and not FLOPs: a grouped convolution does not cost time in proportion to its FLOPs (on a
2-core CPU the capacity-matched ResNeXt-50 points, all ~4.1 GFLOPs, take 84-110 ms, not monotonic in C;
issue 23). The approach is ProxylessNAS'/FBNet's per-block tables, checked the way nn-Meter is
(benchmarks/latency_predictor.py; the numbers are in docs/performance.md, "Latency predictor").

What a table holds: for one device, thread count, batch size, dtype, resolution and torch version (the
table's `meta`, which is also its file name in the cache), the median time in milliseconds of every part an
architecture is made of, each keyed by what fixes its cost:
    stem:STEM,IN_CHANNELS,RESOLUTION
    block:C_IN,C_OUT,CARDINALITY,GROUP_WIDTH,STRIDE,IN_HW   (a projection shortcut follows from these)
    head:C_IN,IN_HW,NUM_CLASSES
The parts are model.py's own modules (the Bottleneck, and the stem and head taken out of a built ResNeXt),
so the table times exactly what `build_model` runs. The per-call cost of the timing loop itself (an empty
module timed the same way) is subtracted from every entry.

The table is written as entries are measured (`measure_table`), so an interrupted profile keeps what it
measured and a rerun skips it. torch is imported only when something is timed.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .architecture import Architecture
from .complexity import STEM_CHANNELS, block_cost, complexity, conv_out
from .sampling import AdditiveCost
from .spaces import SearchSpace

TABLE_FORMAT = "resnext-latency/1"
CACHE_ENV = "NAS_LATENCY_CACHE"
DEFAULT_CACHE = Path("~/.cache/resnext-nas/latency")
SAVE_EVERY_S = 2.0
# Passes per entry, the smallest median kept. 2 on resnext-cifar (docs/performance.md): Kendall tau 0.47 ->
# 0.59 but the level 18% under the loaded machine's models (the neighbours' load is in the model's timing
# and no longer in the table's): 1 keeps the table measured like the models it predicts.
PASSES = 1  # rewrite the table at most this often while measuring (and always at the end)


class LatencyError(ValueError):
    """A table that cannot be used (wrong file, missing entries); the message says which and why."""


# --- what an architecture is made of ---------------------------------------------------------------


def stem_key(stem: str, in_channels: int, resolution: int) -> str:
    return f"stem:{stem},{in_channels},{resolution}"


def block_key(c_in: int, c_out: int, cardinality: int, group_width: int, stride: int, in_hw: int) -> str:
    return f"block:{c_in},{c_out},{cardinality},{group_width},{stride},{in_hw}"


def head_key(c_in: int, in_hw: int, num_classes: int) -> str:
    return f"head:{c_in},{in_hw},{num_classes}"


def parse_key(key: str) -> tuple[str, tuple]:
    kind, _, rest = key.partition(":")
    fields = rest.split(",")
    if kind == "stem":
        return kind, (fields[0], int(fields[1]), int(fields[2]))
    if kind in ("block", "head"):
        return kind, tuple(int(f) for f in fields)
    raise LatencyError(f"unknown table entry {key!r}")


def architecture_keys(arch: Architecture, resolution: int) -> list[str]:
    """The table entries whose sum is the architecture's predicted latency (with repeats)."""
    stem_hw = complexity(arch, resolution).parts[0].out_resolution
    keys, c_in, hw = [stem_key(arch.stem, arch.in_channels, resolution)], STEM_CHANNELS, stem_hw
    for i, stage in enumerate(arch.stages):
        for b in range(stage.depth):
            stride = 2 if (b == 0 and i > 0) else 1
            keys.append(block_key(c_in, stage.out_channels, stage.cardinality, stage.group_width, stride, hw))
            hw, c_in = conv_out(hw, 3, stride, 1), stage.out_channels
    keys.append(head_key(c_in, hw, arch.num_classes))
    return keys


def space_keys(space: SearchSpace, allowed: Callable[[int, int, int], np.ndarray] | None = None) -> list[str]:
    """Every distinct part the space's architectures can be made of at its resolution, cheapest block first.

    `allowed(base_out, stage, cardinality)` may return the sorted stage-1 widths d to keep for that
    choice (a FLOPs budget's: `budget_widths`); None keeps the space's whole width range.
    """
    resolution = space.resolution
    probe = space.architecture(space.cardinalities[0], space.width_range[0],
                               [lo for lo, _ in space.depth_ranges], space.base_widths[0])
    sizes = [p.out_resolution for p in complexity(probe, resolution).parts]  # stem, stage1..N, head
    keys = {stem_key(space.stem, space.in_channels, resolution): 0}
    all_widths = np.arange(space.width_range[0], space.width_range[1] + 1)
    for base in space.base_widths:
        c_in = STEM_CHANNELS
        for i, (_lo, hi) in enumerate(space.depth_ranges):
            out, hw = base * 2**i, sizes[i]
            for c in space.cardinalities:
                widths = all_widths if allowed is None else allowed(base, i, c)
                for d in widths:
                    gw = int(d) * 2**i
                    first, out_hw = block_cost(c_in, out, c, gw, 1 if i == 0 else 2, hw)
                    keys[block_key(c_in, out, c, gw, 1 if i == 0 else 2, hw)] = first.flops
                    if hi > 1:
                        repeat, _ = block_cost(out, out, c, gw, 1, out_hw)
                        keys[block_key(out, out, c, gw, 1, out_hw)] = repeat.flops
            c_in = out
        keys[head_key(c_in, sizes[-2], space.num_classes)] = 0
    return sorted(keys, key=lambda k: (keys[k], k))


# --- the table ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableMeta:
    """What a table's times hold for: they are another machine's, or another setting's, otherwise."""

    device: str  # "cpu: <processor>" or the CUDA device's name
    threads: int
    batch: int
    dtype: str
    resolution: int
    torch: str

    def file_name(self) -> str:
        device = re.sub(r"[^A-Za-z0-9]+", "-", self.device).strip("-").lower()
        return (f"{device}-t{self.threads}-b{self.batch}-{self.dtype}-r{self.resolution}"
                f"-torch{self.torch.replace('+', '-')}.json")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


@dataclass
class LatencyTable:
    meta: TableMeta
    entries: dict[str, float]  # milliseconds, per key
    overhead_ms: float = 0.0  # the timing loop's own per-call cost, already subtracted from the entries

    def to_dict(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, **asdict(self.meta), "overhead_ms": self.overhead_ms,
                "entries": dict(sorted(self.entries.items()))}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)  # a reader (or an interrupted writer) never sees half a table
        return path

    def missing(self, keys: Iterable[str]) -> list[str]:
        return sorted(set(keys) - set(self.entries))

    def predict(self, arch: Architecture) -> float:
        """Predicted latency in milliseconds; LatencyError naming what the table lacks."""
        keys = architecture_keys(arch, self.meta.resolution)
        missing = self.missing(keys)
        if missing:
            raise LatencyError(f"the latency table has no entry for {len(missing)} part(s) of {arch.describe()} "
                               f"(first: {missing[0]}); run python -m nas.profile for this space")
        return float(sum(self.entries[k] for k in keys))

    def has(self, arch: Architecture) -> bool:
        return not self.missing(architecture_keys(arch, self.meta.resolution))


def load_table(path: str | Path) -> LatencyTable:
    """Read a resnext-latency/1 table; LatencyError `PATH: why` for anything that is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LatencyError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise LatencyError(f"{path}: not a readable JSON latency table ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        raise LatencyError(f"{path}: not a latency table (expected format {TABLE_FORMAT!r})")
    try:
        meta = TableMeta(**{f: data[f] for f in TableMeta.__dataclass_fields__})
        entries = {str(k): float(v) for k, v in data["entries"].items()}
        overhead = float(data.get("overhead_ms", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise LatencyError(f"{path}: malformed latency table ({exc!r})") from None
    return LatencyTable(meta, entries, overhead)


def open_table(meta: TableMeta, path: str | Path | None = None) -> tuple[LatencyTable, Path]:
    """The table for `meta` at `path` (default: the cache's file for it), or a new empty one."""
    path = Path(path) if path is not None else cache_dir() / meta.file_name()
    if path.exists():
        table = load_table(path)
        if table.meta != meta:
            raise LatencyError(f"{path}: holds times for {table.meta}, not {meta}")
        return table, path
    return LatencyTable(meta, {}), path


def time_per_gflop(table: LatencyTable) -> dict[int, tuple[float, int]]:
    """Measured milliseconds per GFLOP of the table's blocks, per cardinality: (total ms / total GFLOPs of
    its blocks, how many blocks). Equal FLOPs do not cost equal time: grouped 3x3 convolutions run at
    another speed than dense ones, so this ratio differs between cardinalities on a device."""
    ms: dict[int, float] = {}
    gflops: dict[int, float] = {}
    count: dict[int, int] = {}
    for key, value in table.entries.items():
        kind, fields = parse_key(key)
        if kind != "block":
            continue
        c_in, c_out, cardinality, group_width, stride, in_hw = fields
        cost, _ = block_cost(c_in, c_out, cardinality, group_width, stride, in_hw)
        ms[cardinality] = ms.get(cardinality, 0.0) + value
        gflops[cardinality] = gflops.get(cardinality, 0.0) + cost.flops / 1e9
        count[cardinality] = count.get(cardinality, 0) + 1
    return {c: (ms[c] / gflops[c], count[c]) for c in sorted(ms) if gflops[c] > 0}


def latency_cost(table: LatencyTable, space: SearchSpace, low_ms: float, high_ms: float) -> AdditiveCost:
    """The table as the feasible sampler's second cost, with the window [low_ms, high_ms]: every (base, C, d)
    of the space, inf where the table lacks a part (the sampler never proposes what it cannot predict)."""
    if table.meta.resolution != space.resolution:
        raise LatencyError(f"the latency table was measured at {table.meta.resolution}x{table.meta.resolution}, "
                           f"the space's budget is at {space.resolution}x{space.resolution}")
    probe = space.architecture(space.cardinalities[0], space.width_range[0],
                               [lo for lo, _ in space.depth_ranges], space.base_widths[0])
    sizes = [p.out_resolution for p in complexity(probe, space.resolution).parts]
    widths = range(space.width_range[0], space.width_range[1] + 1)
    get = table.entries.get
    terms = {}
    for base in space.base_widths:
        c_in, stages = STEM_CHANNELS, []
        for i in range(space.num_stages):
            out, hw, stride = base * 2**i, sizes[i], 1 if i == 0 else 2
            out_hw = sizes[i + 1]
            first = np.array([[get(block_key(c_in, out, c, d * 2**i, stride, hw), np.inf) for d in widths]
                              for c in space.cardinalities])
            repeat = np.array([[get(block_key(out, out, c, d * 2**i, 1, out_hw), np.inf) for d in widths]
                               for c in space.cardinalities])
            stages.append((first, repeat))
            c_in = out
        fixed = (get(stem_key(space.stem, space.in_channels, space.resolution), np.inf)
                 + get(head_key(c_in, sizes[-2], space.num_classes), np.inf))
        terms[base] = (float(fixed), tuple(stages))
    return AdditiveCost("latency", "ms", float(low_ms), float(high_ms), terms)


# --- measuring ----------------------------------------------------------------------------------------


def current_meta(device: str = "cpu", threads: int | None = None, batch: int = 1, dtype: str = "float32",
                 resolution: int = 224) -> TableMeta:
    """The meta of tables measured here, now (sets torch's CPU thread count when `threads` is given)."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = "cpu: " + _cpu_name()
    return TableMeta(name, torch.get_num_threads(), batch, dtype, resolution, torch.__version__)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def time_module(module, x, *, device: str = "cpu", warmup: int = 3, repeats: int = 10,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Median wall time of `module(x)` in milliseconds, after `warmup` untimed calls (inference mode)."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        sync()
        times = []
        for _ in range(repeats):
            start = clock()
            module(x)
            sync()
            times.append(clock() - start)
    return 1000.0 * statistics.median(times)


def part_module(key: str, dtype: str = "float32"):
    """The module a key times and its input's shape (without batch): model.py's own modules."""
    from torch import nn

    from .model import Bottleneck, ResNeXt

    kind, f = parse_key(key)
    if kind == "block":
        c_in, c_out, c, gw, stride, hw = f
        return Bottleneck(c_in, c_out, c, gw, stride), (c_in, hw, hw)
    if kind == "stem":
        stem, in_channels, resolution = f
        model = ResNeXt(Architecture(stem, in_channels, 1, ({"depth": 1, "cardinality": 1, "group_width": 1,
                                                              "out_channels": 1},)))
        return nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool), (in_channels, resolution, resolution)
    c_in, hw, num_classes = f
    model = ResNeXt(Architecture("cifar", 1, num_classes, ({"depth": 1, "cardinality": 1, "group_width": 1,
                                                            "out_channels": c_in},)))
    return nn.Sequential(model.avgpool, nn.Flatten(1), model.fc), (c_in, hw, hw)


# A block timed alone, call after call, finds its weights in the core's cache; inside the model the blocks
# before it have evicted them. So a block is timed as `copies` instances with their own weights, each
# called on the input in turn, at least CONTEXT_BYTES of weights in all (twice the 2 x 1 MiB L2 of the
# machine the predictor was checked on), and the time divided by the copies. Measured on resnext-cifar at
# 1 GFLOPs (benchmarks/latency_predictor.py): alone, blocks summed to 0.64-0.9x the model's time.
CONTEXT_BYTES = 4 * 2**20
MAX_COPIES = 8


class _InTurn:
    """Call each module on the same input; the result is the last one's."""

    def __init__(self, modules) -> None:
        self.modules = modules

    def __call__(self, x):
        for m in self.modules:
            out = m(x)
        return out


def time_part(key: str, meta: TableMeta, device: str = "cpu", **timing: Any) -> float:
    import torch

    dtype = getattr(torch, meta.dtype)
    module, shape = part_module(key)
    weight_bytes = max(1, sum(p.numel() * p.element_size() for p in module.parameters()))
    copies = min(MAX_COPIES, max(1, -(-CONTEXT_BYTES // weight_bytes))) if key.startswith("block:") else 1
    modules = [module] + [part_module(key)[0] for _ in range(copies - 1)]
    modules = [m.to(device=device, dtype=dtype).eval() for m in modules]
    x = torch.randn(meta.batch, *shape, device=device, dtype=dtype)
    return time_module(_InTurn(modules), x, device=device, **timing) / copies


def loop_overhead(meta: TableMeta, device: str = "cpu", **timing: Any) -> float:
    """The timing loop's per-call cost (an empty module's median): subtracted from every entry, since the
    model pays each part's work but not one extra timed call per part."""
    import torch
    from torch import nn

    x = torch.zeros(meta.batch, 1, device=device)
    return time_module(nn.Identity(), x, device=device, **timing)


@dataclass(frozen=True)
class Progress:
    done: int  # entries measured in this run so far
    total: int  # entries this run measures (those already in the table are skipped)
    key: str
    ms: float
    elapsed_s: float

    @property
    def eta_s(self) -> float:
        return self.elapsed_s / self.done * (self.total - self.done) if self.done else float("nan")


def measure_table(table: LatencyTable, path: str | Path, keys: Iterable[str], *, device: str = "cpu",
                  timer: Callable[[str], float] | None = None,
                  save_every_s: float = SAVE_EVERY_S, **timing: Any) -> Iterator[Progress]:
    """Measure the keys the table lacks, one by one, yielding progress; the table is saved every
    `save_every_s` seconds and when the generator ends or is interrupted (a rerun resumes).
    `timer(key) -> ms` replaces the real measurement (tests)."""
    todo = table.missing(keys)
    if timer is None:
        if not table.entries:
            table.overhead_ms = loop_overhead(table.meta, device, **timing)

        def timer(key: str) -> float:
            # another process's burst only ever adds time: with PASSES > 1 the smallest median is kept
            best = min(time_part(key, table.meta, device, **timing) for _ in range(PASSES))
            return max(0.0, best - table.overhead_ms)

    start = last_save = time.monotonic()
    try:
        for n, key in enumerate(todo, 1):
            table.entries[key] = float(timer(key))
            now = time.monotonic()
            if now - last_save >= save_every_s:
                table.save(path)
                last_save = now
            yield Progress(n, len(todo), key, table.entries[key], now - start)
    finally:
        table.save(path)


def measure_architecture(arch: Architecture, meta: TableMeta, device: str = "cpu", **timing: Any) -> float:
    """The whole model's median latency in milliseconds, measured like the table's entries."""
    import torch

    from .model import build_model

    dtype = getattr(torch, meta.dtype)
    model = build_model(arch).to(device=device, dtype=dtype).eval()
    x = torch.randn(meta.batch, arch.in_channels, meta.resolution, meta.resolution, device=device, dtype=dtype)
    return time_module(model, x, device=device, **timing)


__all__ = [
    "CACHE_ENV", "LatencyError", "LatencyTable", "Progress", "TABLE_FORMAT", "TableMeta", "architecture_keys",
    "cache_dir", "current_meta", "latency_cost", "load_table", "measure_architecture", "measure_table", "open_table",
    "space_keys", "time_module",
]
