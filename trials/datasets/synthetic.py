"""Random images whose label is learnable (a class-dependent mean), for benchmarks and fast tests."""

from __future__ import annotations

import torch

from ._types import Augmentation, Dataset, DatasetInfo, TensorSplit

NAME = "synthetic"
# what load_synthetic() gives by default
INFO = DatasetInfo(channels=3, classes=10, resolution=32, mean=(0.5,) * 3, std=(0.25,) * 3)


def load_synthetic(n_train: int = 2048, n_test: int = 512, channels: int = INFO.channels,
                   resolution: int = INFO.resolution, num_classes: int = INFO.classes, seed: int = 0) -> Dataset:
    """`n_train` + `n_test` images, each the class's grey level plus Gaussian noise, drawn from `seed`."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> TensorSplit:
        labels = torch.randint(0, num_classes, (n,), generator=g)
        base = (labels.float() * (200.0 / max(1, num_classes - 1)) + 28).view(-1, 1, 1, 1)
        noise = torch.randn(n, channels, resolution, resolution, generator=g) * 40
        return TensorSplit((base + noise).clamp(0, 255).to(torch.uint8), labels)

    return Dataset(NAME, make(n_train), make(n_test), num_classes, channels, resolution,
                   Augmentation(pad=resolution // 8, flip=True, mean=(0.5,) * channels,
                                std=(0.25,) * channels))
