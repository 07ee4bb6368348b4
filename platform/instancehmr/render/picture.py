"""The picture a training run logs every epoch: the same validation images in every run, each as
two large panels, the ground truth (labelled 2-D skeletons) beside the prediction (the
decoded meshes), each panel titled with what it shows, readable at the size MLflow previews
images.
"""

from __future__ import annotations

import cv2
import numpy as np

from instancehmr.body.joint_sets import SMPL_PARENTS
from instancehmr.render.overlay import draw_meshes

#: Side of one panel in pixels (network inputs are scaled up to it).
PANEL = 384
#: Height of the title band above each panel.
TITLE = 30
SKELETON_COLOUR = (80, 255, 120)


def scale_affine(panel: int, size: int) -> np.ndarray:
    """(2, 3) affine from panel pixels to input pixels for an input of side ``size`` scaled to
    ``panel`` (pixel centres on pixel centres)."""
    inv = size / panel
    return np.array([[inv, 0.0, (inv - 1) / 2], [0.0, inv, (inv - 1) / 2]])


def _titled(panel: np.ndarray, text: str) -> np.ndarray:
    band = np.full((TITLE, panel.shape[1], 3), 32, np.uint8)
    cv2.putText(band, text, (8, TITLE - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                cv2.LINE_AA)  # fmt: skip
    return np.concatenate([band, panel], axis=0)


def draw_skeletons(image: np.ndarray, joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """SMPL-24 skeletons over an RGB image: joints (P, 24, 2) in its pixels, visible (P, 24);
    a bone is drawn where both its joints are labelled."""
    out = image.copy()
    for person, seen in zip(joints, visible, strict=True):
        for child, parent in enumerate(SMPL_PARENTS):
            if parent >= 0 and seen[child] and seen[parent]:
                a, b = person[child].round().astype(int), person[parent].round().astype(int)
                cv2.line(out, tuple(a), tuple(b), SKELETON_COLOUR, 2, cv2.LINE_AA)
        for point in person[seen]:
            cv2.circle(out, tuple(point.round().astype(int)), 3, SKELETON_COLOUR, -1, cv2.LINE_AA)
    return out


def validation_picture(
    images: np.ndarray,
    gt_joints: list[np.ndarray],
    gt_visible: list[np.ndarray],
    vertices: list[np.ndarray],
    cameras: list[np.ndarray],
    faces: np.ndarray,
) -> np.ndarray:
    """A row per image: its ground truth, then its prediction, each a titled ``PANEL`` square.

    images (N, S, S, 3) uint8 network inputs; per image, ground-truth joints (P, 24, 2) in input
    pixels with their labels (P, 24), predicted pelvis-centred vertices (M, V, 3) with their
    weak-perspective cameras (M, 3). Returns (N * (TITLE + PANEL), 2 * PANEL, 3) uint8 RGB."""
    size = images.shape[1]
    k = PANEL / size
    rows = []
    for i, image in enumerate(images):
        big = cv2.resize(image, (PANEL, PANEL), interpolation=cv2.INTER_LINEAR)
        truth = draw_skeletons(big, (gt_joints[i] + 0.5) * k - 0.5, gt_visible[i])
        found = draw_meshes(big, vertices[i], cameras[i], faces,
                            affine=scale_affine(PANEL, size), input_size=size)  # fmt: skip
        count = len(gt_joints[i])
        left = _titled(truth, f"ground truth: {count} {'person' if count == 1 else 'people'}")
        right = _titled(found, f"prediction: {len(vertices[i])} found")
        rows.append(np.concatenate([left, right], axis=1))
    return np.concatenate(rows, axis=0)
