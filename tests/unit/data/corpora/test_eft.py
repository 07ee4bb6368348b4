"""EFT fits (their JSON written here in the released layout) attached to COCO, MPII and LSPet
people: SPIN's 49-joint correspondences, matching by annotation id and by keypoints, counts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from corpus_files import (
    SPIN_FROM_COCO,
    SPIN_FROM_LSP,
    SPIN_FROM_MPII,
    eft_fit,
    eft_pose,
    spin49,
    write_coco_keypoints,
    write_eft,
    write_lspet,
    write_mpii_json,
)
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import CANONICAL_INDEX, COCO17, LSP14, MPII16
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.coco import CocoKeypoints
from instancehmr.data.corpora.eft import OPENPOSE19, SPIN24, attach_eft, read_eft
from instancehmr.data.corpora.lsp import Lsp
from instancehmr.data.corpora.mpii import Mpii
from instancehmr.data.schema import VIS_VISIBLE, Person, to_table

J = CANONICAL_INDEX


def make_card(tmp_path: Path, fmt: str, split: dict, options: dict | None = None):
    card = {
        "name": fmt,
        "format": fmt,
        "root": str(tmp_path),
        "splits": {"train": split},
        "labels": ["keypoints_2d", "smpl_eft"],
        "obtain": "test",
        "license": "test",
        "role": "train",
        "options": options or {},
    }
    path = tmp_path / f"{fmt}.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


def convert_all(converter, card):
    converter.check(card, "train")
    records = [converter.convert(card, "train", i) for i in converter.index(card, "train")]
    assert to_table(records).num_rows == len(records)
    return {r.sample_id.rsplit("/", 1)[1]: r for r in records}


def test_spin_label_joints_land_where_the_datasets_own_joints_land():
    for dataset, spin_index in (
        (MPII16, SPIN_FROM_MPII),
        (COCO17, SPIN_FROM_COCO),
        (LSP14, SPIN_FROM_LSP),
    ):
        for k, i in enumerate(spin_index):
            assert SPIN24.canonical[i] == dataset.canonical[k], (dataset.name, dataset.joints[k])
    assert SPIN24.canonical[SPIN24.joints.index("Thorax (MPII)")] == "neck"
    assert SPIN24.canonical[SPIN24.joints.index("Jaw (H36M)")] == "h36m_neck_nose"
    assert SPIN24.canonical[SPIN24.joints.index("Head (H36M)")] == "h36m_head_top"
    # OpenPose BODY_25 0-18; its neck and mid-hip are SMPL's neck and pelvis
    assert OPENPOSE19.canonical[:9] == (
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "pelvis",
    )  # fmt: skip
    assert OPENPOSE19.canonical[15:] == ("right_eye", "left_eye", "right_ear", "left_ear")


def test_read_eft_labels_first_openpose_where_no_label(tmp_path):
    kp = np.zeros((49, 3))
    kp[25 + 9] = (50.0, 60.0, 1.0)  # SPIN Left Shoulder (label)
    kp[5] = (51.0, 61.0, 0.8)  # OpenPose LShoulder (detection), same joint
    kp[1] = (40.0, 40.0, 0.9)  # OpenPose Neck: no label covers SMPL's neck
    kp[19] = (10.0, 10.0, 0.9)  # OpenPose LBigToe: no canonical joint
    write_eft(tmp_path / "eft.json", [eft_fit("im00001.png", kp.tolist(), seed=3)])
    (only,) = read_eft(tmp_path / "eft.json")
    assert only.image == "im00001" and only.annot_id is None
    assert only.keypoints_2d[J["left_shoulder"]].tolist() == [50.0, 60.0]
    assert only.keypoints_2d[J["neck"]].tolist() == [40.0, 40.0]
    assert only.labelled.sum() == 2
    np.testing.assert_allclose(only.pose, eft_pose(3), atol=1e-5)


@pytest.mark.real_samples
def test_mpii_fits_match_by_image_and_keypoints(tmp_path):
    shutil.copytree(REAL / "mpii", tmp_path / "images")
    entries = json.loads((REAL / "mpii" / "test_mpii.json").read_text())
    joints = {e["image"]: np.asarray(e["joints"]) for e in entries}
    fits = [
        eft_fit("005808361.jpg", spin49(joints["005808361.jpg"], SPIN_FROM_MPII), seed=0),
        eft_fit("060754485.jpg", spin49(joints["060754485.jpg"], SPIN_FROM_MPII), seed=1),
        eft_fit("999999999.jpg", spin49(joints["060754485.jpg"], SPIN_FROM_MPII), seed=2),
        eft_fit("052475643.jpg", spin49(joints["052475643.jpg"] + 150.0, SPIN_FROM_MPII), seed=4),
    ]
    write_eft(tmp_path / "MPII_ver01.json", fits)
    split = {"annotations": "images/test_mpii.json", "images": "images", "eft": "MPII_ver01.json"}
    converter = Mpii()
    records = convert_all(converter, make_card(tmp_path, "mpii", split))
    assert converter.stats["train"] == {
        "images": 5, "persons": 5, "eft_fits": 4, "eft_matched": 2, "eft_unmatched": 2,
    }  # fmt: skip
    person = records["005808361"].persons[0]
    assert person.smpl_source == "eft" and person.smpl_betas is None
    np.testing.assert_allclose(person.smpl_pose, eft_pose(0), atol=1e-5)
    np.testing.assert_allclose(records["060754485"].persons[0].smpl_pose, eft_pose(1), atol=1e-5)
    assert records["052475643"].persons[0].smpl_source == "none"  # 150 px off: no match
    assert records["052475643"].persons[0].smpl_pose is None


@pytest.mark.real_samples
def test_coco_fits_match_by_annotation_id_then_keypoints(tmp_path):
    data = json.loads((REAL / "coco" / "test_coco.json").read_text())
    anns = {a["id"]: np.asarray(a["keypoints"], float).reshape(17, 3) for a in data["annotations"]}

    def coco_fit(ann_id: int, seed: int, image: str, with_id: bool) -> dict:
        kp = anns[ann_id]
        spin = spin49(kp[:, :2], SPIN_FROM_COCO, kp[:, 2] > 0)
        return eft_fit(image, spin, seed, ann_id if with_id else None)

    fits = [
        # EFT's COCO fits name COCO-2014 files; the annotation id finds the person
        eft_fit("COCO_train2014_000000040083.jpg", np.zeros((49, 3)).tolist(), 10, annot_id=230195),
        coco_fit(488308, 11, "COCO_train2014_000000196141.jpg", with_id=False),  # by keypoints
        eft_fit("COCO_train2014_000000040083.jpg", np.zeros((49, 3)).tolist(), 12, annot_id=230195),
    ]
    write_eft(tmp_path / "coco_eft.json", fits)
    shutil.copytree(REAL / "coco", tmp_path / "coco")
    split = {"annotations": "coco/test_coco.json", "images": "coco", "eft": "coco_eft.json"}
    converter = CocoKeypoints()
    records = convert_all(converter, make_card(tmp_path, "coco_keypoints", split))
    stats = converter.stats["train"]
    assert (stats["eft_fits"], stats["eft_matched"], stats["eft_unmatched"]) == (3, 2, 1)
    sources = {k: [p.smpl_source for p in r.persons] for k, r in records.items()}
    assert sources["40083"] == ["none", "eft", "none"]
    assert sources["196141"] == ["none", "eft", "none", "none", "none"]
    assert sources["785"] == ["none"] and sources["197388"] == ["none"] * 5
    np.testing.assert_allclose(records["40083"].persons[1].smpl_pose, eft_pose(10), atol=1e-5)
    np.testing.assert_allclose(records["196141"].persons[1].smpl_pose, eft_pose(11), atol=1e-5)


def test_mpii_fits_match_by_image_and_keypoints_on_written_files(tmp_path):
    entries = write_mpii_json(tmp_path / "mpii.json", tmp_path / "images", people=(1, 2, 1))
    joints = [np.asarray(e["joints"]) for e in entries]
    labelled = [np.asarray(e["joints_vis"]) > 0 for e in entries]
    fits = [
        eft_fit(entries[0]["image"], spin49(joints[0], SPIN_FROM_MPII, labelled[0]), seed=0),
        # the second person of the two-person image: found by keypoints, not by order
        eft_fit(entries[2]["image"], spin49(joints[2], SPIN_FROM_MPII, labelled[2]), seed=1),
        eft_fit("999999999.jpg", spin49(joints[3], SPIN_FROM_MPII, labelled[3]), seed=2),
        eft_fit(entries[3]["image"], spin49(joints[3] + 150, SPIN_FROM_MPII, labelled[3]), 4),
    ]
    write_eft(tmp_path / "MPII_ver01.json", fits)
    split = {"annotations": "mpii.json", "images": "images", "eft": "MPII_ver01.json"}
    converter = Mpii()
    records = convert_all(converter, make_card(tmp_path, "mpii", split))
    assert converter.stats["train"] == {
        "images": 3, "persons": 4, "eft_fits": 4, "eft_matched": 2, "eft_unmatched": 2,
    }  # fmt: skip
    sources = {k: [p.smpl_source for p in r.persons] for k, r in records.items()}
    assert sources == {"000000001": ["eft"], "000000011": ["none", "eft"], "000000021": ["none"]}
    np.testing.assert_allclose(records["000000001"].persons[0].smpl_pose, eft_pose(0), atol=1e-5)
    np.testing.assert_allclose(records["000000011"].persons[1].smpl_pose, eft_pose(1), atol=1e-5)
    assert records["000000011"].persons[1].smpl_betas is None  # EFT gives no shape


def test_coco_fits_match_by_annotation_id_then_keypoints_on_written_files(tmp_path):
    data = write_coco_keypoints(tmp_path / "kp.json", tmp_path / "images", people=(2, 3))
    anns = [a for a in data["annotations"] if not a["iscrowd"]]
    kp = {a["id"]: np.asarray(a["keypoints"], float).reshape(17, 3) for a in anns}
    by_keypoints = anns[3]  # second person of image 2, fitted without its annotation id
    assert by_keypoints["image_id"] == 2 and by_keypoints["num_keypoints"] >= 3
    k3 = kp[by_keypoints["id"]]
    fits = [
        # EFT's COCO fits name COCO-2014 files; the annotation id finds the person
        eft_fit("COCO_train2014_000000000001.jpg", np.zeros((49, 3)).tolist(), 10, anns[0]["id"]),
        eft_fit(
            "COCO_train2014_000000000002.jpg", spin49(k3[:, :2], SPIN_FROM_COCO, k3[:, 2] > 0), 11
        ),
        eft_fit("COCO_train2014_000000000001.jpg", np.zeros((49, 3)).tolist(), 12, anns[0]["id"]),
    ]
    write_eft(tmp_path / "coco_eft.json", fits)
    split = {"annotations": "kp.json", "images": "images", "eft": "coco_eft.json"}
    converter = CocoKeypoints()
    records = convert_all(converter, make_card(tmp_path, "coco_keypoints", split))
    stats = converter.stats["train"]
    assert (stats["eft_fits"], stats["eft_matched"], stats["eft_unmatched"]) == (3, 2, 1)
    sources = {k: [p.smpl_source for p in r.persons] for k, r in records.items()}
    assert sources == {"1": ["eft", "none"], "2": ["none", "eft", "none"]}
    np.testing.assert_allclose(records["1"].persons[0].smpl_pose, eft_pose(10), atol=1e-5)
    np.testing.assert_allclose(records["2"].persons[1].smpl_pose, eft_pose(11), atol=1e-5)


def test_matching_is_one_to_one_and_picks_the_closest_person(tmp_path):
    def person(x: float) -> Person:
        kp = np.tile([[x, 100.0]], (14, 1)) + np.arange(14)[:, None] * [2.0, 8.0]
        return Person.from_joint_set(LSP14, kp, np.full(14, VIS_VISIBLE, np.int8))

    persons = [person(100.0), person(130.0)]
    kp = persons[1].keypoints_2d[LSP14.canonical_indices]
    near, far = spin49(kp + 1.5, SPIN_FROM_LSP), spin49(kp + 3.0, SPIN_FROM_LSP)
    write_eft(tmp_path / "eft.json", [eft_fit("a.jpg", far, 6), eft_fit("a.jpg", near, 5)])
    fits = read_eft(tmp_path / "eft.json")
    assert attach_eft(persons, fits) == 1  # two fits of one person: the farther finds nobody
    assert [p.smpl_source for p in persons] == ["none", "eft"]
    np.testing.assert_allclose(persons[1].smpl_pose, eft_pose(5), atol=1e-5)


def test_lspet_fits(tmp_path):
    joints = np.random.default_rng(7).uniform(20, 180, (2, 14, 2)).round(1)
    write_lspet(tmp_path, joints=np.concatenate([joints, np.ones((2, 14, 1))], 2))
    write_eft(
        tmp_path / "LSPet_ver01.json", [eft_fit("im00002.png", spin49(joints[1], SPIN_FROM_LSP), 8)]
    )
    split = {"joints": "hr-lspet/joints.mat", "images": "hr-lspet", "eft": "LSPet_ver01.json"}
    converter = Lsp()
    records = convert_all(converter, make_card(tmp_path, "lsp", split))
    assert converter.stats["train"]["eft_matched"] == 1
    assert records["im00001"].persons[0].smpl_source == "none"
    np.testing.assert_allclose(records["im00002"].persons[0].smpl_pose, eft_pose(8), atol=1e-5)


@pytest.mark.real_samples
def test_bad_eft_files(tmp_path):
    shutil.copytree(REAL / "mpii", tmp_path / "images")
    split = {"annotations": "images/test_mpii.json", "images": "images", "eft": "eft.json"}
    card = make_card(tmp_path, "mpii", split)
    (tmp_path / "eft.json").write_text(json.dumps({"ver": "01"}))
    with pytest.raises(
        CardError, match=r"mpii\.yaml: splits\.train\.eft: .*eft\.json: data: missing"
    ):
        Mpii().index(card, "train")
    bad = eft_fit("005808361.jpg", np.zeros((49, 3)).tolist(), 0)
    bad["parm_pose"] = bad["parm_pose"][:23]
    write_eft(tmp_path / "eft.json", [bad])
    with pytest.raises(CardError, match=r"data\[0\]\.parm_pose: shape \(23, 3, 3\)"):
        Mpii().index(card, "train")
    bad = eft_fit("005808361.jpg", np.zeros((24, 3)).tolist(), 0)
    write_eft(tmp_path / "eft.json", [bad])
    with pytest.raises(CardError, match=r"data\[0\]\.gt_keypoint_2d: shape \(24, 3\)"):
        Mpii().index(card, "train")
    write_eft(tmp_path / "eft.json", [])
    card = make_card(tmp_path, "mpii", split, {"eft_match_threshold": -1})
    with pytest.raises(CardError, match=r"options\.eft_match_threshold: must be positive"):
        Mpii().index(card, "train")
