"""Camera and alignment geometry shared by the model, the losses, the data pipeline and evaluation.

Conventions: 3-D points in the camera frame (x right, y down, z forward, metres). The network's
weak-perspective camera (s, tx, ty) maps a pelvis-centred point (x, y, z) to normalised image
coordinates (s * x + tx, s * y + ty), where [-1, 1] spans the square network input.
Pixel coordinates put pixel centres at integers (OpenCV's convention): an image of side S spans
[-0.5, S - 0.5], so [-1, 1] covers the input edge to edge at any resolution (input or map).
Image transforms are 2x3 affine matrices acting on (x, y, 1) pixel coordinates.
"""

from __future__ import annotations

import torch


def weak_perspective_project(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """points (N, J, 3) pelvis-centred, camera (N, 3) = (s, tx, ty) -> (N, J, 2) normalised."""
    return points[..., :2] * camera[:, None, :1] + camera[:, None, 1:]


def normalized_to_pixels(points: torch.Tensor, size: int | float) -> torch.Tensor:
    """Normalised coordinates in [-1, 1] -> pixels of a square image of side ``size``."""
    return (points + 1) * (size / 2) - 0.5


def pixels_to_normalized(points: torch.Tensor, size: int | float) -> torch.Tensor:
    """Pixels of a square image of side ``size`` -> normalised coordinates in [-1, 1]."""
    return (points + 0.5) / (size / 2) - 1


def in_frame(points, height: int, width: int):
    """(..., 2) pixel positions (numpy or torch) -> (...,) bool: inside an image of that size."""
    x, y = points[..., 0], points[..., 1]
    return (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)


def letterbox(height: int, width: int, size: int) -> torch.Tensor:
    """(2, 3) affine from an original image to the square network input: scale the longer side
    to ``size`` and zero-pad the shorter one, centred."""
    scale = size / max(height, width)
    shift = (scale - 1) / 2  # keeps pixel centres at integers on both sides
    return torch.tensor(
        [
            [scale, 0.0, (size - width * scale) / 2 + shift],
            [0.0, scale, (size - height * scale) / 2 + shift],
        ]
    )


def apply_affine(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """points (..., J, 2), affine (..., 2, 3) (broadcast over leading dims) -> (..., J, 2)."""
    return points @ affine[..., :, :2].transpose(-1, -2) + affine[..., None, :, 2]


def invert_affine(affine: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 2, 3) affine transforms."""
    linear_inv = torch.linalg.inv(affine[..., :, :2])
    return torch.cat([linear_inv, -(linear_inv @ affine[..., :, 2:])], dim=-1)


#: Smallest relative gap between squared singular values of the cross-covariance for which the
#: SVD's gradient is taken; closer values (a degenerate joint layout) would make it infinite.
SVD_GAP = 1e-6


def procrustes_align(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Similarity-align ``pred`` (N, J, 3) to ``target`` (N, J, 3) over the joints where
    ``mask`` (N, J) is true (Umeyama 1991: rotation, uniform scale, translation). Differentiable.

    Returns ``pred`` after alignment, (N, J, 3). Joints outside ``mask`` take no part, whatever
    they hold (NaN included). Only rows with at least 3 joints, finite values and a
    non-degenerate cross-covariance reach the SVD; the others are translated onto the target's
    centroid only, so no row can put a NaN into another's gradient (the SVD's backward is NaN
    for a zero or degenerate covariance, and masking its output afterwards keeps the NaN).
    Rows whose valid joints are non-finite stay non-finite, so a diverged prediction shows.
    """
    if mask is None:
        mask = torch.ones(pred.shape[:2], dtype=torch.bool, device=pred.device)
    m = mask[..., None]
    zero = pred.new_zeros(())
    count = m.sum(dim=1, keepdim=True).clamp(min=1)
    mu_p = torch.where(m, pred, zero).sum(dim=1, keepdim=True) / count
    mu_t = torch.where(m, target, zero).sum(dim=1, keepdim=True) / count
    p = torch.where(m, pred - mu_p, zero)
    t = torch.where(m, target - mu_t, zero)
    cov = t.transpose(1, 2) @ p  # (N, 3, 3) target x pred
    rot = torch.eye(3, dtype=pred.dtype, device=pred.device).repeat(len(pred), 1, 1)
    scale = pred.new_ones(len(pred))
    rows = (mask.sum(dim=1) >= 3) & torch.isfinite(cov).all(dim=(1, 2))
    if rows.any():
        with torch.no_grad():
            sq = torch.linalg.svdvals(cov[rows]) ** 2  # descending
            gaps = (sq[:, :-1] - sq[:, 1:]).min(dim=1).values
            well_posed = gaps > SVD_GAP * sq[:, 0].clamp(min=torch.finfo(sq.dtype).tiny)
        rows[rows.clone()] = well_posed
    if rows.any():
        u, sigma, vh = torch.linalg.svd(cov[rows])
        d = torch.ones_like(sigma)
        d[:, -1] = torch.sign(torch.linalg.det(u @ vh))
        rot[rows] = u @ torch.diag_embed(d) @ vh  # rotates pred onto target
        var_p = (p[rows] ** 2).sum(dim=(1, 2))
        scale[rows] = (sigma * d).sum(dim=1) / var_p.clamp(min=1e-12)
    return scale[:, None, None] * (pred - mu_p) @ rot.transpose(1, 2) + mu_t


def mean_joint_distance(
    pred: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor | None,
    num_joints: int | None = None,
) -> torch.Tensor:
    """Per-person mean distance (N,) between ``pred`` and ``gt`` (N, J, 3) over the joints where
    ``valid`` (N, J) holds (all when None). Other joints are selected out before any arithmetic,
    so whatever they hold (NaN, inf) never counts. A person with no valid joint gets NaN (a
    loss selects such people out; a metric reports them undefined). ``num_joints`` divides the
    summed distance instead of the valid count (the Panoptic protocol of ``eval.metrics.mpjpe``).
    Units as given."""
    if valid is None:
        valid = torch.ones(pred.shape[:-1], dtype=torch.bool, device=pred.device)
    # Select before the norm: a NaN target would otherwise reach the gradient as 0 * NaN.
    diff = torch.where(valid[..., None], pred - gt, pred.new_zeros(()))
    total = diff.norm(dim=-1).sum(-1)
    count = valid.sum(-1)
    mean = total / (count.clamp(min=1) if num_joints is None else num_joints)
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan")))
