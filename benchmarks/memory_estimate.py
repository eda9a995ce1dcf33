"""Estimated (search_spaces.training_memory) vs measured peak memory of a trial's training.

Each case trains one architecture for one short epoch with trials.loop.train on the CPU (synthetic
images resized to the case's resolution, batch 32, evaluation batch 256) in a fresh process, and reads
that process's peak RSS (ru_maxrss; with `import ray` first, as in a Ray trial worker). On a GPU (--device
cuda) the measure is torch.cuda.max_memory_allocated plus the process's RSS before training.

    python benchmarks/memory_estimate.py [--device cpu] [--json OUT.json]

Prints one row per case and the error's range; the project asks for +-30% on CPU (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search_spaces import complexity, get_space, propose_many, training_memory  # noqa: E402
from search_spaces.budget import Budget, parse_flops  # noqa: E402

# (space, budget) pairs x resolutions: both stems, small and large models, maps from 1x1 up to 64x64
SPACES = (("resnext-cifar", "120MFLOPs", (16, 32, 48)), ("resnext-imagenet", "1GFLOPs", (32, 64, 112)))
PER_SPACE = 6


def cases(per_space: int = PER_SPACE, seed: int = 3) -> list[tuple[dict, int]]:
    out = []
    for name, budget, resolutions in SPACES:
        space = get_space(name)
        archs = propose_many(space, Budget(parse_flops(budget), 0.5), per_space, "random", seed=seed)
        for i, arch in enumerate(archs):
            out.append((arch.to_dict(), resolutions[i % len(resolutions)]))
    return out


CHILD = r"""
import json, resource, sys
import ray  # a trial worker has Ray imported
import torch
from search_spaces import Architecture
from trials import TrainConfig, train
arch = Architecture.from_dict(json.loads(sys.argv[1]))
res, device = int(sys.argv[2]), sys.argv[3]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
cfg = TrainConfig(dataset="synthetic", epochs=1, batch_size=32, train_subset=96, val_size=256,
                  train_resolution=res, threads=2, device=device, download=False)
train(arch, cfg, report=lambda m: None)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if device.startswith("cuda"):
    peak = base + torch.cuda.max_memory_allocated()
print(json.dumps({"peak": peak, "base": base}))
"""


def measure(arch: dict, resolution: int, device: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(arch), str(resolution), device],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-space", type=int, default=PER_SPACE)
    parser.add_argument("--seed", type=int, default=3, help="which random architectures (3: the fitting set)")
    parser.add_argument("--json")
    args = parser.parse_args()
    from search_spaces import Architecture

    rows = []
    print(f"{'architecture':<34} {'res':>4} {'act (M)':>8} {'estimate':>9} {'measured':>9} {'error':>7}")
    for arch_dict, res in cases(args.per_space, args.seed):
        arch = Architecture.from_dict(arch_dict)
        # trials adapt the ends to the dataset (synthetic: 3 channels, 10 classes), as a search's trial does
        from search_spaces import with_io

        arch = with_io(arch, in_channels=3, num_classes=10)
        est = training_memory(arch, res, 32, 256)
        got = measure(arch.to_dict(), res, args.device)
        err = est.total / got["peak"] - 1
        rows.append({"arch": arch.describe(), "stem": arch.stem, "resolution": res,
                     "activations": complexity(arch, res).activations, "params": complexity(arch, res).params,
                     "estimate": est.total, "measured": got["peak"], "base": got["base"], "error": err})
        print(f"{arch.describe():<34} {res:>4} {rows[-1]['activations'] / 1e6:>8.2f} "
              f"{est.total / 2**20:>8.0f}M {got['peak'] / 2**20:>8.0f}M {100 * err:>+6.1f}%", flush=True)
    errors = [r["error"] for r in rows]
    print(f"{len(rows)} cases: error {100 * min(errors):+.1f}% .. {100 * max(errors):+.1f}%, "
          f"mean |error| {100 * sum(map(abs, errors)) / len(errors):.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
