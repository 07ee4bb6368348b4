"""2-D sinusoidal positional encoding added to the center-aligned instance map
(docs/method.md#positional-encoding)."""

from __future__ import annotations

import math

import torch


def sinusoidal_encoding_2d(
    dim: int, height: int, width: int, temperature: float = 1e4, device=None, dtype=None
) -> torch.Tensor:
    """(dim, H, W) encoding: the first dim/2 channels encode y, the rest x (DETR style).

    Coordinates are normalised to (0, 1] and scaled by 2 pi; each half interleaves sin and cos
    over dim/4 frequencies ``temperature ** (2 i / (dim / 2))``.
    """
    if dim % 4:
        raise ValueError(f"positional encoding needs a channel count divisible by 4, got {dim}")
    half = dim // 2
    ys = torch.arange(1, height + 1, device=device, dtype=torch.float32) / height * 2 * math.pi
    xs = torch.arange(1, width + 1, device=device, dtype=torch.float32) / width * 2 * math.pi
    freq = temperature ** (2 * (torch.arange(half, device=device) // 2) / half)

    def encode(pos: torch.Tensor) -> torch.Tensor:  # (L,) -> (half, L)
        angles = pos[None] / freq[:, None]
        return torch.stack([angles[0::2].sin(), angles[1::2].cos()], dim=1).flatten(0, 1)

    enc_y = encode(ys)[:, :, None].expand(half, height, width)
    enc_x = encode(xs)[:, None, :].expand(half, height, width)
    return torch.cat([enc_y, enc_x]).to(dtype or torch.float32)
