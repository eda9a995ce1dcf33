"""How well the latency table predicts a whole model's latency (issue 23; nn-Meter's test, on this machine).

For each space: N random architectures feasible at a FLOPs budget (the project's FeasibleSampler, random
sampler), the table entries they are made of measured as `nas.profile` measures them (search_spaces.latency),
then every whole model measured the same way (warm-up, threads pinned, median of repeated calls), and
compared: the fraction of predictions within +-10% and +-20% of the measurement, the mean and worst error,
and Kendall's tau between the two orders; and, as the noise floor of that comparison on this machine, the
same numbers for the model measured a second time right after the first. docs/performance.md ("Latency
predictor") has the numbers; docs/runs/latency-predictor-*.csv/json the rows.

    flock /tmp/nas-cpu.lock python benchmarks/latency_predictor.py --threads 2 --out /tmp/latency-bench

Nothing else should run meanwhile (the lock above keeps the project's own tests and benchmarks out); the
table is written to OUT/ and reused by a rerun (only what it lacks is measured again).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

from search_spaces import (
    Budget,
    LatencyTable,
    architecture_keys,
    complexity,
    current_meta,
    get_space,
    measure_architecture,
    measure_table,
    open_table,
    propose_many,
)

DEFAULT_SPECS = ("resnext-cifar:1GFLOPs:65", "resnext-imagenet:4GFLOPs:40")


def kendall_tau(a: list[float], b: list[float]) -> float:
    try:
        from scipy.stats import kendalltau

        return float(kendalltau(a, b).statistic)
    except ImportError:  # tau-a by counting pairs (no ties expected in milliseconds)
        n, s = len(a), 0
        for i in range(n):
            for j in range(i + 1, n):
                s += ((a[i] > a[j]) - (a[i] < a[j])) * ((b[i] > b[j]) - (b[i] < b[j]))
        return 2 * s / (n * (n - 1))


def summary(rows: list[dict]) -> dict:
    errors = [r["predicted_ms"] / r["measured_ms"] - 1 for r in rows]
    again = [r["measured_again_ms"] / r["measured_ms"] - 1 for r in rows]
    return {
        "remeasured_within_10pct": sum(abs(e) <= 0.10 for e in again) / len(rows),
        "remeasured_within_20pct": sum(abs(e) <= 0.20 for e in again) / len(rows),
        "remeasured_kendall_tau": kendall_tau([r["measured_again_ms"] for r in rows], [r["measured_ms"] for r in rows]),
        "n": len(rows),
        "within_10pct": sum(abs(e) <= 0.10 for e in errors) / len(rows),
        "within_20pct": sum(abs(e) <= 0.20 for e in errors) / len(rows),
        "mean_error": statistics.mean(errors),
        "mean_abs_error": statistics.mean(abs(e) for e in errors),
        "worst_error": max(errors, key=abs),
        "kendall_tau": kendall_tau([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows]),
        "measured_ms_range": [min(r["measured_ms"] for r in rows), max(r["measured_ms"] for r in rows)],
    }


def run_space(name: str, budget: str, n: int, args, out: Path) -> list[dict]:
    """The space's rows, from OUT/rows-NAME.csv when an earlier run wrote them (one locked run per space)."""
    done = out / f"rows-{name}-{budget}-{n}.csv"
    if done.exists():
        with done.open() as f:
            return [{k: (v if k in ("space", "arch") else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]
    space = get_space(name)
    archs = list(dict.fromkeys(propose_many(space, Budget.parse(budget), n, "random", seed=args.seed)))
    meta = current_meta("cpu", args.threads, 1, "float32", space.resolution)
    table, path = open_table(meta, out / f"{name}-{meta.file_name()}")
    keys = sorted({k for a in archs for k in architecture_keys(a, space.resolution)})
    start = time.monotonic()
    for _ in measure_table(table, path, keys, warmup=args.warmup, repeats=args.repeats):
        pass
    print(f"{name}: {len(keys)} table entries ({time.monotonic() - start:.0f} s), {len(archs)} architectures",
          flush=True)
    rows = []
    for i, arch in enumerate(archs):
        measured = measure_architecture(arch, meta, warmup=args.warmup, repeats=args.repeats)
        rows.append(_row(name, arch, space.resolution, table, measured))
        # the same model measured again, right after: the machine's noise floor for the same comparison
        rows[-1]["measured_again_ms"] = measure_architecture(arch, meta, warmup=args.warmup, repeats=args.repeats)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(archs)} measured ({time.monotonic() - start:.0f} s)", flush=True)
    _write(done, rows)
    print(json.dumps(summary(rows)), flush=True)
    return rows


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _row(space: str, arch, resolution: int, table: LatencyTable, measured: float) -> dict:
    return {"space": space, "arch": arch.describe(), "gflops": complexity(arch, resolution).flops / 1e9,
            "cardinality": arch.stages[0].cardinality, "predicted_ms": table.predict(arch), "measured_ms": measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", action="append", default=None,
                        help=f"SPACE:BUDGET:N (repeatable; default {' '.join(DEFAULT_SPECS)})")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("latency-bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.spec or DEFAULT_SPECS:
        name, budget, n = spec.split(":")
        rows += run_space(name, budget, int(n), args, args.out)
    _write(args.out / "predictions.csv", rows)
    import torch

    result = {"threads": args.threads, "torch": torch.__version__, "device": current_meta().device,
              "all": summary(rows),
              **{s: summary([r for r in rows if r["space"] == s]) for s in dict.fromkeys(r["space"] for r in rows)}}
    (args.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
