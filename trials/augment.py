"""Batched, on-device augmentation: random crop with zero padding, horizontal flip, normalisation.

A whole batch is transformed with a handful of tensor ops (one pad, one gather, one where), so the
hot loop has no per-sample Python. The random parameters are drawn from a CPU torch.Generator
owned by the loop: the same seed gives the same crops on every device, and the generator's state
is a small tensor that a checkpoint can store and restore exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .datasets import Augmentation


def normalise(images: torch.Tensor, aug: Augmentation, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, (x/255 - mean) / std per channel."""
    c = images.shape[1]
    mean = torch.tensor(aug.mean, device=images.device, dtype=dtype).view(1, -1, 1, 1)
    std = torch.tensor(aug.std, device=images.device, dtype=dtype).view(1, -1, 1, 1)
    if mean.shape[1] != c:  # e.g. grey images fed to an RGB-normalised model: use the average
        mean, std = mean.mean().view(1, 1, 1, 1), std.mean().view(1, 1, 1, 1)
    return (images.to(dtype) / 255.0 - mean) / std


def random_crop_flip(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Random crop of the original size from the zero-padded batch, then a random horizontal flip.

    Works on any dtype; padding with 0 on uint8 images means black borders (as torchvision's
    RandomCrop(padding=p) does), applied before normalisation.
    """
    n, _, h, w = images.shape
    device = images.device
    if aug.pad > 0:
        p = aug.pad
        padded = F.pad(images, (p, p, p, p)) if images.is_floating_point() else \
            F.pad(images.float(), (p, p, p, p)).to(images.dtype)  # F.pad lacks uint8 on some backends
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(device)
        rows = (dy.view(n, 1) + torch.arange(h, device=device).view(1, h))  # (n, h)
        cols = (dx.view(n, 1) + torch.arange(w, device=device).view(1, w))  # (n, w)
        # Two gathers (rows, then columns) instead of one 4-d advanced index: contiguous and cheap.
        c = images.shape[1]
        wp = padded.shape[3]
        out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, wp))
        images = out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
    if aug.flip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(device).view(n, 1, 1, 1)
        images = torch.where(flip, images.flip(3), images)
    return images


def prepare(images: torch.Tensor, aug: Augmentation, *, train: bool, generator: torch.Generator | None,
            resolution: int | None = None, channels_last: bool = False,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The model's input from a uint8 batch: augment (training only), normalise, resize, layout."""
    if train and generator is not None:
        images = random_crop_flip(images, aug, generator)
    x = normalise(images, aug, dtype)
    if resolution is not None and resolution != x.shape[-1]:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=resolution < x.shape[-1])
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


__all__ = ["normalise", "prepare", "random_crop_flip"]
