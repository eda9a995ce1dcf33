"""Batched, on-device augmentation: random crop with zero padding, horizontal flip, normalisation.

A whole batch is transformed with a handful of tensor ops (one pad, one gather, one where), so the
hot loop has no per-sample Python. The random parameters are drawn from a CPU torch.Generator
owned by the loop: the same seed gives the same crops on every device, and the generator's state
is a small tensor that a checkpoint can store and restore exactly.

No blocking host-to-device copy per step: a CPU tensor copied to
CUDA from pageable memory, or `torch.tensor(..., device=cuda)`, synchronises the stream, so the CPU
could not queue step k+1 while the GPU ran step k. Hence the normalisation constants are built once
per (augmentation, device, dtype) and cached, and the loop draws a whole epoch's crop offsets and
flip masks at once (`draw_epoch`), in exactly the order the per-batch draws used, and moves them in
one pinned, non-blocking copy per epoch. On the CPU the results are bit-identical to drawing per
batch (tests/trials/test_trial_device.py checks it); on CUDA the copy overlaps with the step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .datasets import Augmentation


@functools.lru_cache(maxsize=32)
def _mean_std(aug: Augmentation, channels: int, device: torch.device,
              dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as (1, C, 1, 1) tensors on `device`, built once (see the module docstring)."""
    mean = torch.tensor(aug.mean, dtype=dtype).view(1, -1, 1, 1)
    std = torch.tensor(aug.std, dtype=dtype).view(1, -1, 1, 1)
    if mean.shape[1] != channels:  # e.g. grey images fed to an RGB-normalised model: use the average
        mean, std = mean.mean().view(1, 1, 1, 1), std.mean().view(1, 1, 1, 1)
    return mean.to(device), std.to(device)


def normalise(images: torch.Tensor, aug: Augmentation, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, (x/255 - mean) / std per channel."""
    mean, std = _mean_std(aug, images.shape[1], images.device, dtype)
    return (images.to(dtype) / 255.0 - mean) / std


@dataclass(frozen=True)
class CropFlip:
    """The random parameters of one batch: crop offsets (N,) and flip mask (N,), on the batch's device."""

    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor | None


def _draw(aug: Augmentation, n: int, generator: torch.Generator) -> CropFlip:
    """One batch's parameters from the CPU generator; the order of draws is part of the seeded results."""
    dy = dx = flip = None
    if aug.pad > 0:
        dy = torch.randint(0, 2 * aug.pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * aug.pad + 1, (n,), generator=generator)
    if aug.flip:
        flip = torch.rand(n, generator=generator) < 0.5
    return CropFlip(dy, dx, flip)


@dataclass(frozen=True)
class EpochCropFlip:
    """A whole epoch's parameters, (batches, N) each, already on the training device."""

    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor | None

    def batch(self, i: int) -> CropFlip:
        return CropFlip(*(None if t is None else t[i] for t in (self.dy, self.dx, self.flip)))


def draw_epoch(aug: Augmentation, batches: int, batch_size: int, generator: torch.Generator,
               device: torch.device) -> EpochCropFlip:
    """The parameters of `batches` batches, drawn as `batches` successive per-batch draws would be,
    then moved to `device` in one copy (pinned and non-blocking on CUDA)."""
    drawn = [_draw(aug, batch_size, generator) for _ in range(batches)]

    def stack(name: str) -> torch.Tensor | None:
        parts = [getattr(d, name) for d in drawn]
        if not parts or parts[0] is None:
            return None
        t = torch.stack(parts)
        if device.type == "cuda":
            return t.pin_memory().to(device, non_blocking=True)
        return t.to(device)

    return EpochCropFlip(stack("dy"), stack("dx"), stack("flip"))


def crop_flip(images: torch.Tensor, aug: Augmentation, params: CropFlip) -> torch.Tensor:
    """Crop of the original size from the zero-padded batch at params' offsets, then params' flips.

    Works on any dtype; padding with 0 on uint8 images means black borders (as torchvision's
    RandomCrop(padding=p) does), applied before normalisation.
    """
    n, c, h, w = images.shape
    device = images.device
    if params.dy is not None and params.dx is not None:
        p = aug.pad
        padded = F.pad(images, (p, p, p, p)) if images.is_floating_point() else \
            F.pad(images.float(), (p, p, p, p)).to(images.dtype)  # F.pad lacks uint8 on some backends
        rows = params.dy.to(device).view(n, 1) + torch.arange(h, device=device).view(1, h)  # (n, h)
        cols = params.dx.to(device).view(n, 1) + torch.arange(w, device=device).view(1, w)  # (n, w)
        # Two gathers (rows, then columns) instead of one 4-d advanced index: contiguous and cheap.
        wp = padded.shape[3]
        out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, wp))
        images = out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
    if params.flip is not None:
        images = torch.where(params.flip.to(device).view(n, 1, 1, 1), images.flip(3), images)
    return images


def random_crop_flip(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Random crop of the original size from the zero-padded batch, then a random horizontal flip.

    Draws on the CPU generator and copies the parameters per call: fine on the CPU; the training
    loop uses draw_epoch + crop_flip instead.
    """
    return crop_flip(images, aug, _draw(aug, images.shape[0], generator))


def prepare(images: torch.Tensor, aug: Augmentation, *, train: bool, generator: torch.Generator | None = None,
            params: CropFlip | None = None, resolution: int | None = None, channels_last: bool = False,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The model's input from a uint8 batch: augment (training only), normalise, resize, layout.

    Augmentation uses `params` (drawn ahead, see draw_epoch) if given, else draws from `generator`.
    """
    if train and params is not None:
        images = crop_flip(images, aug, params)
    elif train and generator is not None:
        images = random_crop_flip(images, aug, generator)
    x = normalise(images, aug, dtype)
    if resolution is not None and resolution != x.shape[-1]:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=resolution < x.shape[-1])
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


__all__ = ["CropFlip", "EpochCropFlip", "crop_flip", "draw_epoch", "normalise", "prepare", "random_crop_flip"]
