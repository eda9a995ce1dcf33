"""Does torch.compile pay for itself within one trial? One real trial, eager then compiled.

    python benchmarks/compile_trial.py [--template 32x4d:3,4,6,3] [--epochs 2] [--train-subset 2000]
        [--val-size 1000] [--batch-size 32] [--threads 2] [--device cpu] [--backend inductor] [--json]

Runs trials.loop.train on Fashion-MNIST with the CPU preset's sizes (nas.search's CPU_PRESET: 2
epochs, 2,000 training and 1,000 validation images, batch 32), once eager and once with
TrainConfig(compile=True), in this process. Compilation happens in the first training step of the
compiled trial, so its first epoch carries the compile time; the later epochs show the per-step gain.
Prints, per run: the trial's wall time, each epoch's seconds and training images/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from search_spaces import template  # noqa: E402
from trials import TrainConfig, load_dataset, train  # noqa: E402


def parse_template(text: str):
    cd, depths = text.split(":")
    c, d = cd.rstrip("d").split("x")
    return template(tuple(int(x) for x in depths.split(",")), int(c), int(d))


def one_trial(arch, config: TrainConfig, dataset) -> dict:
    epochs: list[dict] = []
    t0 = time.perf_counter()
    result = train(arch, config, report=epochs.append, dataset=dataset)
    return {"compile": config.compile, "wall_s": round(time.perf_counter() - t0, 1),
            "status": result["status"], "val_accuracy": round(result["val_accuracy"], 4),
            "epoch_s": [round(e["epoch_seconds"], 1) for e in epochs],
            "train_images_per_s": [round(e["images_per_second"], 1) for e in epochs]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--template", default="32x4d:3,4,6,3")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=2000)
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="inductor")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    arch = parse_template(args.template)
    dataset = load_dataset("fashion-mnist")
    base = dict(dataset="fashion-mnist", epochs=args.epochs, train_subset=args.train_subset,
                val_size=args.val_size, batch_size=args.batch_size, threads=args.threads, device=args.device,
                compile_backend=args.backend)
    runs = [one_trial(arch, TrainConfig(**base, compile=c), dataset) for c in (False, True)]
    info = {"arch": arch.describe(), "torch": torch.__version__, "threads": args.threads, "device": args.device,
            "backend": args.backend, "runs": runs}
    print(json.dumps(info) if args.json else json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
