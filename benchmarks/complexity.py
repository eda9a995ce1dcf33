"""Analytic complexity vs fvcore (an independent FLOP counter that traces the built model).

Checks that both counts agree exactly on the reference networks and on random architectures of the
search spaces, and how much faster the analytic count is (it builds no model and needs no torch).

    python benchmarks/complexity.py [--random 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import random
import time

import torch
from fvcore.nn import FlopCountAnalysis

from search_spaces import Budget, build_model, complexity, get_space, propose_many, template

REFERENCES = {
    "resnet50": (template((3, 4, 6, 3), 1, 64), 224),
    "resnext50_32x4d": (template((3, 4, 6, 3), 32, 4), 224),
    "resnext101_32x8d": (template((3, 4, 23, 3), 32, 8), 224),
    "resnext29_8x64d (CIFAR)": (template((3, 3, 3), 8, 64, num_classes=10), 32),
}


def fvcore_flops(arch, resolution: int) -> tuple[int, float]:
    start = time.perf_counter()
    model = build_model(arch).eval()
    counter = FlopCountAnalysis(model, torch.zeros(1, arch.in_channels, resolution, resolution))
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = counter.by_operator()
    flops = by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0)
    return flops, time.perf_counter() - start


def analytic(arch, resolution: int, repeat: int = 200) -> tuple[int, float]:
    start = time.perf_counter()
    for _ in range(repeat):
        flops = complexity(arch, resolution).flops
    return flops, (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--random", type=int, default=20, help="random architectures from the spaces")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cases = list(REFERENCES.items())
    rng = random.Random(args.seed)
    for i in range(args.random):
        space_name, budget = rng.choice([("resnext-imagenet", "4GFLOPs"), ("resnext-cifar", "1GFLOPs")])
        space = get_space(space_name, shared=rng.random() < 0.5)
        (arch,) = propose_many(space, Budget.parse(budget), 1, "random", seed=rng.randrange(10**6))
        cases.append((f"random {i + 1} ({space_name})", (arch, space.resolution)))
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, python {platform.python_version()}, {cpu}")
    print(f"{'architecture':<34} {'analytic FLOPs':>16} {'fvcore FLOPs':>16} {'equal':>5} "
          f"{'analytic':>10} {'fvcore':>9} {'speed-up':>9}")
    ratios, equal = [], 0
    for name, (arch, resolution) in cases:
        a_flops, a_time = analytic(arch, resolution)
        f_flops, f_time = fvcore_flops(arch, resolution)
        equal += a_flops == f_flops
        ratios.append(f_time / a_time)
        print(f"{name[:34]:<34} {a_flops:>16,} {f_flops:>16,} {'yes' if a_flops == f_flops else 'NO':>5} "
              f"{a_time * 1e6:>8.0f}us {f_time:>8.2f}s {f_time / a_time:>8.0f}x")
    ratios.sort()
    print(f"\n{equal}/{len(cases)} equal; speed-up min {ratios[0]:.0f}x, median {ratios[len(ratios) // 2]:.0f}x")


if __name__ == "__main__":
    main()
