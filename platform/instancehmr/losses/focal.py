"""CornerNet focal loss on heatmaps (docs/method.md#heatmap-losses, Eq. 3-4), with channels
masked by labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-4


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    channel_mask: torch.Tensor | None = None,
    alpha: float = 2.0,
    beta: float = 4.0,
) -> torch.Tensor:
    """Mean focal loss over labelled channels.

    logits, target (B, C, h, w); target is 1 exactly at positives. channel_mask (B, C) bool:
    channels a sample does not label are ignored, not treated as negatives. Each (image,
    channel) is normalised by its number of positives (at least 1). Returns a scalar.
    """
    p = logits.sigmoid().clamp(EPS, 1 - EPS)
    log_p = F.logsigmoid(logits).clamp(min=torch.log(torch.tensor(EPS)).item())
    log_1mp = F.logsigmoid(-logits).clamp(min=torch.log(torch.tensor(EPS)).item())
    pos = target >= 1 - EPS
    pos_term = log_p * (1 - p) ** alpha * pos
    neg_term = log_1mp * p**alpha * (1 - target) ** beta * ~pos
    num_pos = pos.flatten(2).sum(-1).clamp(min=1)
    per_channel = -(pos_term + neg_term).flatten(2).sum(-1) / num_pos  # (B, C)
    if channel_mask is None:
        return per_channel.mean()
    mask = channel_mask.to(per_channel.dtype)
    return (per_channel * mask).sum() / mask.sum().clamp(min=1)
