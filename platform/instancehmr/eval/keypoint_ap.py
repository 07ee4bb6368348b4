"""OKS average precision of 2-D keypoints by each benchmark's own definition, on pycocotools.

Two definitions (``AP_DEFINITIONS``), both ranking detections by score, matching them greedily
to ground-truth people at 10 OKS thresholds 0.50:0.05:0.95, at most 20 detections per image,
ignoring crowd regions (``iscrowd``) and people whose ``num_keypoints`` is 0, and averaging
precision over 101 recall levels:

* ``coco`` (COCO, OCHuman): cocoapi's keypoint evaluation (cocodataset/cocoapi,
  PythonAPI/pycocotools/cocoeval.py). The OKS scale s² is each person's ``area`` (its segment
  area). Reports AP, AP50, AP75 and APM / APL: AP over people of area in [32², 96²] / above 96²
  (px²).
* ``crowdpose``: the CrowdPose benchmark's evaluation (Jeff-sjtu/CrowdPose,
  crowdpose-api/PythonAPI/crowdposetools/cocoeval.py; the same as xtcocotools'
  ``iouType="keypoints_crowd"`` with ``use_area=False``, jin-s13/xtcocoapi
  xtcocotools/cocoeval.py, which mmpose's CrowdPose configs use). The OKS scale is
  0.53 x the person's box width x height, whatever ``area`` says. Reports AP, AP50, AP75 over
  all images and AP easy / medium / hard: AP over the images whose ``crowdIndex`` is below 0.2,
  from 0.2 to below 0.8, from 0.8 (``CROWD_INDEX_THRESHOLDS``), each evaluated on its own.
  The official rounds AP easy / medium / hard to 4 decimals; this does not.

Written on pycocotools rather than taken from a library: xtcocotools' wheels (1.14.3, the newest)
are built against numpy 1 and fail to import under numpy 2 ("numpy.dtype size changed"), and
crowdposetools is not packaged. The CrowdPose scale goes into pycocotools as each person's
``area``, which pycocotools reads both as the OKS scale and for its area ranges, exactly where
the official reads 0.53 x box area.

An AP over no ground-truth person (no person of medium area, no hard image) is undefined: NaN,
never a number (cocoapi prints -1).

Ground truth is a COCO-style dict (images, annotations, categories), checked and indexed once
by :func:`index_ground_truth` before anything is scored.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Imported inside the functions that use them, to keep this module light: pycocotools.

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
#: The metrics of each definition, by their row names (``instancehmr.eval.table``).
AP_METRICS = {
    "coco": ("ap", "ap50", "ap75", "apm", "apl"),
    "crowdpose": ("ap", "ap50", "ap75", "ap_easy", "ap_medium", "ap_hard"),
}
AP_DEFINITIONS = tuple(AP_METRICS)
#: CrowdPose's OKS scale: this share of the box's area (crowdposetools' ``tmparea``).
CROWDPOSE_BOX_SHARE = 0.53
#: CrowdPose's crowd-index classes: easy below 0.2, medium from 0.2 to below 0.8, hard from 0.8
#: (crowdposetools' ``get_type_result(first=0.2, second=0.8)``).
CROWD_INDEX_THRESHOLDS = (0.2, 0.8)


@dataclass(frozen=True)
class GroundTruth:
    """A benchmark's annotations, checked and indexed for one AP definition."""

    #: pycocotools ``COCO`` over the checked copy (``area`` = the definition's OKS scale).
    index: Any
    definition: str
    #: The keypoint category (detections carry its id) and its number of joints J.
    category_id: int
    joints: int


def crowd_index_class(crowd_index: float) -> str:
    """The metric (``ap_easy``, ``ap_medium``, ``ap_hard``) an image of this crowd index counts
    in (``CROWD_INDEX_THRESHOLDS``)."""
    easy_below, hard_from = CROWD_INDEX_THRESHOLDS
    if crowd_index < easy_below:
        return "ap_easy"
    return "ap_medium" if crowd_index < hard_from else "ap_hard"


def _numbers(value: Any, size: int, what: str, where: str) -> np.ndarray:
    """``value`` as ``size`` finite floats; ValueError naming ``where`` and ``what`` otherwise."""
    if value is None:
        raise ValueError(f"{where}: {what} is missing")
    try:
        out = np.asarray(value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {what} is not a list of numbers") from None
    if out.size != size:
        raise ValueError(f"{where}: {what} has {out.size} values, expected {size}")
    if not np.isfinite(out).all():
        raise ValueError(f"{where}: {what} are not all finite")
    return out


def _checked_annotation(ann: dict, joints: int, definition: str, where: str) -> dict:
    """A copy of one ground-truth annotation as pycocotools needs it: null, absent or empty
    ``keypoints`` = no labelled joint (``num_keypoints`` 0: ignored, as COCO's people without
    keypoints); ``area`` = the definition's OKS scale (``coco``: the file's area, the box's area
    where that is absent or not positive); missing ``iscrowd`` = 0, missing ``num_keypoints`` =
    the count of labelled joints (a file's own count is kept: CrowdPose's counts only v = 2)."""
    raw = ann.get("keypoints")
    unlabelled = raw in (None, [])
    keypoints = (
        np.zeros(3 * joints) if unlabelled else _numbers(raw, 3 * joints, "keypoints", where)
    )
    box = _numbers(ann.get("bbox"), 4, "bbox (x, y, w, h)", where)
    if box[2] < 0 or box[3] < 0:
        raise ValueError(f"{where}: bbox {ann['bbox']!r} has a negative width or height")
    box_area = float(box[2] * box[3])
    if definition == "crowdpose":
        area = CROWDPOSE_BOX_SHARE * box_area
        if area <= 0:
            raise ValueError(
                f"{where}: bbox {ann['bbox']!r} has no area, and CrowdPose's OKS scale is "
                f"{CROWDPOSE_BOX_SHARE} x the box's area"
            )
    else:
        given = ann.get("area")
        usable = isinstance(given, (int, float)) and math.isfinite(given) and given > 0
        area = float(given) if usable else box_area
        if area <= 0:
            raise ValueError(
                f"{where}: neither area {given!r} nor bbox {ann['bbox']!r} gives the OKS scale "
                "(a positive area)"
            )
    num_keypoints = 0 if unlabelled else ann.get("num_keypoints")
    if num_keypoints is None:
        num_keypoints = int(np.count_nonzero(keypoints[2::3] > 0))
    return {
        **ann,
        "keypoints": keypoints.tolist(),
        "bbox": box.tolist(),
        "area": area,
        "iscrowd": int(ann.get("iscrowd") or 0),
        "num_keypoints": num_keypoints,
    }


def index_ground_truth(
    gt: dict, definition: str = "coco", source: str = "ground truth"
) -> GroundTruth:
    """Check and index ``gt`` (a COCO-style dict, not modified) for ``definition`` (one of
    ``AP_DEFINITIONS``). Annotations of the one category with ``keypoints`` are kept (a missing
    ``category_id`` is that category); see :func:`_checked_annotation` for what is filled in.

    Raises ValueError naming ``source`` and the annotation or image id when an annotation has
    keypoints that are not 3J finite numbers, a box that is missing or not x, y, w, h with
    w, h >= 0 (pycocotools reads every person's box), no positive OKS scale, when the file has
    not exactly one keypoint category, or (``crowdpose``) when an image has no numeric
    ``crowdIndex``.
    """
    from pycocotools.coco import COCO  # pycocotools imports matplotlib: only when evaluating

    if definition not in AP_DEFINITIONS:
        raise ValueError(f"unknown AP definition '{definition}'; known: {list(AP_DEFINITIONS)}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise ValueError(f"{source}: '{key}' is missing or not a list")
    categories = [c for c in gt["categories"] if isinstance(c, dict) and "keypoints" in c]
    if len(categories) != 1:
        raise ValueError(f"{source}: expected one category with 'keypoints', got {len(categories)}")
    category = categories[0]
    joints = len(category["keypoints"])
    if definition == "crowdpose":
        for image in gt["images"]:
            value = image.get("crowdIndex")
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(
                    f"{source}: image {image.get('id')}: crowdIndex {value!r} is not a number "
                    "(CrowdPose's AP easy / medium / hard classify images by it)"
                )
    annotations = [
        _checked_annotation(
            {**ann, "category_id": category["id"]},
            joints,
            definition,
            f"{source}: annotation {ann.get('id')}",
        )
        for ann in gt["annotations"]
        if ann.get("category_id", category["id"]) == category["id"]
    ]
    coco = COCO()
    coco.dataset = {
        "images": copy.deepcopy(gt["images"]),
        "categories": [copy.deepcopy(category)],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return GroundTruth(coco, definition, category["id"], joints)


def _results(ground_truth: GroundTruth, detections: list[dict]):
    """The detections as a pycocotools results index (an empty one for no detection)."""
    from pycocotools.coco import COCO

    if detections:
        return ground_truth.index.loadRes(copy.deepcopy(detections))
    empty = COCO()
    empty.dataset = {**ground_truth.index.dataset, "annotations": []}
    empty.createIndex()
    return empty


def _precision(evaluation, image_ids: list) -> np.ndarray:
    """Precision (T OKS thresholds, R recall levels, K categories, A area ranges, M detection
    limits) over ``image_ids``; -1 where there is no ground-truth person."""
    evaluation.params.imgIds = image_ids
    evaluation.evaluate()
    evaluation.accumulate()
    return evaluation.eval["precision"]


def _mean(precision: np.ndarray) -> float:
    """Mean precision over the settings that have ground truth; NaN (undefined) if none has."""
    defined = precision[precision > -1]
    return float(defined.mean()) if defined.size else math.nan


def keypoint_ap(
    ground_truth: GroundTruth, detections: list[dict], sigmas: np.ndarray
) -> dict[str, float]:
    """AP of ``detections`` against ``ground_truth`` by its definition (module docstring).

    ``detections``: {image_id, category_id, keypoints (3J flat, x y v, pixels), score}, as
    :func:`to_detections` makes them; ``sigmas``: (J,) per-joint OKS sigmas. Returns
    {metric: AP in [0, 1] or NaN where undefined} with the metrics of
    ``AP_METRICS[ground_truth.definition]``. No detection gives AP 0 wherever there is ground
    truth. Raises ValueError when ``sigmas`` is not (J,).
    """
    from pycocotools.cocoeval import COCOeval

    sigmas = np.asarray(sigmas, np.float64)
    if sigmas.shape != (ground_truth.joints,):
        raise ValueError(
            f"sigmas of shape {sigmas.shape}, expected ({ground_truth.joints},): one per joint"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(ground_truth.index, _results(ground_truth, detections), "keypoints")
        p = evaluation.params
        p.kpt_oks_sigmas = sigmas
        p.catIds = [ground_truth.category_id]
        if ground_truth.definition == "crowdpose":
            p.areaRng, p.areaRngLbl = p.areaRng[:1], p.areaRngLbl[:1]  # 'all' only
        images = ground_truth.index.dataset["images"]
        precision = _precision(evaluation, sorted(i["id"] for i in images))
        t50, t75 = (int(np.argmin(abs(p.iouThrs - t))) for t in (0.5, 0.75))
        out = {"ap": _mean(precision[..., 0, :]), "ap50": _mean(precision[t50, ..., 0, :]),
               "ap75": _mean(precision[t75, ..., 0, :])}  # fmt: skip
        if ground_truth.definition == "coco":
            out["apm"] = _mean(precision[..., p.areaRngLbl.index("medium"), :])
            out["apl"] = _mean(precision[..., p.areaRngLbl.index("large"), :])
        else:
            for name in AP_METRICS["crowdpose"][3:]:
                ids = sorted(i["id"] for i in images if crowd_index_class(i["crowdIndex"]) == name)
                out[name] = _mean(_precision(evaluation, ids)[..., 0, :]) if ids else math.nan
    return out


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
