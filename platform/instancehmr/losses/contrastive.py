"""Instance-aware contrastive loss (docs/method.md#contrastive-loss, Eq. 1-2), vectorised over
people and joints.

Features are sampled at ground-truth positions (row = y, col = x: the release samples at
transposed positions), projected by P_C / P_J, then centers of different people are pushed
apart and each person's center is pulled towards its visible joints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_features(feature_map: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Feature vectors at map pixels.

    feature_map (B, D, h, w); positions (B, ..., 2) as (x, y) in map pixels, rounded to the
    nearest pixel and clamped to the map. Returns (B, ..., D), read at [row = y, col = x].
    """
    b, d, h, w = feature_map.shape
    pos = positions.round().long()
    x, y = pos[..., 0].clamp(0, w - 1), pos[..., 1].clamp(0, h - 1)
    flat_index = (y * w + x).reshape(b, 1, -1).expand(b, d, -1)  # (B, D, M)
    sampled = feature_map.flatten(2).gather(2, flat_index)  # (B, D, M)
    return sampled.transpose(1, 2).reshape(*positions.shape[:-1], d)


def push_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L_push = 1 + cos(a, b) over the last dimension."""
    return 1 + F.cosine_similarity(a, b, dim=-1)


def pull_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L_pull = 1 - cos(a, b) over the last dimension."""
    return 1 - F.cosine_similarity(a, b, dim=-1)


def contrastive_loss(
    u: torch.Tensor, v: torch.Tensor, v_mask: torch.Tensor, person_mask: torch.Tensor
) -> torch.Tensor:
    """Eq. 2 averaged over the images that have a term.

    u (B, N, D) projected center features; v (B, N, K, D) projected joint features;
    v_mask (B, N, K) visible joints; person_mask (B, N) real (not padding) people.
    Per image: 2 / (N (N - 1)) * sum over pairs i < j of L_push(u_i, u_j) (N >= 2) plus the
    mean over people with visible joints of 1 / K_i * sum_k L_pull(u_i, v_i^k). An image with
    no person, or one person without visible joints, has no term. Returns a scalar.
    """
    person = person_mask.bool()
    joints = v_mask.bool() & person[..., None]
    n = person.sum(dim=1)  # (B,)
    un = F.normalize(u, dim=-1)
    cos_uu = un @ un.transpose(1, 2)  # (B, N, N)
    upper = torch.ones_like(cos_uu, dtype=torch.bool).triu(diagonal=1)
    pairs = person[:, :, None] & person[:, None, :] & upper
    n_pairs = pairs.sum(dim=(1, 2))
    push = ((1 + cos_uu) * pairs).sum(dim=(1, 2)) / n_pairs.clamp(min=1)

    pull_kn = pull_loss(u[:, :, None, :], v)  # (B, N, K)
    k = joints.sum(dim=2)  # (B, N)
    per_person = (pull_kn * joints).sum(dim=2) / k.clamp(min=1)
    has_pull = k > 0
    n_pull = has_pull.sum(dim=1)
    pull = (per_person * has_pull).sum(dim=1) / n_pull.clamp(min=1)

    per_image = push * (n >= 2) + pull
    has_term = (n >= 2) | (n_pull > 0)
    return (per_image * has_term).sum() / has_term.sum().clamp(min=1)
