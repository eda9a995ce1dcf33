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
from .datasets import Dataset, load_dataset, split_train_val

# Reported instead of a NaN/inf loss: finite (Optuna and pandas choke on NaN) and clearly worse than
# any real cross-entropy (ln(1000 classes) = 6.9).
PLACEHOLDER_LOSS = 1e3
AUGMENT_AFTER_EPOCHS = 5


class TrainConfigError(ValueError):
    """A bad training option; the message names it."""


class FractionalOOM(RuntimeError):
    """CUDA ran out of memory while the trial held only a share of its GPU (TrainConfig.gpu_share < 1).

    Not the architecture's fault as far as anyone can tell (neighbouring trials share the memory), so
    the trial fails instead of reporting a score; the orchestration retries it, on a whole GPU.
    """


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a trial's training, as plain values (JSON/Ray-config friendly).

    The defaults are the CPU recipe measured on Fashion-MNIST in docs/performance.md: a
    ResNeXt-50-class net reaches ~80% validation accuracy after 2-3 epochs on 2,500 images.
    """

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    epochs: int = 3
    batch_size: int = 32
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    # In epochs (fractions allowed). Zero-initialised residual BNs make warm-up nearly unnecessary;
    # a full warm-up epoch wasted a third of a 3-epoch CPU trial (docs/performance.md).
    warmup_epochs: float = 0.0
    # The classifier's learning rate is lr * head_lr_scale. On 28x28 inputs the imagenet stem leaves
    # 1x1 maps in the last stage, so the head sees un-averaged features of width up to 2048 and its
    # logits move ~||features||^2 times faster than the rest: with one lr for all, the first steps
    # blow the loss up to 5-15 (measured, docs/performance.md).
    head_lr_scale: float = 0.05
    # The dataset's random crop + flip (trials.datasets); None = on only for trainings longer than
    # AUGMENT_AFTER_EPOCHS epochs. In 3-epoch proxy trainings augmentation only slows fitting
    # (Fashion-MNIST, 2,500 images: 81.4% without vs 77.5% with at epoch 3). Normalisation always applies.
    augment: bool | None = None
    train_subset: int | None = None  # train on the first N images of the (seeded) training split
    # Validation images held out of the training set (ignored when final); None: min(5000, n // 10) of
    # the n training images, so that small datasets (<= 5,000 images) work too.
    val_size: int | None = None
    train_resolution: int | None = None  # resize inputs on the fly (None: the dataset's own size)
    budget_resolution: int = 224  # resolution of the search space's FLOPs budget, for reporting
    eval_batch_size: int = 256
    seed: int = 0  # initialisation and data order
    # The validation split and the training subset (None: `seed`). A search fixes it at its own seed so
    # that trials of different seeds differ in initialisation and data order only, not in which images
    # they validate on (correctness review, finding 20).
    split_seed: int | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (trials.trainable picks it from Ray's assignment)
    # Share of the GPU Ray granted this trial (None: whole or none). Below 1 it caps this process's CUDA
    # memory (torch.cuda.set_per_process_memory_fraction) and turns an OOM into FractionalOOM.
    gpu_share: float | None = None
    threads: int | None = None  # torch intra-op threads (CPU); None leaves torch's setting
    compile: bool = False  # torch.compile the model (Dynamo's caches are reset at the start of each trial)
    compile_backend: str = "inductor"  # torch.compile backend ("eager" in tests: traces without codegen)
    final: bool = False  # train on all training images (or the subset), evaluate on the test set
    workers: int = 2  # DataLoader worker processes (imagefolder only)
    download: bool = True  # allowed to download official datasets when not found locally

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "budget_resolution"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("train_subset", "train_resolution", "threads", "val_size"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        _check_int("seed", self.seed, minimum=0)
        if self.split_seed is not None:
            _check_int("split_seed", self.split_seed, minimum=0)
        _check_int("workers", self.workers, minimum=0)
        for name, lo in (("lr", 0.0), ("momentum", 0.0), ("weight_decay", 0.0), ("label_smoothing", 0.0),
                         ("warmup_epochs", 0.0), ("head_lr_scale", 0.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise TrainConfigError(f"{name}: must be a finite number, got {value!r}")
            if value < lo or (name == "lr" and value == 0):
                raise TrainConfigError(f"{name}: must be {'> 0' if name == 'lr' else '>= 0'}, got {value!r}")
        if self.momentum >= 1 or self.label_smoothing >= 1:
            raise TrainConfigError("momentum and label_smoothing must be < 1")
        if self.warmup_epochs > self.epochs:
            raise TrainConfigError(
                f"warmup_epochs: must be <= epochs ({self.epochs}), got {self.warmup_epochs}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise TrainConfigError(f"dataset: must be a name, got {self.dataset!r}")
        check_device(self.device)
        if self.gpu_share is not None:
            share = self.gpu_share
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
                raise TrainConfigError(f"gpu_share: must be a number in (0, 1], got {share!r}")
        if not isinstance(self.compile_backend, str) or not self.compile_backend:
            raise TrainConfigError(f"compile_backend: must be a torch.compile backend name, "
                                   f"got {self.compile_backend!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainConfig:
        """Build from a plain dict; None values mean "default", unknown keys are an error."""
        data = {k: v for k, v in (data or {}).items() if v is not None}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(
                f"unknown training option {unknown[0]!r}; accepted: {', '.join(sorted(known))}")
        # Samplers hand out numpy scalars and floats like 64.0; keep ints ints.
        for f in dataclasses.fields(cls):
            if f.name in data and hasattr(data[f.name], "item"):
                data[f.name] = data[f.name].item()
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # cuda:N is cuda:0, cuda:1, ...


def check_device(name: Any) -> str:
    """`name` if it is one of DEVICES, else TrainConfigError naming every accepted value."""
    if isinstance(name, str) and (name in DEVICES[:3] + DEVICES[4:]
                                  or (name.startswith("cuda:") and name[5:].isdigit())):
        return name
    raise TrainConfigError(f"device: unknown device {name!r}; accepted: {', '.join(DEVICES)}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TrainConfigError(f"{name}: must be an integer >= {minimum}, got {value!r}")


def cpu_defaults(**overrides: Any) -> TrainConfig:
    """The CPU proxy-trial preset for Fashion-MNIST (docs/performance.md): 2,500 training images,
    1,000 validation images, 3 epochs, batch 32, lr 0.2 (head 0.01), no warm-up, cosine, label
    smoothing 0.1, no augmentation. ResNeXt-50 32x4d (4.2 GFLOPs at 224): 75.2 / 81.0 / 81.4% after
    epochs 1 / 2 / 3, at ~55 images/s on 2 threads (about 2.5 minutes per 3-epoch trial).
    """
    base = dict(epochs=3, batch_size=32, lr=0.2, head_lr_scale=0.05, warmup_epochs=0.0,
                label_smoothing=0.1, augment=False, train_subset=2500, val_size=1000, device="cpu")
    base.update(overrides)
    return TrainConfig.from_dict(base)


# --- helpers ---------------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainConfigError(f"device: {name!r} requested but CUDA is not available")
    return device


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to 1 over `warmup_steps`, then cosine from 1 towards 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))


@dataclass
class _Data:
    dataset: Dataset
    train: Any  # TensorSplit | FolderSplit, on the device when in memory
    eval: Any
    eval_name: str  # "val" | "test"


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
    if config.train_subset is not None:
        train_idx = train_idx[: config.train_subset]
    train = ds.train.subset(train_idx)
    return _Data(ds, train.to(device), eval_split.to(device), eval_name)


def default_val_size(n: int) -> int:
    """Validation images held out of n training images when TrainConfig.val_size is None."""
    return max(1, min(5000, n // 10))


def _rng_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {"generator": gen.get_state(), "torch": torch.get_rng_state()}


# --- the loop --------------------------------------------------------------------------------------


@dataclass
class _Progress:
    """Where training stands: restored from a checkpoint or fresh."""

    start_epoch: int = 1
    step: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Schedule:
    batch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


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


def _schedule(n_train: int, config: TrainConfig) -> _Schedule:
    batch = min(config.batch_size, n_train)
    steps_per_epoch = n_train // batch  # drop the ragged last batch: a batch of 1 breaks BatchNorm
    return _Schedule(batch, steps_per_epoch, steps_per_epoch * config.epochs,
                     round(config.warmup_epochs * steps_per_epoch))


def _restore(resume_from: str | Path | None, arch: Architecture, model: torch.nn.Module,
             optimizer: torch.optim.Optimizer, gen: torch.Generator) -> _Progress:
    """Load model, optimizer and RNG state from a checkpoint (in place); fresh progress without one."""
    if resume_from is None:
        return _Progress()
    state = load_checkpoint(resume_from)
    if state.get("arch") not in (None, arch.to_dict()):
        raise ValueError(f"{resume_from}: checkpoint is of another architecture")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    gen.set_state(state["rng"]["generator"])
    torch.set_rng_state(state["rng"]["torch"])
    return _Progress(int(state["epoch"]) + 1, int(state["scheduler"]["step"]),
                     list(state.get("history", [])), float(state.get("seconds", 0.0)))


def _checkpoint_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: _Schedule,
                      progress: _Progress, epoch: int, gen: torch.Generator, arch: Architecture,
                      config: TrainConfig) -> dict[str, Any]:
    """Everything _restore needs to continue after `epoch` exactly (tensors and plain containers only)."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"step": progress.step, "total_steps": schedule.total_steps,
                      "warmup_steps": schedule.warmup_steps},
        "epoch": epoch,
        "rng": _rng_state(gen),
        "history": progress.history,
        "seconds": progress.seconds,
        "arch": arch.to_dict(),
        "config": config.to_dict(),
    }


def _train_epoch(epoch: int, model: torch.nn.Module, step_model: Callable, optimizer: torch.optim.Optimizer,
                 data: _Data, schedule: _Schedule, progress: _Progress, gen: torch.Generator,
                 augment: bool, device: torch.device, config: TrainConfig) -> _EpochStats | _Failure:
    """One epoch of training and its evaluation: the epoch's stats, or the failure that ended it."""
    try:
        return _epoch(epoch, model, step_model, optimizer, data, schedule, progress, gen, augment, device,
                      config)
    except torch.cuda.OutOfMemoryError:
        pass
    # Outside the except block, so the traceback no longer keeps the failed step's frame (its
    # activations and gradients) alive: only now can empty_cache() give that memory back.
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return _Failure("oom", f"CUDA out of memory at batch size {schedule.batch}")


def _epoch(epoch: int, model: torch.nn.Module, step_model: Callable, optimizer: torch.optim.Optimizer,
           data: _Data, schedule: _Schedule, progress: _Progress, gen: torch.Generator, augment: bool,
           device: torch.device, config: TrainConfig) -> _EpochStats | _Failure:
    cuda = device.type == "cuda"
    t0 = time.perf_counter()
    model.train()
    n_train = len(data.train)
    order = torch.randperm(n_train, generator=gen)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen, diverged = 0, False
    autocast = _autocast(device)
    aug = data.dataset.augmentation
    # The epoch's crops and flips in one copy (no blocking copy per step; trials.augment).
    crops = draw_epoch(aug, schedule.steps_per_epoch, schedule.batch, gen, device) if augment else None
    for i, (images, labels) in enumerate(data.train.batches(schedule.batch, order, drop_last=True)):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        x = prepare(images, aug, train=augment, params=None if crops is None else crops.batch(i),
                    resolution=config.train_resolution, channels_last=cuda)
        factor = lr_factor(progress.step, schedule.total_steps, schedule.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = config.lr * group["lr_scale"] * factor
        with autocast:
            logits = step_model(x)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        progress.step += 1
        loss_sum += loss.detach() * labels.shape[0]
        correct += (logits.detach().argmax(1) == labels).sum()
        seen += labels.shape[0]
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


def _compile(model: torch.nn.Module, config: TrainConfig) -> Callable:
    """torch.compile'd model when config.compile, else the model itself.

    Dynamo's caches are reset first: Ray reuses an actor for trial after trial, Dynamo guards on the
    module structure, and after recompile_limit (8) architectures it would run the rest eagerly
    without saying so (correctness review, finding 17).
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


def train(
    arch: Architecture,
    config: TrainConfig,
    *,
    report: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Train `arch` under `config`; call `report(metrics)` after every epoch; return the last metrics.

    `arch`'s input channels and classes are adapted to the dataset (with_io). With `checkpoint_dir`,
    checkpoint.pt is written there after each epoch, before `report` is called. `resume_from` (a
    directory holding checkpoint.pt) continues at the next epoch, reproducing an uninterrupted CPU
    run exactly. `dataset` lets callers (tests, benchmarks) pass an already loaded Dataset.
    """
    device = resolve_device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if device.type == "cuda":
        # Ray's fractional GPUs are bookkeeping only: cap this process at its share. Reset to 1.0 for a
        # whole GPU, since a reused actor keeps the previous trial's cap.
        torch.cuda.set_per_process_memory_fraction(config.gpu_share or 1.0, device)
    data = prepare_data(config, device, dataset)
    ds = data.dataset
    arch = with_io(arch, in_channels=ds.in_channels, num_classes=ds.num_classes)
    cuda = device.type == "cuda"
    train_res = config.train_resolution or ds.resolution
    static = {
        "flops": complexity(arch, config.budget_resolution).flops,
        "flops_train": complexity(arch, train_res).flops,
        "params": complexity(arch, train_res).params,
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
    step_model = _compile(model, config)
    schedule = _schedule(len(data.train), config)
    gen = torch.Generator().manual_seed(config.seed + 1)
    progress = _restore(resume_from, arch, model, optimizer, gen)
    if progress.start_epoch > config.epochs and progress.history:
        return dict(progress.history[-1])

    augment = config.augment if config.augment is not None else config.epochs > AUGMENT_AFTER_EPOCHS
    metrics: dict[str, Any] = {}
    for epoch in range(progress.start_epoch, config.epochs + 1):
        t0 = time.perf_counter()
        with _no_silent_eager(config):
            outcome = _train_epoch(epoch, model, step_model, optimizer, data, schedule, progress, gen, augment,
                                   device, config)
        if isinstance(outcome, _Failure) and outcome.status == "oom" and (config.gpu_share or 1.0) < 1:
            raise FractionalOOM(f"{outcome.reason} under a {config.gpu_share:g} share of the GPU "
                                "(retry on a whole GPU)")
        if isinstance(outcome, _Failure):
            metrics = _final_metrics(epoch, outcome.status, outcome.reason, static, t0, progress.seconds)
            if outcome.status == "diverged":
                progress.history.append(metrics)
            if report is not None:
                report(metrics)
            return metrics
        epoch_seconds = time.perf_counter() - t0
        progress.seconds += epoch_seconds
        metrics = {
            "epoch": epoch,
            "train_loss": outcome.loss_sum / max(1, outcome.seen),
            "train_accuracy": outcome.correct / max(1, outcome.seen),
            "val_accuracy": outcome.val_accuracy,
            "val_loss": outcome.val_loss if math.isfinite(outcome.val_loss) else PLACEHOLDER_LOSS,
            "images_per_second": outcome.seen / outcome.train_seconds,
            "epoch_seconds": epoch_seconds,
            "seconds": progress.seconds,
            "lr": optimizer.param_groups[0]["lr"],
            "eval_split": data.eval_name,
            "status": "ok",
            "reason": "",
            **static,
        }
        progress.history.append(metrics)
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, _checkpoint_state(model, optimizer, schedule, progress, epoch, gen,
                                                              arch, config))
        if report is not None:
            report(dict(metrics))
    result = dict(metrics)
    if config.final:
        result["test_accuracy"] = metrics["val_accuracy"]
        result["test_loss"] = metrics["val_loss"]
    return result


def _final_metrics(epoch: int, status: str, reason: str, static: dict, t0: float, seconds: float) -> dict:
    elapsed = time.perf_counter() - t0
    return {
        "epoch": epoch, "train_loss": PLACEHOLDER_LOSS, "train_accuracy": 0.0, "val_accuracy": 0.0,
        "val_loss": PLACEHOLDER_LOSS, "images_per_second": 0.0, "epoch_seconds": elapsed,
        "seconds": seconds + elapsed, "lr": 0.0, "eval_split": "val", "status": status, "reason": reason,
        **static,
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


__all__ = ["DEVICES", "PLACEHOLDER_LOSS", "FractionalOOM", "TrainConfig", "TrainConfigError", "check_device",
           "cpu_defaults", "default_val_size", "evaluate", "lr_factor", "prepare_data", "resolve_device", "train"]
