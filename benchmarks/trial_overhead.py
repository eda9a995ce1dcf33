"""Per-trial overhead of the default CPU search: the time a trial spends before its first training step,
and between trials (Tune scheduling, actor reuse), measured through the real Tuner.

    PYTHONPATH=$PWD python benchmarks/trial_overhead.py [--trials 4] [--budget 4GFLOPs] [--train-subset 256]
        [--json]

Runs `nas.search`'s CPU preset (Fashion-MNIST, ASHA, reused actors, 2 CPUs) through
nas.orchestration.build_tuner with a wrapper around trials.train_trial that stamps the time the trial
function is entered and the time of each report. Training is cut short (--train-subset, one epoch) because
the overhead does not depend on it. Per trial:
  before_first_step = first report - entry - that epoch's own seconds (training + validation)
  between_trials    = entry of trial k+1 - last report of trial k (one trial at a time)
  overhead          = (wall time of tuner.fit - the trials' own epoch seconds) / trials
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOG_ENV = "NAS_BENCH_TRIAL_LOG"


def _stamp(event: str, **fields) -> None:
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")


def timed_trial(config: dict, data=None) -> None:
    """trials.train_trial with time stamps (accepts the shipped data where train_trial does)."""
    from ray import tune

    from trials import train_trial

    trial_id = tune.get_context().get_trial_id()
    _stamp("enter", trial=trial_id)
    real_report = tune.report

    def report(metrics, *args, **kwargs):
        _stamp("report", trial=trial_id, epoch_seconds=metrics.get("epoch_seconds", 0.0))
        return real_report(metrics, *args, **kwargs)

    tune.report = report
    try:
        if "data" in inspect.signature(train_trial).parameters:
            train_trial(config, data=data)
        else:
            train_trial(config)
    finally:
        tune.report = real_report


def measure(trials: int, budget: str, train_subset: int) -> dict:
    from nas import orchestration
    from nas.orchestration.settings import check_run_dir
    from nas.orchestration.tuner import build_tuner
    from nas.search import build_parser, settings_from_args

    work = Path(tempfile.mkdtemp(prefix="trial_overhead_"))
    log = work / "stamps.jsonl"
    os.environ[LOG_ENV] = str(log)
    args = build_parser().parse_args(["--budget", budget, "--trials", str(trials), "--max-epochs", "1",
                                      "--train-subset", str(train_subset), "--max-concurrent", "1",
                                      "--storage-path", str(work), "--name", "bench"])
    settings = settings_from_args(args)
    settings, _ = orchestration.apply_preset(settings, has_gpu=False, full=False)
    settings = replace(settings, train_subset=train_subset)
    check_run_dir(settings, resume=False)
    orchestration.configure_ray_env(None)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        t_setup = time.perf_counter()
        tuner = build_tuner(settings, False, ray.cluster_resources(), timed_trial)
        setup = time.perf_counter() - t_setup
        t0 = time.perf_counter()
        tuner.fit()
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    by_trial: dict[str, list[dict]] = {}
    for e in events:
        by_trial.setdefault(e["trial"], []).append(e)
    spans = []
    for trial, evs in by_trial.items():
        enter = min(e["t"] for e in evs if e["event"] == "enter")
        reports = [e for e in evs if e["event"] == "report"]
        first = min(reports, key=lambda e: e["t"])
        spans.append({"trial": trial, "enter": enter, "last": max(e["t"] for e in reports),
                      "before_first_step": first["t"] - enter - first["epoch_seconds"],
                      "epoch_seconds": sum(e["epoch_seconds"] for e in reports)})
    spans.sort(key=lambda s: s["enter"])
    between = [b["enter"] - a["last"] for a, b in zip(spans, spans[1:], strict=False)]
    trained = sum(s["epoch_seconds"] for s in spans)
    return {
        "trials": len(spans), "wall_s": wall, "driver_setup_s": setup,
        "before_first_step_s": [round(s["before_first_step"], 3) for s in spans],
        "between_trials_s": [round(b, 3) for b in between],
        "mean_before_first_step_s": sum(s["before_first_step"] for s in spans) / len(spans),
        "mean_between_trials_s": sum(between) / len(between) if between else 0.0,
        "overhead_per_trial_s": (wall - trained) / len(spans),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--budget", default="4GFLOPs")
    p.add_argument("--train-subset", type=int, default=256)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = measure(a.trials, a.budget, a.train_subset)
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>26}: {v if not isinstance(v, float) else round(v, 3)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
