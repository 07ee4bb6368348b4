"""OKS average precision of 2-D keypoints through pycocotools (COCO's own evaluation).

Each benchmark passes its keypoint sigmas (``params.kpt_oks_sigmas``); xtcocotools is not used
because its wheels are built for numpy 1. Ground truth is a COCO-style dict (images,
annotations, categories); annotations without an ``area`` (CrowdPose) get their box area,
without ``num_keypoints`` their labelled-joint count, and annotations without labelled
keypoints are ignored by COCOeval as in the official protocol.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

#: COCO-17 keypoint sigmas (cocoapi), nose first.
COCO_SIGMAS = np.array([
    0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87,
    0.89, 0.89,
]) / 10  # fmt: skip
#: CrowdPose's 14 joints: shoulders, elbows, wrists, hips, knees, ankles, head, neck.
CROWDPOSE_SIGMAS = (
    np.array([0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89, 0.79, 0.79])
    / 10
)
AP_NAMES = ("AP", "AP50", "AP75", "APM", "APL")


def ground_truth_index(gt: dict):
    """A pycocotools COCO index over a COCO-style dict (copied; missing ``area`` = box area)."""
    from pycocotools.coco import COCO  # pycocotools imports matplotlib: only when evaluating

    data = copy.deepcopy(gt)
    for ann in data["annotations"]:
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        ann.setdefault("iscrowd", 0)
        ann.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(ann["keypoints"])[2::3])))
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def keypoint_ap(gt: dict, detections: list[dict], sigmas: np.ndarray) -> dict[str, float]:
    """AP, AP50, AP75, APM, APL of ``detections`` ({image_id, category_id, keypoints (3J flat,
    x y v), score}) against ``gt`` with per-joint ``sigmas``. No detection at all gives 0."""
    from pycocotools.cocoeval import COCOeval

    coco = ground_truth_index(gt)
    if not detections:
        return dict.fromkeys(AP_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        results = coco.loadRes(copy.deepcopy(detections))
        evaluation = COCOeval(coco, results, "keypoints")
        evaluation.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {
        name: float(max(value, 0.0))
        for name, value in zip(AP_NAMES, evaluation.stats[:5], strict=True)
    }


def to_detections(
    joints_2d: np.ndarray, scores: np.ndarray, image_ids: list, category_id: int
) -> list[dict]:
    """COCO keypoint results of N people: joints_2d (N, J, 2) original-image pixels in the
    benchmark's joint order, scores (N,), image_ids (N,) the annotation file's image ids."""
    out = []
    for joints, score, image_id in zip(joints_2d, scores, image_ids, strict=True):
        flat = np.concatenate([joints, np.ones((len(joints), 1))], axis=1).reshape(-1)
        out.append(
            {
                "image_id": image_id,
                "category_id": category_id,
                "keypoints": [float(v) for v in flat],
                "score": float(score),
            }
        )
    return out
