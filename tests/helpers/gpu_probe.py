"""Searches on a Ray instance that declares GPUs this CPU machine does not have (resource labels only), run
by tests/nas/orchestration/test_gpu_accounting.py in a subprocess (one Ray instance with fake GPUs per scenario).

The trainable is a probe: it resolves its TrainConfig exactly as trials.train_trial does
(trials.trainable.trial_config: device and GPU share from what Ray assigned), records it with its time
span, and never trains (the "GPU" cannot run anything). In the `oom` scenario it raises the real
trials.loop.FractionalOOM while it holds a fractional share, as train() does on a CUDA OOM under a share.

    python -m tests.helpers.gpu_probe OUT_DIR SCENARIO...     (SCENARIO: pack | zero | whole | oom)

Each scenario runs in OUT_DIR/SCENARIO; scenarios declaring the same number of GPUs share one Ray instance
(started and shut down in turn, in this one process: the Python start-up and imports are paid once).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

SCENARIOS = {
    # name: (fake GPUs, search flags beyond the common ones). Scenarios with the same GPUs share one Ray
    # instance (4 CPUs): each Ray start and shutdown costs ~10 s here.
    "pack": (1, ["--trials", "4"]),
    "zero": (1, ["--trials", "2", "--gpus-per-trial", "0", "--cpus-per-trial", "1"]),
    "oom": (1, ["--trials", "1", "--max-failures", "1"]),
    "whole": (2, ["--trials", "2", "--gpus-per-trial", "1"]),
}
COMMON = ["--budget", "500MFLOPs", "--dataset", "synthetic", "--max-epochs", "1", "--scheduler", "none"]
EXPECT = {"pack": 4, "whole": 2}  # trials that must be running at once before any ends


def prober(log: str, expect: int, oom: bool):
    """The trainable of one scenario: where it records, how many trials it waits for, whether it fails."""

    def probe(config: dict) -> None:
        import torch
        from ray import tune

        from trials.loop import FractionalOOM
        from trials.trainable import trial_config

        start = time.time()
        train = trial_config(config.get("train"))
        granted = tune.get_context().get_trial_resources().required_resources
        record = {"trial": tune.get_context().get_trial_id(), "device": train.device, "gpu_share": train.gpu_share,
                  "granted_gpu": granted.get("GPU", 0.0), "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "start": start}
        if oom and train.gpu_share is not None:
            record.update(end=time.time(), raised="FractionalOOM")
            _write(log, record)
            raise FractionalOOM("CUDA out of memory (injected) under a share of the GPU")
        _barrier(Path(log).parent, record["trial"], expect)
        record.update(end=time.time(), cuda_initialized=torch.cuda.is_initialized())
        _write(log, record)
        tune.report({"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0, "status": "ok", "reason": ""})

    return probe


def _barrier(folder: Path, trial: str, expect: int, timeout: float = 150.0) -> None:
    """Wait (at most `timeout`) until `expect` trials are running: Tune starts one trial at a time when a
    searcher proposes them, so without it packed trials could finish before the next one starts. When
    the share does not let them run together, the wait times out and the spans do not overlap."""
    (folder / f"started-{trial}").touch()
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("started-*"))) < expect and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)


def _write(log: str, record: dict) -> None:
    with open(log, "a") as f:
        f.write(json.dumps(record) + "\n")


def run_scenario(scenario: str, out: Path) -> None:
    from nas import orchestration
    from nas.search import build_parser, settings_from_args

    out.mkdir(parents=True, exist_ok=True)
    args = build_parser().parse_args([*COMMON, *SCENARIOS[scenario][1], "--storage-path", str(out), "--name", "run"])
    trainable = prober(str(out / "probe.jsonl"), EXPECT.get(scenario, 1), oom=scenario == "oom")
    summary = orchestration.run_search(settings_from_args(args), trainable=trainable)
    (out / "summary.json").write_text(json.dumps(summary, default=str))


def main(out: Path, scenarios: list[str]) -> None:
    from nas import orchestration

    orchestration.configure_ray_env(None)
    import ray

    for gpus in sorted({SCENARIOS[name][0] for name in scenarios}):
        ray.init(address="local", num_cpus=4, num_gpus=gpus, include_dashboard=False, _node_ip_address="127.0.0.1")
        try:
            for name in scenarios:
                if SCENARIOS[name][0] == gpus:
                    run_scenario(name, out / name)
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
