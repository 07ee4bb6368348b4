"""Mesh supervision terms of Eq. 5 for the people of a batch, each over the people that have
the label: L_pose, L_shape, L_prior, L_3d, L_pa3d, L_2d.

Every function takes flattened people (N, ...) with a per-person or per-joint mask and returns
a scalar: the mean over the people that carry the label (0 when none does, graph kept).
Masked entries are selected out (``torch.where``), never multiplied by a zero weight: a missing
label may hold anything (NaN included) and must reach neither the loss nor its gradient.
"""

from __future__ import annotations

import roma
import torch

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.geometry import mean_joint_distance, procrustes_align

#: Root candidates for root alignment, best first: SMPL pelvis, Human3.6M pelvis.
ROOTS = (CANONICAL_INDEX["pelvis"], CANONICAL_INDEX["h36m_pelvis"])
HIPS = (CANONICAL_INDEX["left_hip"], CANONICAL_INDEX["right_hip"])
PREDICTED_POSE_JOINTS = 22  # global orientation + 21 body joints; SMPL hands are not predicted


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; 0 (with gradient path) when the mask is empty."""
    return torch.where(mask, values, values.new_zeros(())).sum() / mask.sum().clamp(min=1)


def align_to_labelled_root(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
    """Subtract each person's root from both joint sets.

    pred, target (N, J, 3) canonical joints, valid (N, J). The root is the first labelled of
    the SMPL pelvis, the Human3.6M pelvis, or the hip midpoint. Returns aligned pred, target
    and a (N,) mask of people that have a root.
    """
    n = len(pred)
    root_pred = torch.zeros(n, 3, dtype=pred.dtype, device=pred.device)
    root_target = torch.zeros_like(root_pred)
    found = torch.zeros(n, dtype=torch.bool, device=pred.device)
    candidates = [((r,), valid[:, r]) for r in ROOTS] + [
        (HIPS, valid[:, HIPS[0]] & valid[:, HIPS[1]])
    ]
    for joints, has in candidates:
        take = has & ~found
        idx = list(joints)
        root_pred = torch.where(take[:, None], pred[:, idx].mean(1), root_pred)
        root_target = torch.where(take[:, None], target[:, idx].mean(1), root_target)
        found |= take
    return pred - root_pred[:, None], target - root_target[:, None], found


def j3d_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L_3d: root-aligned 3-D joint distance (metres). pred, target (N, 48, 3), valid (N, 48)."""
    p, t, has_root = align_to_labelled_root(pred, target, valid)
    return masked_mean(mean_joint_distance(p, t, valid), has_root & valid.any(1))


def pa3d_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L_pa3d: 3-D joint distance after Procrustes alignment (people with >= 3 joints)."""
    aligned = procrustes_align(pred, target, valid)
    return masked_mean(mean_joint_distance(aligned, target, valid), valid.sum(1) >= 3)


def j2d_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L_2d: distance of projected joints, normalised coordinates. (N, J, 2), valid (N, J)."""
    return masked_mean(mean_joint_distance(pred, target, valid), valid.any(1))


def pose_loss(
    pred_rotmats: torch.Tensor, target_pose: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """L_pose: squared Frobenius distance of rotation matrices (release), joints 0-21.

    pred_rotmats (N, 24, 3, 3); target_pose (N, 72) axis-angle; valid (N,).
    """
    target = roma.rotvec_to_rotmat(target_pose.unflatten(-1, (24, 3)))
    j = PREDICTED_POSE_JOINTS
    per_person = ((pred_rotmats[:, :j] - target[:, :j]) ** 2).sum(dim=(-1, -2)).mean(1)
    return masked_mean(per_person, valid)


def shape_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, regularizer: float
) -> torch.Tensor:
    """L_shape: mean squared beta error where GT exists, ``regularizer * mean(beta^2)`` elsewhere.

    pred, target (N, B); valid (N,). Averaged over all N people.
    """
    with_gt = ((pred - target) ** 2).mean(1)
    without_gt = regularizer * (pred**2).mean(1)
    per_person = torch.where(valid, with_gt, without_gt)
    return masked_mean(per_person, torch.ones_like(valid))


def prior_loss(prior: torch.nn.Module, body_rotmats: torch.Tensor) -> torch.Tensor:
    """L_prior: pose-prior NLL of the 23 body joints (N, 23, 3, 3), mean over people."""
    if len(body_rotmats) == 0:
        return body_rotmats.sum()
    return prior(roma.rotmat_to_rotvec(body_rotmats).flatten(1)).mean()
