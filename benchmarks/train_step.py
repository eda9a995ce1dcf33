"""Training-step throughput of one architecture: the trial's step against a plain eager reference.

    python benchmarks/train_step.py [--arch ARCH.json | --template 32x4d:3,4,6,3 ...] [--batch-size 64 ...]
        [--resolution 28] [--channels 1] [--classes 10] [--device auto] [--threads N] [--compile]
        [--end-to-end N [--dataset fashion-mnist] [--data-dir DIR]] [--json]

The steps run in the same process on the same model and batch (synthetic inputs on the device):
  reference: fp32 weights and activations, default (NCHW) layout, eager, torch.optim.SGD defaults;
  trial:     what trials.loop does: on CUDA channels_last, bf16 autocast, fused SGD, eager
             (on the CPU the loop keeps fp32 NCHW, so the two differ only in the fused optimiser);
  compiled:  (--compile) the trial step with torch.compile'd model.
It prints images/s, TFLOP/s (analytic FLOPs x 2 per multiply-add x 3 for forward+backward) and, on a
known GPU, MFU against its dense bf16 peak. --end-to-end N also runs one real epoch of trials.loop
(N training images of --dataset, evaluation included) and compares its training throughput with the
trial step's. --template and --batch-size may be repeated: every combination is measured, one line
(one JSON object with --json, flushed at once, so a run cut short keeps what it measured) each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from search_spaces import build_model, complexity, load_architecture, template, with_io  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, for MFU.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}


def parse_template(text: str):
    cd, depths = text.split(":")
    c, d = cd.rstrip("d").split("x")
    return template(tuple(int(x) for x in depths.split(",")), int(c), int(d))


def time_steps(step, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def make_step(model, x, y, device: torch.device, optimised: bool):
    params = list(model.parameters())
    kwargs = {"fused": True} if optimised and device.type == "cuda" else {}
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4, **kwargs)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=optimised and cuda) if cuda else \
        torch.autocast("cpu", enabled=False)

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", help="resnext-arch/1 JSON file")
    p.add_argument("--template", action="append",
                   help="CxDd:depths, used when --arch is absent (repeatable; default 32x4d:3,4,6,3)")
    p.add_argument("--batch-size", type=int, action="append", help="repeatable; default 64")
    p.add_argument("--resolution", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="also time the trial step with torch.compile")
    p.add_argument("--end-to-end", type=int, default=0, metavar="N",
                   help="also time one real epoch of N training images through trials.loop")
    p.add_argument("--dataset", default="fashion-mnist", help="--end-to-end: the dataset (trials.datasets)")
    p.add_argument("--data-dir", help="--end-to-end: where the dataset's files are")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    archs = [load_architecture(args.arch)] if args.arch else \
        [parse_template(t) for t in (args.template or ["32x4d:3,4,6,3"])]
    for arch in archs:
        for batch_size in args.batch_size or [64]:
            summary = measure(with_io(arch, in_channels=args.channels, num_classes=args.classes), batch_size,
                              device, args)
            if args.json:
                print(json.dumps(summary), flush=True)
            else:
                for k, v in summary.items():
                    print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
                print(flush=True)
    return 0


def measure(arch, batch_size: int, device: torch.device, args) -> dict:
    """One architecture at one batch size: reference, trial (and compiled) steps, optional real epoch."""
    macs = complexity(arch, args.resolution).flops
    flop_per_image = 2 * 3 * macs  # multiply-add = 2 FLOPs; backward ~ 2x forward

    torch.manual_seed(0)
    x = torch.randn(batch_size, args.channels, args.resolution, args.resolution, device=device)
    y = torch.randint(0, args.classes, (batch_size,), device=device)
    variants = [("reference", False, False), ("trial", True, False)]
    if args.compile:
        variants.append(("compiled", True, True))
    results = {}
    for name, optimised, compiled in variants:
        torch.manual_seed(0)
        model = build_model(arch).to(device)
        inp = x
        if optimised and device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
            inp = x.contiguous(memory_format=torch.channels_last)
        if compiled:
            model = torch.compile(model)
        model.train()
        t0 = time.perf_counter()
        seconds = time_steps(make_step(model, inp, y, device, optimised), args.steps, args.warmup, device)
        ips = args.steps * batch_size / seconds
        results[name] = {"images_per_second": ips, "tflops": ips * flop_per_image / 1e12,
                         "wall_seconds": time.perf_counter() - t0}
        del model
    peak = None
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    for r in results.values():
        r["mfu"] = r["tflops"] / peak if peak else None
    summary = {
        "arch": arch.describe(), "batch_size": batch_size, "resolution": args.resolution,
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({torch.get_num_threads()} threads)"),
        "torch": torch.__version__, "gmacs_per_image": macs / 1e9, "gflop_per_image_train": flop_per_image / 1e9,
        **{f"{k}_{m}": v for k, r in results.items() for m, v in r.items()},
        "speedup": results["trial"]["images_per_second"] / results["reference"]["images_per_second"],
    }
    if "compiled" in results:
        summary["speedup_compiled"] = (results["compiled"]["images_per_second"]
                                       / results["reference"]["images_per_second"])
    if args.end_to_end:
        from trials import TrainConfig, train

        cfg = TrainConfig(dataset=args.dataset, data_dir=args.data_dir, epochs=1, batch_size=batch_size,
                          train_subset=args.end_to_end, val_size=max(1, args.end_to_end // 5),
                          device=str(device), train_resolution=None if args.resolution == 28 else args.resolution)
        m = train(arch, cfg)
        summary["epoch_train_images_per_second"] = m["images_per_second"]
        summary["epoch_images_per_second_with_eval"] = args.end_to_end / m["epoch_seconds"]
        summary["epoch_vs_step"] = m["images_per_second"] / results["trial"]["images_per_second"]
    return summary

if __name__ == "__main__":
    sys.exit(main())
