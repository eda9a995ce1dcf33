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


def _granted(resource: str) -> float | None:
    """Amount of `resource` ("CPU", "GPU") granted to the running trial: Tune's trial resources, else
    what Ray assigned this worker; None outside Ray."""
    try:
        from ray import tune

        amount = tune.get_context().get_trial_resources().required_resources.get(resource)
        if amount is not None:
            return float(amount)
    except Exception:  # not inside a Tune trial, or an older/newer context API: fall through
        pass
    try:
        import ray

        if ray.is_initialized():
            return float(ray.get_runtime_context().get_assigned_resources().get(resource, 0.0))
    except Exception:  # Ray not initialised
        pass
    return None


def trial_cpus(default: int | None = None) -> int:
    """CPUs granted to the running trial: Tune's trial resources, else Ray's assigned, else os.cpu_count()."""
    cpus = _granted("CPU")
    if cpus:
        return max(1, int(cpus))
    return default or os.cpu_count() or 1


def device_for_gpu_ids(gpu_ids: list, visible: str | None) -> str:
    """The torch device of the first GPU Ray assigned ("cpu" when it assigned none).

    Ray normally sets CUDA_VISIBLE_DEVICES to the assigned ids, so torch numbers them from 0; when it
    does not (RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES), the id is the physical index.
    """
    if not gpu_ids:
        return "cpu"
    first = str(gpu_ids[0])
    order = [v.strip() for v in visible.split(",")] if visible else []
    if first in order:
        return f"cuda:{order.index(first)}"
    return f"cuda:{first}" if first.isdigit() and not order else "cuda:0"


def trial_device() -> tuple[str, float | None]:
    """(device, GPU share) from what Ray assigned this trial, never from torch.cuda.is_available().

    Ray 2.60 no longer hides the GPUs from a worker that asked for none, so a 0-GPU trial would
    otherwise train on cuda:0 beside the trials Ray did place there.
    Outside Ray: ("auto", None), i.e. TrainConfig's own choice.
    """
    try:
        import ray

        if not ray.is_initialized():
            return "auto", None
        gpu_ids = ray.get_gpu_ids()
    except Exception:  # Ray absent or not connected: not a Ray trial
        return "auto", None
    device = device_for_gpu_ids(gpu_ids, os.environ.get("CUDA_VISIBLE_DEVICES"))
    share = _granted("GPU") if device != "cpu" else None
    return device, (share if share is not None and 0 < share < 1 else None)


def trial_config(train: dict[str, Any] | None) -> Any:
    """The trial's TrainConfig: config["train"] plus what Ray granted (threads, device, GPU share)."""
    from .config import TrainConfig

    config = TrainConfig.from_dict(train or {})
    changes: dict[str, Any] = {}
    if config.threads is None:
        # One intra-op thread per granted CPU: more threads than CPUs oversubscribe the cores that
        # concurrent trials share (torch defaults to every core on the machine).
        changes["threads"] = trial_cpus()
    if config.device == "auto":  # an explicit device (a user's choice) is kept
        device, share = trial_device()
        changes["device"] = device
        if config.gpu_share is None and share is not None:
            changes["gpu_share"] = share
    return config.replace(**changes)


def train_trial(config: dict[str, Any], data: dict[str, Any] | None = None) -> None:
    """Train config["arch"] under config["train"], reporting each epoch (and its checkpoint) to Tune.

    `data` is the dataset the driver shipped (trials.datasets.dataset_arrays, passed by
    tune.with_parameters from Ray's object store): the trial then reads no dataset files on its node.
    Without it (image folders, direct use) the trial loads config["train"]["dataset"] itself.

    The device is the GPU Ray assigned (cpu when none, whatever torch.cuda sees). Divergence and CUDA
    OOM on a whole GPU end the trial with a finite report (trials.loop); any other exception, including
    trials.loop.FractionalOOM under a fractional GPU share, propagates, so Tune's FailureConfig retries
    the trial from its last reported checkpoint.
    """
    import logging

    from ray import tune

    from search_spaces import Architecture

    # One INFO line per epoch ("Checkpoint successfully created") would flood the driver's progress
    # table (log_to_driver stays on so that real worker errors are seen).
    for name in ("ray.train", "ray.train._internal.storage", "ray.train.v2._internal.execution.storage"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from .labels import label_process
    from .loop import train

    # Other keys are the searcher's own parameters (OptunaSearch puts its suggestions beside the
    # values the space returns); they are already encoded in config["arch"].
    if "arch" not in config:
        raise ValueError(f"train_trial: config has no 'arch'; expected keys {', '.join(sorted(_KNOWN_KEYS))}")
    arch = Architecture.from_dict(config["arch"])
    train_config = trial_config(config.get("train"))
    keep_checkpoints = bool(config.get("checkpoint", True))
    dataset = None
    if data is not None:
        from .datasets import dataset_from_arrays

        if data.get("name") != train_config.dataset:
            raise ValueError(f"train_trial: shipped dataset {data.get('name')!r} is not the trial's "
                             f"{train_config.dataset!r}")
        dataset = dataset_from_arrays(data)
    # The Ray dashboard, ps and top show which trial (and architecture) this worker trains.
    trial_id, arch_name = tune.get_context().get_trial_id(), arch.describe()
    label_process(trial_id, arch_name)

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
            label_process(trial_id, arch_name)  # Ray resets the title around each actor task

        train(arch, train_config, report=report, checkpoint_dir=out_dir if keep_checkpoints else None,
              resume_from=resume_dir, dataset=dataset)


__all__ = ["device_for_gpu_ids", "train_trial", "trial_config", "trial_cpus", "trial_device"]
