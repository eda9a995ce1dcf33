"""The Ray Tune function trainable: a thin wrapper around trials.loop.train.

Importing this module is cheap (stdlib only): Ray pickles `train_trial` by reference, and the
driver that imports it to build a Tuner should not pay for torch. Only `ray.tune` APIs are used;
`ray.train.report` fails inside a Tune function trainable in ray 2.60.

config = {"arch": <resnext-arch/1 dict>, "train": <TrainConfig dict>, "checkpoint": True}
"checkpoint": False skips the per-epoch checkpoints (a ResNeXt-50 with momentum is ~180 MB per
epoch to persist); the trial then cannot resume after a failure.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

_KNOWN_KEYS = {"arch", "train", "checkpoint"}


def trial_cpus(default: int | None = None) -> int:
    """CPUs granted to the running trial: Tune's trial resources, else Ray's assigned, else os.cpu_count()."""
    try:
        from ray import tune

        resources = tune.get_context().get_trial_resources().required_resources
        cpus = resources.get("CPU")
        if cpus:
            return max(1, int(cpus))
    except Exception:  # not inside a Tune trial, or an older/newer context API: fall through
        pass
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            return max(1, int(cpus))
    except Exception:  # Ray not initialised
        pass
    return default or os.cpu_count() or 1


def train_trial(config: dict[str, Any]) -> None:
    """Train config["arch"] under config["train"], reporting each epoch (and its checkpoint) to Tune.

    Divergence and CUDA OOM end the trial with a finite report (trials.loop); any other exception
    propagates, so Tune's FailureConfig retries the trial from its last reported checkpoint.
    """
    import logging

    from ray import tune

    from search_spaces import Architecture

    # One INFO line per epoch ("Checkpoint successfully created") would flood the driver's progress
    # table (log_to_driver stays on so that real worker errors are seen).
    for name in ("ray.train", "ray.train._internal.storage", "ray.train.v2._internal.execution.storage"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from .loop import TrainConfig, train

    # Other keys are the searcher's own parameters (OptunaSearch puts its suggestions beside the
    # values the space returns); they are already encoded in config["arch"].
    if "arch" not in config:
        raise ValueError(f"train_trial: config has no 'arch'; expected keys {', '.join(sorted(_KNOWN_KEYS))}")
    arch = Architecture.from_dict(config["arch"])
    train_config = TrainConfig.from_dict(config.get("train") or {})
    if train_config.threads is None:
        # One intra-op thread per granted CPU: more threads than CPUs oversubscribe the cores that
        # concurrent trials share (torch defaults to every core on the machine).
        train_config = train_config.replace(threads=trial_cpus())
    keep_checkpoints = bool(config.get("checkpoint", True))

    with tempfile.TemporaryDirectory(prefix="nas_trial_") as work:
        resume_dir = None
        restored = tune.get_checkpoint()
        if restored is not None:
            resume_dir = restored.to_directory(os.path.join(work, "restored"))
        out_dir = Path(work) / "checkpoint"

        def report(metrics: dict[str, Any]) -> None:
            # train() wrote this epoch's checkpoint.pt before calling us (only for status "ok").
            if keep_checkpoints and metrics.get("status") == "ok" and (out_dir / "checkpoint.pt").is_file():
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(out_dir)))
            else:
                tune.report(metrics)

        train(arch, train_config, report=report, checkpoint_dir=out_dir if keep_checkpoints else None,
              resume_from=resume_dir)


__all__ = ["train_trial", "trial_cpus"]
