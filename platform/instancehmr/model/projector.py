"""Projectors P_C and P_J: three linear layers D -> D with ReLU between (training only)."""

from __future__ import annotations

from torch import nn


def projector(dim: int) -> nn.Sequential:
    """(..., D) -> (..., D) MLP applied to sampled instance-map features."""
    return nn.Sequential(
        nn.Linear(dim, dim),
        nn.ReLU(inplace=True),
        nn.Linear(dim, dim),
        nn.ReLU(inplace=True),
        nn.Linear(dim, dim),
    )
