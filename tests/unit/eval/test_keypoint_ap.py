import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import COCO17, CROWDPOSE14
from instancehmr.eval.keypoint_ap import (
    COCO_SIGMAS,
    CROWDPOSE_SIGMAS,
    ground_truth_index,
    keypoint_ap,
    to_detections,
)

pytestmark = pytest.mark.real_samples  # every test here reads the real samples


def perfect(gt: dict) -> list[dict]:
    """One detection per person with labelled keypoints, equal to the ground truth."""
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if any(v > 0 for v in a["keypoints"][2::3]) and not a.get("iscrowd", 0)
    ]


@pytest.mark.parametrize(
    ("name", "sigmas"),
    [("coco/test_coco.json", COCO_SIGMAS), ("crowdpose/test_crowdpose.json", CROWDPOSE_SIGMAS)],
)
def test_ground_truth_as_prediction_gives_ap_one(name, sigmas):
    gt = json.loads((REAL / name).read_text())
    ap = keypoint_ap(gt, perfect(gt), sigmas)
    assert (
        ap["AP"] == pytest.approx(1.0)
        and ap["AP50"] == pytest.approx(1.0)
        and ap["AP75"] == pytest.approx(1.0)
    )


def test_perturbed_keypoints_match_pycocotools_called_directly():
    gt = json.loads((REAL / "coco" / "test_coco.json").read_text())
    rng = np.random.default_rng(0)
    dets = perfect(gt)
    for d in dets:
        k = np.array(d["keypoints"], float).reshape(-1, 3)
        k[:, :2] += rng.normal(scale=6.0, size=(len(k), 2))
        d["keypoints"] = k.reshape(-1).tolist()
        d["score"] = float(rng.random())
    ours = keypoint_ap(gt, dets, COCO_SIGMAS)
    coco = ground_truth_index(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        direct = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "keypoints")
        direct.evaluate()
        direct.accumulate()
        direct.summarize()
    assert 0 < ours["AP"] < 1
    assert ours["AP"] == pytest.approx(direct.stats[0]) and ours["AP75"] == pytest.approx(
        direct.stats[2]
    )


def test_no_detections_give_zero():
    gt = json.loads((REAL / "crowdpose" / "test_crowdpose.json").read_text())
    assert keypoint_ap(gt, [], CROWDPOSE_SIGMAS)["AP"] == 0.0


@pytest.mark.parametrize(
    ("name", "joint_set", "sigmas"),
    [
        ("coco/test_coco.json", COCO17, COCO_SIGMAS),
        ("crowdpose/test_crowdpose.json", CROWDPOSE14, CROWDPOSE_SIGMAS),
    ],
)
def test_canonical_joints_mapped_to_the_benchmark_set_give_ap_one(name, joint_set, sigmas):
    """The evaluation path: people in canonical joints -> the benchmark's joints -> results."""
    gt = json.loads((REAL / name).read_text())
    people = [a for a in gt["annotations"] if any(a["keypoints"][2::3]) and not a.get("iscrowd")]
    canonical = []
    for a in people:
        k = np.array(a["keypoints"], np.float32).reshape(-1, 3)
        kp, _ = joint_set.to_canonical(k[:, :2], k[:, 2] > 0)
        canonical.append(kp)
    joints = np.stack(canonical)[:, joint_set.canonical_indices]
    dets = to_detections(joints, np.ones(len(people)), [a["image_id"] for a in people], 1)
    assert keypoint_ap(gt, dets, sigmas)["AP"] == pytest.approx(1.0)
