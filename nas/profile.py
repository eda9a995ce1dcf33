"""`python -m nas.profile --space resnext-cifar --threads 2`: measure a space's latency table on this device.

Times every part the space's architectures are made of (the stem, each block configuration at each input
size, the head; with `--budget`, only those of architectures feasible at that FLOPs budget) and stores the
table (search_spaces.latency) in the cache, $NAS_LATENCY_CACHE or ~/.cache/resnext-nas/latency/, keyed by
the device, threads, batch, dtype, resolution and torch version; `--table PATH` writes it elsewhere. It
prints progress with the time left; Ctrl-C keeps what was measured, and a rerun measures only the rest.
`nas.search --latency-budget` and `nas.inspect` read the table (`--latency-table PATH` for one built on
another machine).
"""

from __future__ import annotations

import sys
import time

from search_spaces import (
    SPACES,
    Budget,
    BudgetError,
    LatencyError,
    current_meta,
    feasible_widths,
    get_space,
    measure_table,
    open_table,
    space_keys,
)

from .cli import Parser, UsageError, choice, positive_int, run_main

DEVICES = ("cpu", "cuda")


def _parse_budget(text: str | None, tolerance: float):
    if text is None:
        return None
    try:
        return Budget.parse(text, tolerance)
    except ValueError as exc:
        raise UsageError(f"--budget: {exc}") from None


def _duration(seconds: float) -> str:
    if seconds != seconds:  # nan: nothing measured yet
        return "?"
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes}m{s:02d}s" if minutes else f"{s}s"


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.profile", description=__doc__)
    parser.add_argument("--space", type=choice(list(SPACES)), default="resnext-cifar",
                        help=f"search space ({', '.join(SPACES)}; default resnext-cifar)")
    parser.add_argument("--free", action="store_true", help="the space with C and d free per stage")
    parser.add_argument("--resolution", type=positive_int, default=None,
                        help="input size (default: the space's, 224 or 32)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads torch may use (default: torch's own choice)")
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    parser.add_argument("--device", type=choice(DEVICES), default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--budget", default=None,
                        help="only the parts of architectures feasible at this FLOPs budget (e.g. 4GFLOPs)")
    parser.add_argument("--tolerance", type=float, default=0.1, help="the budget's window (default 0.1)")
    parser.add_argument("--table", "--out", dest="table", default=None,
                        help="table file (default: the cache's file for these settings)")
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed calls per entry (median)")
    parser.add_argument("--warmup", type=positive_int, default=3, help="untimed calls before timing")
    args = parser.parse_args(argv)

    space = get_space(args.space, shared=not args.free)
    if args.resolution:
        space = space.with_resolution(args.resolution)
    budget = _parse_budget(args.budget, args.tolerance)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device: cuda is not available on this machine (torch sees no CUDA device)")
    try:
        keys = space_keys(space, None if budget is None else feasible_widths(space, budget))
    except BudgetError as exc:
        raise UsageError(f"--budget: {exc}") from None
    meta = current_meta(args.device, args.threads, args.batch, "float32", space.resolution)
    try:
        table, path = open_table(meta, args.table)
    except LatencyError as exc:
        raise UsageError(f"--table: {exc}") from None
    todo = len(table.missing(keys))
    print(f"{space.name} at {space.resolution}x{space.resolution}, {meta.device}, {meta.threads} thread(s), "
          f"batch {meta.batch}: {len(keys)} entries, {len(keys) - todo} already measured -> {path}", flush=True)
    every = max(1, todo // 50)
    last = time.monotonic()
    try:
        for p in measure_table(table, path, keys, device=args.device, warmup=args.warmup, repeats=args.repeats):
            now = time.monotonic()
            if p.done % every == 0 or p.done == p.total or now - last > 10:
                print(f"  {p.done}/{p.total} entries, {_duration(p.elapsed_s)} elapsed, ETA {_duration(p.eta_s)}"
                      f"  (last: {p.key} {p.ms:.3f} ms)", flush=True)
                last = now
    except KeyboardInterrupt:
        print(f"interrupted: {len(table.entries)} entries kept in {path}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    print(f"done: {len(table.entries)} entries in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
