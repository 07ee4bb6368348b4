"""Training targets drawn on the output map: center and joint heatmaps
(docs/method.md#heatmap-targets).

Positions are in map pixels with pixel centres at integers (see :mod:`instancehmr.geometry`).
A Gaussian is drawn around the nearest pixel, so its peak value is exactly 1 there (the focal
loss's positive); overlapping people combine by maximum.
"""

from __future__ import annotations

import numpy as np

from instancehmr.body.joint_sets import CANONICAL_INDEX

JOINT_SIGMA = 1.0  # joint heatmap Gaussian, map pixels (release, on the 64 map)
REFERENCE_MAP = 64  # map size the release's center-radius rule was written for


def center_radius(box_wh: np.ndarray, map_size: int) -> np.ndarray:
    """Adaptive center radius (release): r = int(|box_wh / 2| * 4 + 2) on a 64 map.

    box_wh (N, 2) box sizes in normalised units (the input's side spans 2). Returns (N,) int
    radii in map pixels, scaled to ``map_size``, at least 1.
    """
    r = (np.linalg.norm(np.asarray(box_wh, dtype=np.float64) / 2, axis=-1) * 4 + 2).astype(int)
    return np.maximum(1, np.round(r * map_size / REFERENCE_MAP)).astype(int)


def draw_gaussian(heatmap: np.ndarray, center: np.ndarray, sigma: float, radius: int) -> None:
    """Max-combine a Gaussian peak of 1 at the pixel nearest ``center`` (x, y) into ``heatmap``
    (h, w), in place. Centers off the map draw nothing."""
    h, w = heatmap.shape
    cx, cy = round(float(center[0])), round(float(center[1]))
    if not (0 <= cx < w and 0 <= cy < h):
        return
    x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
    y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
    ys, xs = np.ogrid[y0 - cy : y1 - cy, x0 - cx : x1 - cx]
    patch = np.exp(-(xs**2 + ys**2) / (2 * sigma**2))
    np.maximum(heatmap[y0:y1, x0:x1], patch, out=heatmap[y0:y1, x0:x1])


def center_heatmap(centers: np.ndarray, box_wh: np.ndarray, map_size: int) -> np.ndarray:
    """centers (N, 2) map pixels, box_wh (N, 2) normalised -> (1, h, w) float32 heatmap with
    sigma = (2r + 1) / 6 for each person's adaptive radius r."""
    heat = np.zeros((map_size, map_size), dtype=np.float32)
    for center, r in zip(centers, center_radius(box_wh, map_size), strict=True):
        draw_gaussian(heat, center, (2 * r + 1) / 6, int(r))
    return heat[None]


def joint_heatmaps(joints: np.ndarray, visible: np.ndarray, map_size: int) -> np.ndarray:
    """joints (N, J, 2) map pixels, visible (N, J) -> (J, h, w) float32, max over people,
    Gaussian sigma 1 (scaled with the map) drawn only at visible joints."""
    n_joints = joints.shape[1]
    heat = np.zeros((n_joints, map_size, map_size), dtype=np.float32)
    sigma = JOINT_SIGMA * map_size / REFERENCE_MAP
    radius = max(1, int(np.ceil(3 * sigma)))
    for person, vis in zip(joints, visible, strict=True):
        for j in np.flatnonzero(vis):
            draw_gaussian(heat[j], person[j], sigma, radius)
    return heat


#: Canonical joints whose mean is a person's body center (hips and shoulders, SMPL or H36M).
TORSO = (
    ("left_hip", "h36m_left_hip"),
    ("right_hip", "h36m_right_hip"),
    ("left_shoulder", "h36m_left_shoulder"),
    ("right_shoulder", "h36m_right_shoulder"),
)


def body_center(keypoints_2d: np.ndarray, labelled: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(2,) body center: mean of the labelled torso joints (one of each pair in ``TORSO``,
    at least two), else the box center. keypoints_2d (48, 2), labelled (48,), box (4,)."""
    points = []
    for names in TORSO:
        for name in names:
            i = CANONICAL_INDEX[name]
            if labelled[i]:
                points.append(keypoints_2d[i])
                break
    if len(points) >= 2:
        return np.mean(points, axis=0)
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], dtype=np.float64)
