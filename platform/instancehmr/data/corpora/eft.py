"""EFT pseudo-ground-truth SMPL fits (Joo et al., 3DV 2021) attached to 2-D-labelled people of
COCO, MPII and LSPet (optional split field ``eft`` of the ``coco_keypoints``, ``mpii`` and ``lsp``
formats).

EFT's JSON is ``{"ver": ..., "data": [fit, ...]}``, one fit per person: ``imageName`` (basename),
``annotId`` (COCO annotation id; COCO only), ``parm_pose`` (24, 3, 3) rotation matrices (global
orientation first, camera frame with y down), ``parm_shape`` (10,), ``parm_cam``,
``bbox_center``, ``bbox_scale``, ``smpltype`` and ``gt_keypoint_2d`` (49, 3): original-image pixels
and a confidence in SPIN's 49-joint order, 25 OpenPose BODY_25 joints (detector output) followed by
SPIN's 24 label joints (the dataset's own labels).

Matching runs when a converter indexes a split (:func:`attach_to_items`). A fit goes to the image
of its annotation id (COCO), else to the image whose ``image_key`` its ``imageName`` has, and
there to a person: by annotation id where the converter knows one, else by keypoints: the mean
distance of the joints labelled in both (at least 3), over the square root of the person's box
area, must be at most ``options.eft_match_threshold`` (default 0.1); Hungarian assignment keeps
the matching one-to-one. The fit's keypoints are its label joints, with the
OpenPose joints only where no label joint covers the same canonical joint. A matched person gets
``smpl_pose`` (72,) axis-angle and ``smpl_source = 'eft'``; betas stay unset
(docs/method.md#training-data: EFT gives pose and orientation, not shape). Unmatched people keep
their 2-D labels only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import roma
import torch
from scipy.optimize import linear_sum_assignment

from instancehmr.body.joint_sets import JointSet
from instancehmr.data.cards import Card, CardError
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.schema import VIS_UNLABELLED, Person

EFT_MATCH_THRESHOLD = 0.1
#: Fewest joints labelled in both a fit and a person for a keypoint match.
MIN_COMMON_JOINTS = 3
#: SPIN's 24 label joints (``gt_keypoint_2d[25:]``).
SPIN24 = JointSet(
    "spin24",
    (
        "Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee", "Left Ankle",
        "Right Wrist", "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow",
        "Left Wrist", "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)",
        "Spine (H36M)", "Jaw (H36M)", "Head (H36M)", "Nose", "Left Eye", "Right Eye",
        "Left Ear", "Right Ear",
    ),
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist", "upper_neck", "head_top", "pelvis", "neck", "h36m_spine",
        "h36m_neck_nose", "h36m_head_top", "nose", "left_eye", "right_eye", "left_ear",
        "right_ear",
    ),
)  # fmt: skip
#: OpenPose BODY_25 joints 0-18 (``gt_keypoint_2d[:19]``); toes and heels (19-24) have no
#: canonical joint. OpenPose's neck and mid-hip are SMPL's neck and pelvis (as in SPIN).
OPENPOSE19 = JointSet(
    "openpose19",
    (
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
        "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
        "REar", "LEar",
    ),
    (
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "pelvis", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class EftFit:
    """One EFT fit: ``image_key`` of its image, COCO annotation id or None, canonical keypoints
    (48, 2) with a (48,) label mask, and the SMPL pose (72,) as axis-angle."""

    image: str
    annot_id: int | None
    keypoints_2d: np.ndarray
    labelled: np.ndarray
    pose: np.ndarray


def image_key(name: str) -> str:
    """An image's key for matching fits: its file stem, without COCO-2014's
    ``COCO_train2014_`` / ``COCO_val2014_`` prefix (COCO-2017 files drop it)."""
    return re.sub(r"^COCO_[a-z]+2014_", "", Path(name).stem)


def read_eft(path: Path) -> list[EftFit]:
    """All fits of an EFT JSON file; CardError naming the file and field for a wrong structure."""

    def fail(where: str, why: str) -> CardError:
        return CardError(f"{path}: {where}: {why}")

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise fail("file", f"not a readable JSON file: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise fail("data", "missing: an EFT file is {'ver': ..., 'data': [fits]}")
    rotations, keypoints, heads = [], [], []
    for i, fit in enumerate(data["data"]):
        for key in ("imageName", "parm_pose", "gt_keypoint_2d"):
            if not isinstance(fit, dict) or key not in fit:
                raise fail(f"data[{i}].{key}", "missing")
        if fit.get("smpltype", "smpl") != "smpl":
            raise fail(
                f"data[{i}].smpltype", f"'{fit['smpltype']}' fits are not supported (SMPL only)"
            )
        try:
            rot = np.asarray(fit["parm_pose"], np.float64)
            kp = np.asarray(fit["gt_keypoint_2d"], np.float64)
        except (TypeError, ValueError):
            raise fail(
                f"data[{i}]", "parm_pose or gt_keypoint_2d is not an array of numbers"
            ) from None
        if rot.shape != (24, 3, 3):
            raise fail(f"data[{i}].parm_pose", f"shape {rot.shape}, expected (24, 3, 3)")
        if kp.shape != (49, 3):
            raise fail(f"data[{i}].gt_keypoint_2d", f"shape {kp.shape}, expected (49, 3)")
        orthonormal = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max() < 1e-2
        if not (np.isfinite(kp).all() and np.isfinite(rot).all() and orthonormal):
            raise fail(f"data[{i}]", "parm_pose is not rotations or gt_keypoint_2d is not finite")
        annot = fit.get("annotId")
        rotations.append(rot)
        keypoints.append(kp)
        heads.append((image_key(str(fit["imageName"])), None if annot is None else int(annot)))
    if not heads:
        return []
    poses = roma.rotmat_to_rotvec(torch.from_numpy(np.stack(rotations))).reshape(-1, 72).numpy()
    kps = np.stack(keypoints)
    label_kp, label_ok = SPIN24.to_canonical(kps[:, 25:, :2], kps[:, 25:, 2] > 0)
    op_kp, op_ok = OPENPOSE19.to_canonical(kps[:, :19, :2], kps[:, :19, 2] > 0)
    merged = np.where(label_ok[..., None], label_kp, op_kp).astype(np.float32)
    labelled = label_ok | op_ok
    return [
        EftFit(name, annot, merged[i], labelled[i], poses[i].astype(np.float32))
        for i, (name, annot) in enumerate(heads)
    ]


def attach_to_items(
    card: Card,
    split: str,
    items: list[dict[str, Any]],
    persons_of: Callable[[dict[str, Any]], list[Person]],
    annotation_ids_of: Callable[[dict[str, Any]], list] | None = None,
    **counts: int,
) -> dict[str, int]:
    """Match the split's ``eft`` fits to the people of a converter's items, at index time.

    A fit goes to the item holding its annotation id (with ``annotation_ids_of``), else to the
    item whose ``file`` has its ``image_key``; :func:`attach_eft` matches it there. Each item
    with fits gets ``eft_pose``: per person (order of ``persons_of``) 72 floats or None.

    Returns the split's ``Converter.stats`` entry: ``images`` (one per item), the converter's
    own ``counts`` (``persons``, ...), then, when the split names an ``eft`` file, ``eft_fits``,
    ``eft_matched`` and ``eft_unmatched``.
    """
    stats = {"images": len(items), **counts}
    if "eft" not in card.splits[split]:
        return stats
    try:
        fits = read_eft(card.file(split, "eft"))
    except CardError as err:
        raise CardError(f"{card.path}: splits.{split}.eft: {err}") from None
    threshold = card.options.get("eft_match_threshold", EFT_MATCH_THRESHOLD)
    if not isinstance(threshold, int | float) or threshold <= 0:
        raise card.fail("options.eft_match_threshold", f"must be positive, got {threshold!r}")
    by_id = {}
    if annotation_ids_of is not None:
        by_id = {a: k for k, item in enumerate(items) for a in annotation_ids_of(item)}
    by_name = {image_key(item["file"]): k for k, item in enumerate(items)}
    routed: dict[int, list[EftFit]] = {}
    for fit in fits:
        k = by_id.get(fit.annot_id, by_name.get(fit.image))
        if k is not None:
            routed.setdefault(k, []).append(fit)
    matched = 0
    for k, image_fits in routed.items():
        try:
            persons = persons_of(items[k])
        except ConversionError:
            continue  # reported when the item is converted
        ids = None if annotation_ids_of is None else annotation_ids_of(items[k])
        matched += attach_eft(persons, image_fits, ids, threshold)
        items[k]["eft_pose"] = [
            None if p.smpl_pose is None else p.smpl_pose.tolist() for p in persons
        ]
    unmatched = len(fits) - matched
    return stats | {"eft_fits": len(fits), "eft_matched": matched, "eft_unmatched": unmatched}


def eft_labels(item: dict[str, Any], k: int) -> dict[str, Any]:
    """``Person.from_joint_set`` keywords for the item's k-th person: its attached EFT pose."""
    poses = item.get("eft_pose")
    if poses is None or poses[k] is None:
        return {}
    return {"smpl_pose": np.asarray(poses[k], np.float32), "smpl_source": "eft"}


def attach_eft(
    persons: list[Person],
    fits: list[EftFit],
    annotation_ids: list | None = None,
    threshold: float = EFT_MATCH_THRESHOLD,
) -> int:
    """Give each of an image's fits to at most one of its people (see the module docstring);
    ``annotation_ids`` (one per person) enables matching by COCO ``annotId``.

    Sets ``smpl_pose`` and ``smpl_source`` of the matched people; returns how many fits matched.
    """
    taken = [p.smpl_source != "none" for p in persons]
    left = []
    for fit in fits:
        k = _index_of(annotation_ids, fit.annot_id)
        if k is not None and not taken[k]:
            _give(persons[k], fit)
            taken[k] = True
        else:
            left.append(fit)
    free = [k for k, t in enumerate(taken) if not t]
    if not left or not free:
        return len(fits) - len(left)
    cost = np.stack([[_distance(persons[k], fit) for fit in left] for k in free])
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
    matched = 0
    for r, c in zip(rows, cols, strict=True):
        if cost[r, c] <= threshold:
            _give(persons[free[r]], left[c])
            matched += 1
    return len(fits) - len(left) + matched


def _index_of(ids: list | None, annot_id: int | None) -> int | None:
    if ids is None or annot_id is None or annot_id not in ids:
        return None
    return ids.index(annot_id)


def _distance(person: Person, fit: EftFit) -> float:
    """Mean distance of the joints labelled in both, over sqrt(box area); inf if too few."""
    common = (person.keypoints_2d_vis != VIS_UNLABELLED) & fit.labelled
    if common.sum() < MIN_COMMON_JOINTS:
        return float("inf")
    x0, y0, x1, y1 = person.box
    scale = max(float(np.sqrt(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))), 1.0)
    d = np.linalg.norm(person.keypoints_2d[common] - fit.keypoints_2d[common], axis=1)
    return float(d.mean()) / scale


def _give(person: Person, fit: EftFit) -> None:
    person.smpl_pose = fit.pose.copy()
    person.smpl_source = "eft"
