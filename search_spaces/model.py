"""Build a torch model from an Architecture.

The block is torchvision's ResNeXt bottleneck (v1.5: the stride sits on the grouped 3x3 conv), and
modules are registered in torchvision's order and names (conv1, bn1, layer1..N, fc), so that
torchvision's resnext50_32x4d weights load into the same configuration.
"""

from __future__ import annotations

import torch
from torch import nn

from .architecture import Architecture


class Bottleneck(nn.Module):
    """1x1 reduce -> grouped 3x3 (C paths of width d, aggregated) -> 1x1 expand, plus shortcut."""

    def __init__(self, in_channels: int, out_channels: int, cardinality: int, group_width: int,
                 stride: int) -> None:
        super().__init__()
        width = cardinality * group_width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNeXt(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        stem_out = 64
        if arch.stem == "imagenet":
            self.conv1 = nn.Conv2d(arch.in_channels, stem_out, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:  # cifar
            self.conv1 = nn.Conv2d(arch.in_channels, stem_out, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(stem_out)
        self.relu = nn.ReLU(inplace=True)
        channels = stem_out
        for i, stage in enumerate(arch.stages):
            blocks = []
            for b in range(stage.depth):
                stride = 2 if (b == 0 and i > 0) else 1
                blocks.append(Bottleneck(channels, stage.out_channels, stage.cardinality,
                                         stage.group_width, stride))
                channels = stage.out_channels
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, arch.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's init, plus zero-init of each block's last BN gamma: every block starts as the
        # identity, which lets short proxy trainings (a few epochs) learn from the first epoch.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(len(self.arch.stages)):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_model(arch: Architecture) -> ResNeXt:
    return ResNeXt(arch)
