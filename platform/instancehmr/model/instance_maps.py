"""Center-aligned and joint-aligned instance maps (docs/method.md#instance-maps, Fig. 3).

Each is a branch from the backbone whose features are concatenated with predicted heatmaps
(:mod:`instancehmr.model.network` chooses which: by default H_C and H_J for both, as the
release), refined and projected to the embedding dimension D; the center-aligned map then gets
the 2-D sinusoidal positional encoding added.
"""

from __future__ import annotations

import torch
from torch import nn

from instancehmr.model.blocks import ResidualBlock, conv_bn_relu, with_coords
from instancehmr.model.positional_encoding import sinusoidal_encoding_2d


class InstanceMapBranch(nn.Module):
    """(B, C_in, 2h, 2w) backbone features + (B, heatmap_ch, h, w) heatmaps -> (B, D, h, w)."""

    def __init__(
        self, in_ch: int, channels: int, heatmap_ch: int, dim: int, positional_encoding: bool
    ) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            conv_bn_relu(in_ch + 2, channels, stride=2), ResidualBlock(channels)
        )
        self.refine = nn.Sequential(
            conv_bn_relu(channels + heatmap_ch, channels), ResidualBlock(channels)
        )
        self.project = nn.Conv2d(channels, dim, 1)
        self.positional_encoding = positional_encoding

    def forward(self, features: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        x = self.trunk(with_coords(features))
        x = self.project(self.refine(torch.cat([x, heatmaps], dim=1)))
        if self.positional_encoding:
            _, d, h, w = x.shape
            x = x + sinusoidal_encoding_2d(d, h, w, device=x.device, dtype=x.dtype)
        return x
