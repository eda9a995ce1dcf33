"""A trial's training options: TrainConfig, its validation (TrainConfigError), the devices, the CPU preset.

Plain values only (JSON/Ray-config friendly) and no torch: a command line can build, check and print
a TrainConfig without paying for torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

AUGMENT_AFTER_EPOCHS = 5
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # cuda:N is cuda:0, cuda:1, ...


class TrainConfigError(ValueError):
    """A bad training option; the message names it."""


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
    # Evaluate on this many images of the training split that neither the validation images nor the
    # training subset use (the next ones in the same seeded order) instead of the validation images:
    # nas.validate's held-out images, which did not select the architectures it retrains. Needs
    # train_subset (without it no training image is left over).
    holdout_size: int | None = None
    train_resolution: int | None = None  # resize inputs on the fly (None: the dataset's own size)
    budget_resolution: int = 224  # resolution of the search space's FLOPs budget, for reporting
    eval_batch_size: int = 256
    seed: int = 0  # initialisation and data order
    # The validation split and the training subset (None: `seed`). A search fixes it at its own seed so
    # that trials of different seeds differ in initialisation and data order only, not in which images
    # they validate on.
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
        for name in ("train_subset", "train_resolution", "threads", "val_size", "holdout_size"):
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
        if self.holdout_size is not None and (self.train_subset is None or self.final):
            raise TrainConfigError("holdout_size: needs train_subset (the held-out images are those after it) "
                                   "and no final training")
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


def default_val_size(n: int) -> int:
    """Validation images held out of n training images when TrainConfig.val_size is None."""
    return max(1, min(5000, n // 10))

