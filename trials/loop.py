"""The training loop of one trial: usable on its own, wrapped for Ray Tune by trials.trainable.

SGD with Nesterov momentum and weight decay, label smoothing, an optional short linear warm-up then
cosine decay to ~0 over the trial's epochs, evaluated every epoch. On CUDA: bf16 autocast,
channels_last, fused SGD, optional torch.compile. On CPU: fp32, default NCHW layout (channels_last
measured 10-25% slower for training and ~2x slower for evaluation with torch 2.13's CPU kernels,
docs/performance.md), `threads` intra-op threads.

Failure modes that must not crash a search end the trial with a final, finite report:
a NaN/inf loss -> status "diverged" with val_accuracy 0.0; CUDA out-of-memory on a whole GPU ->
status "oom". CUDA out-of-memory under a fractional GPU share (`gpu_share` < 1) is likely a
neighbour's fault, not the architecture's: it raises FractionalOOM instead, so that Tune retries the
trial rather than Optuna learning 0.0 for it. Every other exception propagates (Ray Tune retries
the trial from its last checkpoint).

Sections (airbench style): set-up (`_claim_device`, `prepare_data`, `_Trainer.build`), then per epoch
`_Trainer.epoch` (the steps and the evaluation), `_Trainer.metrics` and `_Trainer.checkpoint_state`;
`train` is the outline that calls them. The options live in trials.config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from search_spaces import Architecture, build_model, complexity, with_io

from .augment import draw_epoch, prepare
from .checkpoint import load_checkpoint, save_checkpoint
from .config import AUGMENT_AFTER_EPOCHS, TrainConfig, TrainConfigError, default_val_size
from .datasets import Dataset, load_dataset, split_train_val

# Reported instead of a NaN/inf loss: finite (Optuna and pandas choke on NaN) and clearly worse than
# any real cross-entropy (ln(1000 classes) = 6.9).
PLACEHOLDER_LOSS = 1e3


class FractionalOOM(RuntimeError):
    """CUDA ran out of memory while the trial held only a share of its GPU (TrainConfig.gpu_share < 1).

    Not the architecture's fault as far as anyone can tell (neighbouring trials share the memory), so
    the trial fails instead of reporting a score; the orchestration retries it, on a whole GPU.
    """


@dataclass(frozen=True)
class StepProgress:
    """Where an epoch's training stands after a step. `loss_sum` stays a device tensor: reading it
    (`loss`) waits for the GPU, so a progress display reads it only when it draws."""

    epoch: int
    step: int
    steps: int  # steps per epoch
    loss_sum: torch.Tensor
    seen: int

    @property
    def loss(self) -> float:
        return float(self.loss_sum) / max(1, self.seen)


def train(
    arch: Architecture,
    config: TrainConfig,
    *,
    report: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    dataset: Dataset | None = None,
    on_step: Callable[[StepProgress], None] | None = None,
) -> dict[str, Any]:
    """Train `arch` under `config`; call `report(metrics)` after every epoch; return the last metrics.
    `on_step(StepProgress)` is called after every training step (a progress bar within the epoch).

    `arch`'s input channels and classes are adapted to the dataset (with_io). With `checkpoint_dir`,
    checkpoint.pt is written there after each epoch, before `report` is called. `resume_from` (a
    directory holding checkpoint.pt) continues at the next epoch, reproducing an uninterrupted CPU
    run exactly. `dataset` lets callers (tests, benchmarks) pass an already loaded Dataset.
    """
    device = _claim_device(config)
    trainer = _Trainer.build(arch, config, device, prepare_data(config, device, dataset))
    trainer.on_step = on_step
    if resume_from is not None:
        trainer.restore(resume_from)
    progress = trainer.progress
    if progress.start_epoch > config.epochs and progress.history:
        return dict(progress.history[-1])

    metrics: dict[str, Any] = {}
    for epoch in range(progress.start_epoch, config.epochs + 1):
        t0 = time.perf_counter()
        outcome = trainer.epoch(epoch)
        if isinstance(outcome, _Failure):
            if outcome.status == "oom" and (config.gpu_share or 1.0) < 1:
                raise FractionalOOM(f"{outcome.reason} under a {config.gpu_share:g} share of the GPU "
                                    "(retry on a whole GPU)")
            metrics = trainer.failure_metrics(epoch, outcome, t0)
            if report is not None:
                report(metrics)
            return metrics
        metrics = trainer.metrics(epoch, outcome, time.perf_counter() - t0)
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, trainer.checkpoint_state(epoch))
        if report is not None:
            report(dict(metrics))
    result = dict(metrics)
    if config.final:
        result["test_accuracy"] = metrics["val_accuracy"]
        result["test_loss"] = metrics["val_loss"]
    return result


# --- set-up: device, data, schedule, optimiser -----------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainConfigError(f"device: {name!r} requested but CUDA is not available")
    return device


def _claim_device(config: TrainConfig) -> torch.device:
    """The trial's device, with this process's CPU threads and (on CUDA) GPU memory share set."""
    device = resolve_device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if device.type == "cuda":
        # Ray's fractional GPUs are bookkeeping only: cap this process at its share. Reset to 1.0 for a
        # whole GPU, since a reused actor keeps the previous trial's cap.
        torch.cuda.set_per_process_memory_fraction(config.gpu_share or 1.0, device)
    return device


@dataclass
class _Data:
    dataset: Dataset
    train: Any  # TensorSplit | FolderSplit, on the device when in memory
    eval: Any
    eval_name: str  # "val" | "holdout" | "test"


def prepare_data(config: TrainConfig, device: torch.device, dataset: Dataset | None = None) -> _Data:
    """Load the dataset, carve the seeded train/val split (or train/test when final), move to device."""
    ds = dataset if dataset is not None else load_dataset(
        config.dataset, config.data_dir, download=config.download, resolution=config.train_resolution,
        workers=config.workers)
    n = len(ds.train)
    split_seed = config.seed if config.split_seed is None else config.split_seed
    if config.final:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
        train_idx, eval_split, eval_name = order, ds.test, "test"
    else:
        train_idx, val_idx = split_train_val(n, default_val_size(n) if config.val_size is None else config.val_size,
                                             split_seed)
        eval_split, eval_name = ds.train.subset(val_idx), "val"
        if config.holdout_size is not None:
            held = train_idx[config.train_subset: config.train_subset + config.holdout_size]
            if len(held) < config.holdout_size:
                raise TrainConfigError(f"holdout_size: {config.holdout_size} held-out images asked for, but only "
                                       f"{len(held)} of the {n} training images are left after the validation "
                                       f"images and the training subset ({config.train_subset})")
            eval_split, eval_name = ds.train.subset(held), "holdout"
    if config.train_subset is not None:
        train_idx = train_idx[: config.train_subset]
    train = ds.train.subset(train_idx)
    return _Data(ds, train.to(device), eval_split.to(device), eval_name)


@dataclass(frozen=True)
class _Schedule:
    batch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def _schedule(n_train: int, config: TrainConfig) -> _Schedule:
    batch = min(config.batch_size, n_train)
    steps_per_epoch = n_train // batch  # drop the ragged last batch: a batch of 1 breaks BatchNorm
    return _Schedule(batch, steps_per_epoch, steps_per_epoch * config.epochs,
                     round(config.warmup_epochs * steps_per_epoch))


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to 1 over `warmup_steps`, then cosine from 1 towards 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))


def _param_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """SGD parameter groups: weight decay only on conv/linear weights; the classifier at head_lr_scale."""
    head = {id(p) for p in model.fc.parameters()}
    decay, no_decay = [], []
    for p in model.parameters():
        # No weight decay on BN affine parameters and biases (standard; the zero-init gammas of the
        # residual BNs would otherwise be pulled back to zero).
        if id(p) not in head:
            (no_decay if p.ndim <= 1 else decay).append(p)
    head_decay = [p for p in model.fc.parameters() if p.ndim > 1]
    head_no_decay = [p for p in model.fc.parameters() if p.ndim <= 1]  # the classifier's bias
    return [
        {"params": decay, "weight_decay": config.weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
        {"params": head_decay, "weight_decay": config.weight_decay, "lr_scale": config.head_lr_scale},
        {"params": head_no_decay, "weight_decay": 0.0, "lr_scale": config.head_lr_scale},
    ]


def _compile(model: torch.nn.Module, config: TrainConfig) -> Callable:
    """torch.compile'd model when config.compile, else the model itself.

    Dynamo's caches are reset first: Ray reuses an actor for trial after trial, Dynamo guards on the
    module structure, and after recompile_limit (8) architectures it would run the rest eagerly
    without saying so.
    """
    if not config.compile:
        return model
    torch._dynamo.reset()
    return torch.compile(model, backend=config.compile_backend)


def _no_silent_eager(config: TrainConfig):
    """While training a compiled model, hitting Dynamo's recompile limit raises instead of silently
    falling back to eager (compile errors already raise: suppress_errors is off by default)."""
    if not config.compile:
        return contextlib.nullcontext()
    return torch._dynamo.config.patch(fail_on_recompile_limit_hit=True)


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else \
        torch.autocast("cpu", enabled=False)


# --- the trainer: one run's state, its sections as methods ------------------------------------------


@dataclass
class _Progress:
    """Where training stands: restored from a checkpoint or fresh."""

    start_epoch: int = 1
    step: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _EpochStats:
    loss_sum: float
    correct: int
    seen: int
    train_seconds: float
    val_loss: float
    val_accuracy: float


@dataclass(frozen=True)
class _Failure:
    status: str  # "diverged" | "oom"
    reason: str


@dataclass
class _Trainer:
    """One training run: the model and what moves it, the data, the schedule and the progress so far."""

    arch: Architecture  # adapted to the dataset
    config: TrainConfig
    device: torch.device
    data: _Data
    model: torch.nn.Module
    step_model: Callable  # the model, or its torch.compile'd version
    optimizer: torch.optim.Optimizer
    schedule: _Schedule
    gen: torch.Generator  # the data order and the crops and flips
    augment: bool
    static: dict[str, Any]  # the metrics every epoch repeats: FLOPs, parameters, the recipe
    progress: _Progress = dataclasses.field(default_factory=_Progress)
    on_step: Callable[[StepProgress], None] | None = None

    @classmethod
    def build(cls, arch: Architecture, config: TrainConfig, device: torch.device, data: _Data) -> _Trainer:
        """The seeded model for `data`'s dataset, its optimiser and schedule, fresh progress."""
        ds = data.dataset
        nominal = complexity(arch, config.budget_resolution)  # the architecture as given, where the budget is
        arch = with_io(arch, in_channels=ds.in_channels, num_classes=ds.num_classes)
        cuda = device.type == "cuda"
        train_res = config.train_resolution or ds.resolution
        trained = complexity(arch, train_res)  # the model as trained: the dataset's channels, classes, size
        static = {
            # One vocabulary in every file and tool (nas.rundir.schema.COST_COLUMNS): *_nominal is what the
            # budget counts, *_trained what this trial's model costs.
            "flops_nominal": nominal.flops, "params_nominal": nominal.params,
            "flops_trained": trained.flops, "params_trained": trained.params,
            # The resolved recipe, so that results tables say what trained even when nothing was overridden
            # ("lr" in the metrics is the epoch's scheduled rate, which cosine decay takes towards 0).
            "peak_lr": config.lr,
            "batch_size": min(config.batch_size, len(data.train)),
        }
        with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
            torch.manual_seed(config.seed)
            model = build_model(arch)
        # channels_last suits cuDNN's tensor-core kernels; on the CPU it measured slower (module docstring).
        model = model.to(device=device, memory_format=torch.channels_last if cuda else torch.contiguous_format)
        optimizer = torch.optim.SGD(_param_groups(model, config), lr=config.lr, momentum=config.momentum,
                                    nesterov=config.momentum > 0, **({"fused": True} if cuda else {}))
        return cls(arch, config, device, data, model, _compile(model, config), optimizer,
                   _schedule(len(data.train), config), torch.Generator().manual_seed(config.seed + 1),
                   config.augment if config.augment is not None else config.epochs > AUGMENT_AFTER_EPOCHS, static)

    def restore(self, resume_from: str | Path) -> None:
        """Load model, optimizer, RNG state and progress from the checkpoint in `resume_from`."""
        state = load_checkpoint(resume_from)
        if state.get("arch") not in (None, self.arch.to_dict()):
            raise ValueError(f"{resume_from}: checkpoint is of another architecture")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.gen.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        self.progress = _Progress(int(state["epoch"]) + 1, int(state["scheduler"]["step"]),
                                  list(state.get("history", [])), float(state.get("seconds", 0.0)))

    def epoch(self, epoch: int) -> _EpochStats | _Failure:
        """One epoch of training and its evaluation: the epoch's stats, or the failure that ended it."""
        with _no_silent_eager(self.config):
            try:
                return self._train_and_evaluate(epoch)
            except torch.cuda.OutOfMemoryError:
                pass
            # Outside the except block, so the traceback no longer keeps the failed step's frame (its
            # activations and gradients) alive: only now can empty_cache() give that memory back.
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return _Failure("oom", f"CUDA out of memory at batch size {self.schedule.batch}")

    def _train_and_evaluate(self, epoch: int) -> _EpochStats | _Failure:
        config, device, data, schedule, progress = self.config, self.device, self.data, self.schedule, self.progress
        model, optimizer = self.model, self.optimizer
        cuda = device.type == "cuda"
        t0 = time.perf_counter()
        model.train()
        n_train = len(data.train)
        order = torch.randperm(n_train, generator=self.gen)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, diverged = 0, False
        autocast = _autocast(device)
        aug = data.dataset.augmentation
        # The epoch's crops and flips in one copy (no blocking copy per step; trials.augment).
        crops = draw_epoch(aug, schedule.steps_per_epoch, schedule.batch, self.gen, device) if self.augment else None
        for i, (images, labels) in enumerate(data.train.batches(schedule.batch, order, drop_last=True)):
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            x = prepare(images, aug, train=self.augment, params=None if crops is None else crops.batch(i),
                        resolution=config.train_resolution, channels_last=cuda)
            factor = lr_factor(progress.step, schedule.total_steps, schedule.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * group["lr_scale"] * factor
            with autocast:
                logits = self.step_model(x)
                loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            progress.step += 1
            loss_sum += loss.detach() * labels.shape[0]
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += labels.shape[0]
            if self.on_step is not None:
                self.on_step(StepProgress(epoch, i + 1, schedule.steps_per_epoch, loss_sum, seen))
            # A sync per step is free on the CPU; on a GPU check every 16 steps (and at the end).
            if (not cuda or i % 16 == 15) and not torch.isfinite(loss_sum):
                diverged = True
                break
        if diverged or not torch.isfinite(loss_sum):
            return _Failure("diverged", f"non-finite training loss at epoch {epoch} (lr {config.lr}, "
                                        f"batch size {schedule.batch})")
        train_seconds = time.perf_counter() - t0
        val_loss, val_acc = evaluate(model, data.eval, aug, device, config)
        return _EpochStats(float(loss_sum), int(correct), seen, train_seconds, val_loss, val_acc)

    def metrics(self, epoch: int, stats: _EpochStats, epoch_seconds: float) -> dict[str, Any]:
        """A finished epoch's metrics, added to the history (and its seconds to the total)."""
        self.progress.seconds += epoch_seconds
        metrics = {
            "epoch": epoch,
            "train_loss": stats.loss_sum / max(1, stats.seen),
            "train_accuracy": stats.correct / max(1, stats.seen),
            "val_accuracy": stats.val_accuracy,
            "val_loss": stats.val_loss if math.isfinite(stats.val_loss) else PLACEHOLDER_LOSS,
            "images_per_second": stats.seen / stats.train_seconds,
            "epoch_seconds": epoch_seconds,
            "seconds": self.progress.seconds,
            "lr": self.optimizer.param_groups[0]["lr"],
            "eval_split": self.data.eval_name,
            "status": "ok",
            "reason": "",
            **self.static,
        }
        self.progress.history.append(metrics)
        return metrics

    def failure_metrics(self, epoch: int, failure: _Failure, t0: float) -> dict[str, Any]:
        """The final, finite metrics of an epoch that failed (started at perf_counter `t0`); a divergence
        also joins the history."""
        elapsed = time.perf_counter() - t0
        metrics = {
            "epoch": epoch, "train_loss": PLACEHOLDER_LOSS, "train_accuracy": 0.0, "val_accuracy": 0.0,
            "val_loss": PLACEHOLDER_LOSS, "images_per_second": 0.0, "epoch_seconds": elapsed,
            "seconds": self.progress.seconds + elapsed, "lr": 0.0, "eval_split": "val", "status": failure.status,
            "reason": failure.reason, **self.static,
        }
        if failure.status == "diverged":
            self.progress.history.append(metrics)
        return metrics

    def checkpoint_state(self, epoch: int) -> dict[str, Any]:
        """Everything restore() needs to continue after `epoch` exactly (tensors and plain containers only)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.progress.step, "total_steps": self.schedule.total_steps,
                          "warmup_steps": self.schedule.warmup_steps},
            "epoch": epoch,
            "rng": {"generator": self.gen.get_state(), "torch": torch.get_rng_state()},
            "history": self.progress.history,
            "seconds": self.progress.seconds,
            "arch": self.arch.to_dict(),
            "config": self.config.to_dict(),
        }


def evaluate(model: torch.nn.Module, split: Any, aug: Any, device: torch.device,
             config: TrainConfig) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` on `split`, no augmentation, one sync at the end."""
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    with torch.inference_mode(), _autocast(device):
        for images, labels in split.batches(config.eval_batch_size):
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            x = prepare(images, aug, train=False, generator=None, resolution=config.train_resolution,
                        channels_last=device.type == "cuda")
            logits = model(x).float()
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
            correct += (logits.argmax(1) == labels).sum()
            n += labels.shape[0]
    return float(loss_sum) / max(1, n), int(correct) / max(1, n)


__all__ = ["PLACEHOLDER_LOSS", "FractionalOOM", "StepProgress", "evaluate", "lr_factor", "prepare_data",
           "resolve_device", "train"]
