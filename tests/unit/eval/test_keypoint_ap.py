"""OKS AP by COCO's and CrowdPose's definitions: known answers worked out by hand on ground truth
written here, the ground-truth checks, and the real COCO / CrowdPose samples."""

import contextlib
import copy
import io
import json
import math

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import COCO17, CROWDPOSE14
from instancehmr.eval.keypoint_ap import (
    AP_METRICS,
    COCO_SIGMAS,
    CROWDPOSE_SIGMAS,
    crowd_index_class,
    index_ground_truth,
    keypoint_ap,
    to_detections,
)

J = 14  # CrowdPose's joints
BOX = [50.0, 50.0, 100.0, 200.0]  # x, y, w, h: box area 20000 px² (a "large" person for COCO)


def skeleton() -> np.ndarray:
    """(J, 3) labelled joints inside BOX."""
    return np.stack([50 + np.linspace(10, 90, J), 50 + np.linspace(10, 190, J), np.full(J, 2.0)], 1)


def ground_truth(crowd_indices, **fields) -> dict:
    """One image per crowd index, one person in BOX per image (annotation id 100 + image id);
    ``fields`` are set on every annotation."""
    images = [
        {"id": i, "file_name": f"{i}.jpg", "height": 400, "width": 400, "crowdIndex": c}
        for i, c in enumerate(crowd_indices, start=1)
    ]
    annotations = [
        {"id": 100 + image["id"], "image_id": image["id"], "category_id": 1, "iscrowd": 0,
         "num_keypoints": J, "keypoints": skeleton().reshape(-1).tolist(), "bbox": BOX, **fields}
        for image in images
    ]  # fmt: skip
    category = {"id": 1, "name": "person", "keypoints": list(CROWDPOSE14.joints)}
    return {"images": images, "annotations": annotations, "categories": [category]}


def detection(image_id: int, oks: float = 1.0, scale: float = 0.53 * 100 * 200, score=1.0):
    """A detection of the person in BOX whose OKS is ``oks`` when the OKS scale s² is ``scale``:
    joint j moved by c 2 sigma_j s, so that every exp(-d² / (2 s² (2 sigma_j)²)) = exp(-c²/2)."""
    c = math.sqrt(-2 * math.log(oks))
    k = skeleton()
    k[:, 0] += c * 2 * CROWDPOSE_SIGMAS * math.sqrt(scale)
    return {"image_id": image_id, "category_id": 1, "keypoints": k.reshape(-1).tolist(),
            "score": score}  # fmt: skip


def ap(gt: dict, detections: list[dict], definition: str) -> dict[str, float]:
    return keypoint_ap(index_ground_truth(gt, definition), detections, CROWDPOSE_SIGMAS)


def test_crowdpose_scales_oks_by_053_box_area_and_coco_by_area():
    # One person, one detection with OKS 0.775 at s² = 0.53 x 100 x 200: it passes the
    # thresholds 0.50 ... 0.75 (6 of 10), so AP = 0.6, AP50 = AP75 = 1.
    expected = {"ap": 0.6, "ap50": 1.0, "ap75": 1.0, "ap_medium": 0.6}
    gt = ground_truth([0.5], area=100 * 200)
    assert ap(gt, [detection(1, 0.775)], "crowdpose") == pytest.approx(
        {**expected, "ap_easy": math.nan, "ap_hard": math.nan}, nan_ok=True
    )
    # CrowdPose's scale never reads the file's area.
    assert ap(ground_truth([0.5], area=1.0), [detection(1, 0.775)], "crowdpose")["ap"] == (
        pytest.approx(0.6)
    )
    # COCO's scale is the area (here the box's, 20000): OKS = 0.775 ** 0.53 = 0.874 passes
    # 0.50 ... 0.85 (8 of 10), so COCO's AP on the same detection is 0.8.
    assert ap(gt, [detection(1, 0.775)], "coco") == pytest.approx(
        {"ap": 0.8, "ap50": 1.0, "ap75": 1.0, "apm": math.nan, "apl": 0.8}, nan_ok=True
    )


def test_crowdpose_ap_easy_medium_hard_by_crowd_index():
    # Images of crowd index 0.1, 0.5, 0.9, one person each. Detections: a perfect one on the
    # easy image (score 0.9), OKS 0.775 on the medium one (score 0.8), none on the hard one.
    gt = ground_truth([0.1, 0.5, 0.9])
    dets = [detection(1, 1.0, score=0.9), detection(2, 0.775, score=0.8)]
    # All images, 3 people. At thresholds 0.50-0.75 (6): both detections hit, recall 1/3, 2/3
    # at precision 1: precision 1 at the 67 recall levels 0.00-0.66, 0 above: 67/101. At
    # 0.80-0.95 (4): only the first hits, recall 1/3 at precision 1: 34/101.
    # AP = (6 x 67 + 4 x 34) / 1010; AP50 = AP75 = 67/101.
    assert ap(gt, dets, "crowdpose") == pytest.approx(
        {
            "ap": (6 * 67 + 4 * 34) / 1010,
            "ap50": 67 / 101,
            "ap75": 67 / 101,
            "ap_easy": 1.0,
            "ap_medium": 0.6,
            "ap_hard": 0.0,
        }
    )


def test_crowd_index_classes_and_their_boundaries():
    classes = {c: crowd_index_class(c) for c in (-0.1, 0.0, 0.19, 0.2, 0.5, 0.79, 0.8, 1.0)}
    assert classes == {
        -0.1: "ap_easy", 0.0: "ap_easy", 0.19: "ap_easy", 0.2: "ap_medium", 0.5: "ap_medium",
        0.79: "ap_medium", 0.8: "ap_hard", 1.0: "ap_hard",
    }  # fmt: skip


def test_an_ap_over_no_ground_truth_is_undefined_not_zero():
    # COCO: the only person is large (20000 px²): APM has no person. CrowdPose: no easy or
    # hard image. No detection at all: 0 where there are people, still undefined elsewhere.
    gt = ground_truth([0.5])
    coco = ap(gt, [detection(1)], "coco")
    assert coco["ap"] == pytest.approx(1.0) and math.isnan(coco["apm"])
    crowd = ap(gt, [detection(1)], "crowdpose")
    assert crowd["ap_medium"] == pytest.approx(1.0)
    assert math.isnan(crowd["ap_easy"]) and math.isnan(crowd["ap_hard"])
    none = ap(gt, [], "crowdpose")
    assert none["ap"] == none["ap_medium"] == 0.0 and math.isnan(none["ap_hard"])
    assert set(none) == set(AP_METRICS["crowdpose"]) and set(coco) == set(AP_METRICS["coco"])


@pytest.mark.parametrize("keypoints", [None, [], "absent"])
def test_a_person_whose_keypoints_are_null_has_no_labelled_joint(keypoints):
    gt = ground_truth([0.5, 0.5])
    person = gt["annotations"][1]  # says num_keypoints 14, but has no keypoints at all
    if keypoints == "absent":
        del person["keypoints"]
    else:
        person["keypoints"] = keypoints
    index = index_ground_truth(gt, "crowdpose")
    assert index.index.anns[102]["num_keypoints"] == 0  # ignored, as COCO's people without any
    for definition in ("coco", "crowdpose"):
        assert ap(gt, [detection(1)], definition)["ap"] == pytest.approx(1.0)


@pytest.mark.parametrize("area", [0, -5.0, None, float("nan"), "absent"])
def test_an_area_that_is_not_positive_is_the_box_area(area):
    # OKS 0.99 at s² = the box area: AP 1 (with area 0 as the scale it would be 0).
    gt = ground_truth([0.5]) if area == "absent" else ground_truth([0.5], area=area)
    assert ap(gt, [detection(1, 0.99, scale=100 * 200)], "coco")["ap"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("edit", "definition", "message"),
    [
        (lambda a: a.update(area=0, bbox=[50, 50, 0, 200]), "coco",
         r"annotation 101: neither area 0 nor bbox \[50, 50, 0, 200\] gives the OKS scale"),
        (lambda a: a.update(bbox=[50, 50, 100, 0]), "crowdpose",
         r"annotation 101: bbox \[50, 50, 100, 0\] has no area, and CrowdPose's OKS scale"),
        (lambda a: a.update(bbox=None), "coco", r"annotation 101: bbox \(x, y, w, h\) is missing"),
        (lambda a: a.update(bbox=[1, 2, -3, 4]), "coco", "annotation 101: bbox .* negative"),
        (lambda a: a["keypoints"].pop(), "coco", "annotation 101: keypoints has 41 values, "
         "expected 42"),
        (lambda a: a["keypoints"].__setitem__(0, None), "coco",
         "annotation 101: keypoints are not all finite"),
    ],
)  # fmt: skip
def test_ground_truth_that_cannot_be_scored_is_refused_naming_the_annotation(
    edit, definition, message
):
    gt = ground_truth([0.5])
    edit(gt["annotations"][0])
    with pytest.raises(ValueError, match=f"^gt.json: {message}"):
        index_ground_truth(gt, definition, "gt.json")


def test_crowdpose_needs_every_images_crowd_index():
    gt = ground_truth([0.5, 0.1])
    del gt["images"][1]["crowdIndex"]
    index_ground_truth(gt, "coco")  # COCO's definition does not read it
    with pytest.raises(ValueError, match=r"gt.json: image 2: crowdIndex None is not a number"):
        index_ground_truth(gt, "crowdpose", "gt.json")


def test_wrong_definition_sigmas_or_categories():
    gt = ground_truth([0.5])
    with pytest.raises(ValueError, match=r"unknown AP definition 'mpii'; known: \['coco'"):
        index_ground_truth(gt, "mpii")
    with pytest.raises(ValueError, match=r"sigmas of shape \(17,\), expected \(14,\)"):
        keypoint_ap(index_ground_truth(gt), [], COCO_SIGMAS)
    gt["categories"].append(dict(gt["categories"][0], id=2))
    with pytest.raises(ValueError, match="expected one category with 'keypoints', got 2"):
        index_ground_truth(gt)


def test_the_callers_ground_truth_is_not_modified():
    gt = ground_truth([0.5], area=0, keypoints=None)
    before = copy.deepcopy(gt)
    ap(gt, [detection(1)], "crowdpose")
    assert gt == before


# The real samples (mmpose's tests/data).


def perfect(gt: dict) -> list[dict]:
    """One detection per person with labelled keypoints, equal to the ground truth."""
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if any(v > 0 for v in a["keypoints"][2::3]) and not a.get("iscrowd", 0)
    ]


@pytest.mark.real_samples
@pytest.mark.parametrize(
    ("name", "sigmas", "definition"),
    [
        ("coco/test_coco.json", COCO_SIGMAS, "coco"),
        ("crowdpose/test_crowdpose.json", CROWDPOSE_SIGMAS, "coco"),
        ("crowdpose/test_crowdpose.json", CROWDPOSE_SIGMAS, "crowdpose"),
    ],
)
def test_ground_truth_as_prediction_gives_ap_one(name, sigmas, definition):
    gt = json.loads((REAL / name).read_text())
    result = keypoint_ap(index_ground_truth(gt, definition), perfect(gt), sigmas)
    for metric in ("ap", "ap50", "ap75"):
        assert result[metric] == pytest.approx(1.0)
    if definition == "crowdpose":
        # mmpose's known answer on this file (tests/test_evaluation/test_metrics/
        # test_coco_metric.py): AP(E) -1, AP(M) 1, AP(H) -1; crowd indices 0.33 and 0.39.
        assert result["ap_medium"] == pytest.approx(1.0)
        assert math.isnan(result["ap_easy"]) and math.isnan(result["ap_hard"])


@pytest.mark.real_samples
def test_coco_definition_matches_pycocotools_called_directly():
    gt = json.loads((REAL / "coco" / "test_coco.json").read_text())
    rng = np.random.default_rng(0)
    dets = perfect(gt)
    for d in dets:
        k = np.array(d["keypoints"], float).reshape(-1, 3)
        k[:, :2] += rng.normal(scale=6.0, size=(len(k), 2))
        d["keypoints"] = k.reshape(-1).tolist()
        d["score"] = float(rng.random())
    index = index_ground_truth(gt)
    ours = keypoint_ap(index, dets, COCO_SIGMAS)
    with contextlib.redirect_stdout(io.StringIO()):
        direct = COCOeval(index.index, index.index.loadRes(copy.deepcopy(dets)), "keypoints")
        direct.evaluate()
        direct.accumulate()
        direct.summarize()
    assert 0 < ours["ap"] < 1
    assert [ours[m] for m in AP_METRICS["coco"]] == pytest.approx(direct.stats[:5])


@pytest.mark.real_samples
@pytest.mark.parametrize(
    ("name", "joint_set", "sigmas", "definition"),
    [
        ("coco/test_coco.json", COCO17, COCO_SIGMAS, "coco"),
        ("crowdpose/test_crowdpose.json", CROWDPOSE14, CROWDPOSE_SIGMAS, "crowdpose"),
    ],
)
def test_canonical_joints_mapped_to_the_benchmark_set_give_ap_one(
    name, joint_set, sigmas, definition
):
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
    assert keypoint_ap(index_ground_truth(gt, definition), dets, sigmas)["ap"] == pytest.approx(1.0)
