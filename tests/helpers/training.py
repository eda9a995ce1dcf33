"""What the training-loop tests share: a tiny ResNeXt and a quick CPU TrainConfig (the `synthetic`
dataset fixture is in tests/conftest.py)."""

from __future__ import annotations

from search_spaces import template
from trials.loop import TrainConfig

# A tiny ResNeXt: CIFAR stem, three one-block stages, C=2, d=4, widths 32/64/128.
TINY = template((1, 1, 1), 2, 4, in_channels=3, num_classes=10, base_out=32)


def quick(**kw) -> TrainConfig:
    """Two epochs of batch 32 on the CPU, one thread, seed 0 (keywords override)."""
    base = dict(dataset="synthetic", epochs=2, batch_size=32, val_size=64, seed=0, device="cpu", threads=1)
    base.update(kw)
    return TrainConfig(**base)
