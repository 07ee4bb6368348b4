"""Mesh-recovery metrics in millimetres and center-detection average precision.

Pure functions over tensors (no Ray, no MLflow): the training loop's validation and the
benchmark protocols call the same code. Joints and vertices are in metres in; errors are in
millimetres out, one value per person, so callers average over the people they choose.
"""

from __future__ import annotations

import numpy as np
import torch

from instancehmr.geometry import mean_joint_distance, procrustes_align

MM = 1000.0
#: A detected center within this share of the map side from a GT center is a true positive ...
CENTER_MATCH_FRACTION = 0.04
#: ... and never nearer than this many map pixels: a perfect integer peak lies up to
#: sqrt(2) / 2 pixels from a center that falls between pixels.
MIN_CENTER_MATCH_PIXELS = 1.0


def center_match_radius(map_size: int) -> float:
    """Center-AP match radius in map pixels at a map of side ``map_size``."""
    return max(CENTER_MATCH_FRACTION * map_size, MIN_CENTER_MATCH_PIXELS)


def align_root(points: torch.Tensor, joints: torch.Tensor, root: tuple[int, ...]) -> torch.Tensor:
    """Subtract the mean of the ``root`` joints (N, J, 3) from ``points`` (N, P, 3)."""
    return points - joints[:, list(root)].mean(1, keepdim=True)


def mpjpe(
    pred: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor | None = None,
    root: tuple[int, ...] = (0,),
    num_joints: int | None = None,
) -> torch.Tensor:
    """Root-aligned mean per-joint position error, (N,) mm.

    pred, gt (N, J, 3) metres; valid (N, J) bool, None for all. ``root`` indexes the joints
    whose mean is the root (the pelvis, or both hips). Joints that are not valid never count,
    whatever they hold; a person whose root joints are not all valid, or who has no valid
    joint, gets NaN.

    By default the error is averaged over each person's valid joints. ``num_joints`` divides
    the summed error of the valid joints by that count instead: unlabelled joints of a
    protocol's full skeleton count as zero error, as the CMU Panoptic protocol of CRMH
    (github.com/JiangWenPL/multiperson, ``mmdetection/mmdet/core/utils/eval_utils.py``,
    ``PanopticEvalHandler``: 17 Human3.6M joints) and ROMP (github.com/Arthur151/ROMP,
    ``romp/test.py``, ``test_cmu_panoptic``) average it.
    """
    if valid is None:
        valid = torch.ones(pred.shape[:2], dtype=torch.bool, device=pred.device)
    error = mean_joint_distance(
        align_root(pred, pred, root), align_root(gt, gt, root), valid, num_joints
    )
    rooted = valid[:, list(root)].all(-1)
    return MM * torch.where(rooted, error, torch.full_like(error, float("nan")))


def pa_mpjpe(
    pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean per-joint error after Procrustes (similarity) alignment over the valid joints, (N,)
    mm. pred, gt (N, J, 3) metres; valid (N, J) bool, None for all. Joints that are not valid
    neither shape the alignment nor count, whatever they hold; a person with no valid joint
    gets NaN."""
    return MM * mean_joint_distance(procrustes_align(pred, gt, valid), gt, valid)


def mpvpe(
    pred_vertices: torch.Tensor,
    gt_vertices: torch.Tensor,
    pred_joints: torch.Tensor,
    gt_joints: torch.Tensor,
    root: tuple[int, ...] = (0,),
) -> torch.Tensor:
    """Mean per-vertex position error after aligning each mesh on its root joint(s), (N,) mm.
    vertices (N, V, 3) and joints (N, J, 3) in metres; only the ``root`` joints are read."""
    return MM * mean_joint_distance(
        align_root(pred_vertices, pred_joints, root), align_root(gt_vertices, gt_joints, root), None
    )


def average_precision(scores: np.ndarray, true_positive: np.ndarray, num_positives: int) -> float:
    """Area under the precision-recall curve (all-point interpolation, as in VOC / COCO-style
    detection AP) of detections with ``scores`` (D,) and ``true_positive`` (D,) flags."""
    if num_positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    tp = np.asarray(true_positive, np.float64)[order]
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(1 - tp)
    recall = np.concatenate([[0.0], tp_cum / num_positives, [1.0]])
    precision = np.concatenate([[1.0], tp_cum / np.maximum(tp_cum + fp_cum, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def match_centers(
    pred: np.ndarray, scores: np.ndarray, gt: np.ndarray, threshold: float
) -> np.ndarray:
    """Greedy matching in descending score: a detection (D, 2) is a true positive if an
    unmatched ground-truth center (G, 2) lies within ``threshold``. Returns (D,) bool."""
    order = np.argsort(-scores, kind="stable")
    taken = np.zeros(len(gt), bool)
    hit = np.zeros(len(pred), bool)
    for d in order:
        if not len(gt):
            break
        dist = np.linalg.norm(gt - pred[d], axis=1)
        dist[taken] = np.inf
        g = int(np.argmin(dist))
        if dist[g] <= threshold:
            taken[g] = hit[d] = True
    return hit


def center_ap(
    detections: list[tuple[np.ndarray, np.ndarray]],
    ground_truth: list[np.ndarray],
    threshold: float,
) -> float:
    """Center-detection AP over images: per image (centers (D, 2), scores (D,)) and GT centers
    (G, 2), all in map pixels; a detection within ``threshold`` pixels of a GT center counts."""
    scores, hits, positives = [], [], 0
    for (centers, s), gt in zip(detections, ground_truth, strict=True):
        scores.append(s)
        hits.append(match_centers(centers, s, gt, threshold))
        positives += len(gt)
    return average_precision(
        np.concatenate(scores or [[]]), np.concatenate(hits or [[]]), positives
    )
