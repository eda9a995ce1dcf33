"""`python -m nas.inspect ARCH.json [--resolution N] [--batch-size B] [--json]`: what an architecture costs,
per stage, the estimated peak memory of training it, and its predicted latency on this machine when a
latency table is there (`python -m nas.profile`; `--latency-table PATH` for another); `--measure` times it."""

from __future__ import annotations

import json

from search_spaces import (
    ArchitectureError,
    LatencyError,
    cache_dir,
    complexity,
    current_meta,
    format_flops,
    load_architecture,
    load_table,
    measure_architecture,
    open_table,
    training_memory,
)

from .cli import Parser, UsageError, positive_int, run_main

DEFAULT_RESOLUTION = {"imagenet": 224, "cifar": 32}


def format_table(arch, cx) -> str:
    lines = [
        f"{arch.describe()}  stem={arch.stem}  in_channels={arch.in_channels}  "
        f"classes={arch.num_classes}  at {cx.resolution}x{cx.resolution}",
        f"{'part':<8} {'blocks':>6} {'C x d':>10} {'out':>6} {'map':>5} {'FLOPs':>16} {'params':>12} "
        f"{'activations':>12}",
    ]
    for part in cx.parts:
        if part.name.startswith("stage"):
            s = arch.stages[int(part.name[5:]) - 1]
            blocks, cd, out = str(s.depth), f"{s.cardinality}x{s.group_width}d", str(s.out_channels)
        else:
            blocks, cd, out = "", "", str(64 if part.name == "stem" else arch.num_classes)
        lines.append(f"{part.name:<8} {blocks:>6} {cd:>10} {out:>6} {part.out_resolution:>5} "
                     f"{part.flops:>16,} {part.params:>12,} {part.activations:>12,}")
    lines.append(f"{'total':<8} {sum(arch.depths):>6} {'':>10} {'':>6} {'':>5} {cx.flops:>16,} "
                 f"{cx.params:>12,} {cx.activations:>12,}")
    lines.append(f"= {format_flops(cx.flops)}, {cx.params / 1e6:.2f} M params, "
                 f"{cx.activations / 1e6:.2f} M activations")
    return "\n".join(lines)


def cost_fields(arch, cx) -> dict:
    """The --json cost keys in the project's one vocabulary (README, "FLOPs and parameters"):
    `flops_nominal`/`params_nominal` are the file's architecture at its stem's budget resolution (224 or
    32: what a budget counts; for best.json, the same figures as trials.csv); at another --resolution,
    `flops_trained`/`params_trained` are the model the file builds there (an export's arch.json, which
    has the dataset's channels and classes, at the run's training resolution: what the trial trained).
    `resolution`, `activations` and `parts` are at --resolution."""
    nominal_resolution = DEFAULT_RESOLUTION[arch.stem]
    nominal = cx if cx.resolution == nominal_resolution else complexity(arch, nominal_resolution)
    out = {k: v for k, v in cx.as_dict().items() if k not in ("flops", "params")}
    out.update(nominal_resolution=nominal_resolution, flops_nominal=nominal.flops, params_nominal=nominal.params)
    if cx.resolution != nominal_resolution:
        out.update(flops_trained=cx.flops, params_trained=cx.params)
    return out


def latency_of(arch, resolution: int, args) -> dict:
    """Predicted latency (from the table, when there is one that covers the architecture) and, with
    --measure, the measured one."""
    if not (args.latency_table or args.measure or any(cache_dir().glob("*.json"))):
        return {}  # no table anywhere: torch (which current_meta imports) is not needed
    meta = current_meta("cpu", args.threads, 1, "float32", resolution)
    out: dict = {"latency_device": meta.device, "latency_threads": meta.threads}
    try:
        table = load_table(args.latency_table) if args.latency_table else open_table(meta)[0]
        if table.entries:
            out["latency_ms_predicted"] = round(table.predict(arch), 3)
    except LatencyError as exc:
        if args.latency_table:
            raise UsageError(f"--latency-table: {exc}") from None
        out["latency_note"] = f"no predicted latency: {exc}"
    if args.measure:
        out["latency_ms_measured"] = round(measure_architecture(arch, meta, warmup=3, repeats=10), 3)
    return out if len(out) > 2 else {}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m nas.inspect", description=__doc__)
    parser.add_argument("arch", help="architecture JSON file (resnext-arch/1)")
    parser.add_argument("--resolution", type=positive_int, default=None,
                        help="input size (default: 224 for the imagenet stem, 32 for the cifar stem)")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="training batch for the memory estimate (default 32, the trials')")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: flops_nominal/params_nominal at the stem's budget resolution "
                        "(224 imagenet, 32 cifar), and flops_trained/params_trained at another --resolution")
    parser.add_argument("--latency-table", default=None, metavar="PATH",
                        help="latency table (default: the cache's for this machine, batch 1, --threads)")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--measure", action="store_true",
                        help="also measure the latency here (batch 1, median of 10 calls after 3 warm-up calls)")
    args = parser.parse_args(argv)
    try:
        arch = load_architecture(args.arch)
    except ArchitectureError as exc:
        raise UsageError(str(exc)) from None
    resolution = args.resolution or DEFAULT_RESOLUTION[arch.stem]
    cx = complexity(arch, resolution)
    memory = training_memory(arch, resolution, args.batch_size)
    latency = latency_of(arch, resolution, args)
    if args.json:
        print(json.dumps({"name": arch.describe(), "arch": arch.to_dict(), **cost_fields(arch, cx),
                          "training_memory": {"batch_size": args.batch_size, "bytes": memory.total,
                                              "process": memory.process, "parameters": memory.parameters,
                                              "activations": memory.activations}, **latency}))
    else:
        print(format_table(arch, cx))
        print(f"training memory at batch {args.batch_size} (estimate, CPU): {memory.describe()}")
        if "latency_ms_predicted" in latency or "latency_ms_measured" in latency:
            where = latency["latency_device"]
            for key, what in (("latency_ms_predicted", "predicted"), ("latency_ms_measured", "measured")):
                if key in latency:
                    print(f"latency at batch 1 on {where} ({latency['latency_threads']} threads), {what}: "
                          f"{latency[key]:.1f} ms")
        if "latency_note" in latency:
            print(latency["latency_note"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
