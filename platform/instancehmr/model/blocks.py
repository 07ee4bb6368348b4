"""Convolutional building blocks shared by the heads and branches of the network."""

from __future__ import annotations

import torch
from torch import nn


def coord_channels(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) CoordConv channels: x then y, each spanning [-1, 1]."""
    ys = torch.linspace(-1, 1, height, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1, 1, width, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])[None].expand(batch, -1, -1, -1)


def with_coords(features: torch.Tensor) -> torch.Tensor:
    """Append CoordConv channels: (B, C, H, W) -> (B, C + 2, H, W)."""
    b, _, h, w = features.shape
    return torch.cat([features, coord_channels(b, h, w, features)], dim=1)


def conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """ResNet basic block with identity shortcut: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.body(x))


class Head(nn.Module):
    """The head of docs/method.md#heads: 3x3 conv (stride 2 from the backbone) to C, BN, ReLU,
    two residual blocks, 1x1 conv to ``out_ch``. Input features get CoordConv channels first.

    (B, in_ch, 2h, 2w) -> (B, out_ch, h, w) with ``stride=2``; same size with ``stride=1``.
    """

    def __init__(self, in_ch: int, channels: int, out_ch: int, stride: int = 2) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            conv_bn_relu(in_ch + 2, channels, stride=stride),
            ResidualBlock(channels),
            ResidualBlock(channels),
        )
        self.out = nn.Conv2d(channels, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(with_coords(x)))
