"""coco_keypoints on the real COCO, CrowdPose and Human3.6M samples, on COCO, CrowdPose and OCHuman
files written here in their original layouts, variants and bad input."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from corpus_files import (
    CROWDPOSE_KEYPOINTS,
    write_coco,
    write_coco_keypoints,
    write_crowdpose,
    write_eft,
    write_ochuman,
)
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import CANONICAL_INDEX, COCO17, CROWDPOSE14, H36M
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import ConversionError, converter_for
from instancehmr.data.corpora.coco import CocoKeypoints
from instancehmr.data.schema import (
    VIS_OCCLUDED,
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    to_table,
)

J = CANONICAL_INDEX
H36M_OPTIONS = {
    "joint_set": "h36m17",
    "visibility_codes": "labelled",
    "keypoints_3d_frame": "world",
    "image_path": "{subject}/{subject}_{action}.{camera}/{file_name}",
}


def make_card(tmp_path: Path, root: Path, files: dict, options: dict | None = None, name="coco"):
    card = {
        "name": name,
        "format": "coco_keypoints",
        "root": str(root),
        "splits": {"val": files},
        "labels": ["keypoints_2d"],
        "obtain": "test",
        "license": "test",
        "role": "train",
        "options": options or {},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


def convert_all(card):
    converter = CocoKeypoints()
    converter.check(card, "val")
    items = converter.index(card, "val")
    records = [converter.convert(card, "val", item) for item in items]
    for r in records:
        r.check()
    assert to_table(records).num_rows == len(records)
    return converter, records


def coco_variant(tmp_path: Path, edit) -> Path:
    """A copy of the COCO sample whose JSON ``edit`` changed; returns its root."""
    root = tmp_path / "coco"
    shutil.copytree(REAL / "coco", root)
    data = json.loads((root / "test_coco.json").read_text())
    edit(data)
    (root / "test_coco.json").write_text(json.dumps(data))
    return root


COCO_FILES = {"annotations": "test_coco.json", "images": "."}


@pytest.mark.real_samples
def test_coco_sample_people_keypoints_and_boxes(tmp_path):
    converter, records = convert_all(make_card(tmp_path, REAL / "coco", COCO_FILES))
    by_id = {r.sample_id: r for r in records}
    counts = {k: len(r.persons) for k, r in by_id.items()}
    assert counts == {
        "coco/val/785": 1,
        "coco/val/40083": 3,
        "coco/val/196141": 5,
        "coco/val/197388": 5,
    }
    assert converter.stats["val"] == {"images": 4, "persons": 14, "crowd_regions_excluded": 0}
    person = by_id["coco/val/785"].persons[0]  # annotation 442619
    assert person.keypoints_2d[J["left_shoulder"]].tolist() == [399.0, 108.0]
    assert person.keypoints_2d[J["right_ankle"]].tolist() == [396.0, 341.0]
    assert person.keypoints_2d_vis[J["left_shoulder"]] == VIS_VISIBLE
    np.testing.assert_allclose(
        person.box, [280.79, 44.73, 280.79 + 218.7, 44.73 + 346.68], rtol=1e-6
    )
    assert person.smpl_source == "none" and person.smpl_pose is None and person.keypoints_3d is None
    # annotation 198196: v = 1 is a labelled, occluded joint; v = 0 is unlabelled
    first = by_id["coco/val/40083"].persons[0]
    assert first.keypoints_2d[J["left_hip"]].tolist() == [57.0, 246.0]
    assert first.keypoints_2d_vis[J["left_hip"]] == VIS_OCCLUDED
    assert first.keypoints_2d_vis[J["left_ear"]] == VIS_UNLABELLED
    assert first.keypoints_2d[J["left_ear"]].tolist() == [0.0, 0.0]
    # annotation 1202706 has no keypoints: a person all the same, with its box
    empty = by_id["coco/val/40083"].persons[2]
    assert (empty.keypoints_2d_vis == VIS_UNLABELLED).all()
    np.testing.assert_allclose(empty.box, [275.17, 126.5, 285.86, 194.76], rtol=1e-6)
    # joints COCO does not label stay unlabelled
    assert (person.keypoints_2d_vis[[J["pelvis"], J["head_top"], J["h36m_pelvis"]]] == 0).all()


@pytest.mark.real_samples
def test_crowdpose_head_and_neck_land_on_head_top_and_upper_neck(tmp_path):
    files = {"annotations": "test_crowdpose.json", "images": "."}
    card = make_card(
        tmp_path, REAL / "crowdpose", files, {"visibility_codes": "labelled"}, "crowdpose"
    )
    _, records = convert_all(card)
    assert {r.sample_id: len(r.persons) for r in records} == {
        "crowdpose/val/106848": 3,
        "crowdpose/val/103319": 2,
    }
    person = records[0].persons[0]  # annotation 123803: head (256, 27, 1), neck (220, 89, 1)
    assert person.keypoints_2d[J["head_top"]].tolist() == [256.0, 27.0]
    assert person.keypoints_2d[J["upper_neck"]].tolist() == [220.0, 89.0]
    assert person.keypoints_2d_vis[J["head_top"]] == VIS_VISIBLE  # v only says "labelled"
    assert person.keypoints_2d_vis[J["neck"]] == VIS_UNLABELLED  # not SMPL's neck
    assert person.keypoints_2d_vis[J["right_shoulder"]] == VIS_VISIBLE
    assert person.keypoints_2d_vis[J["left_shoulder"]] == VIS_UNLABELLED


@pytest.mark.real_samples
def test_h36m_json_3d_joints_in_camera_frame_with_intrinsics(tmp_path):
    files = {"annotations": "h36m_coco.json", "images": ".", "cameras": "cameras.pkl"}
    _, records = convert_all(make_card(tmp_path, REAL / "h36m", files, H36M_OPTIONS, "h36m"))
    assert [len(r.persons) for r in records] == [1, 1, 1, 1]
    cameras = load_pickle(REAL / "h36m" / "cameras.pkl")
    data = json.loads((REAL / "h36m" / "h36m_coco.json").read_text())
    h36m = H36M.canonical_indices
    for record, ann in zip(records, data["annotations"], strict=True):
        person = record.persons[0]
        cam = cameras[("S1", "54138969")] if record.sample_id == "h36m/val/1" else None
        if cam is not None:
            fx, fy = cam["f"].ravel()
            cx, cy = cam["c"].ravel()
            np.testing.assert_allclose(
                record.intrinsics, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rtol=1e-6
            )
        assert person.keypoints_3d_valid[h36m].all() and person.keypoints_3d_valid.sum() == 17
        kp2d = np.asarray(ann["keypoints"]).reshape(17, 3)[:, :2]
        np.testing.assert_allclose(person.keypoints_2d[h36m], kp2d, rtol=1e-6)
        assert (person.keypoints_2d_vis[h36m] == VIS_VISIBLE).all()
        # camera-frame metres, 3-8 m in front of the camera; K reprojects them onto the labels
        # (to ~1 px on average: the 2-D labels carry the radial lens distortion that K leaves out)
        xyz = person.keypoints_3d[h36m].astype(np.float64)
        assert (xyz[:, 2] > 3).all() and (xyz[:, 2] < 8).all()
        uv = xyz @ record.intrinsics.astype(np.float64).T
        error = np.linalg.norm(uv[:, :2] / uv[:, 2:] - kp2d, axis=1)
        assert error.mean() < 1.5 and error.max() < 4.0
    # the data follow the Human3.6M order (joint 1 is the right hip), whatever the file names say
    person = records[0].persons[0]
    assert person.keypoints_2d[J["h36m_right_hip"]][0] > person.keypoints_2d[J["h36m_left_hip"]][0]
    assert (
        person.keypoints_2d[J["h36m_right_shoulder"]][0]
        > person.keypoints_2d[J["h36m_left_shoulder"]][0]
    )


@pytest.mark.real_samples
def test_h36m_world_frame_needs_cameras(tmp_path):
    card = make_card(
        tmp_path,
        REAL / "h36m",
        {"annotations": "h36m_coco.json", "images": "."},
        H36M_OPTIONS,
        "h36m",
    )
    with pytest.raises(CardError, match="cameras"):
        CocoKeypoints().index(card, "val")


@pytest.mark.real_samples
def test_h36m_file_names_need_a_mapping(tmp_path):
    card = make_card(
        tmp_path, REAL / "h36m", {"annotations": "h36m_coco.json", "images": "."}, name="h36m"
    )
    with pytest.raises(CardError, match=r"h36m\.yaml.*'root \(pelvis\)'"):
        CocoKeypoints().index(card, "val")


@pytest.mark.real_samples
def test_crowd_regions_are_counted_and_empty_images_kept(tmp_path):
    def edit(data):
        crowd = dict(data["annotations"][0], id=9, iscrowd=1, num_keypoints=0, keypoints=[0] * 51)
        data["annotations"].append(crowd)
        data["images"].append(dict(data["images"][0], id=7, file_name="empty.jpg"))

    root = coco_variant(tmp_path, edit)
    shutil.copy(root / "000000000785.jpg", root / "empty.jpg")
    converter, records = convert_all(make_card(tmp_path, root, COCO_FILES))
    assert converter.stats["val"]["crowd_regions_excluded"] == 1
    by_id = {r.sample_id: r for r in records}
    assert len(by_id["coco/val/785"].persons) == 1
    assert by_id["coco/val/7"].persons == []


@pytest.mark.real_samples
@pytest.mark.parametrize("keypoints", [None, [], "absent"])
def test_a_person_whose_keypoints_are_null_is_kept_without_labelled_joints(tmp_path, keypoints):
    """Annotation tools write ``"keypoints": null`` for people without keypoints: the image and
    its people are kept, and the count of people is right."""

    def edit(data):
        ann = data["annotations"][0]  # 442619, the one person of image 785
        if keypoints == "absent":
            del ann["keypoints"]
        else:
            ann["keypoints"] = keypoints
        ann["num_keypoints"] = None
        data["annotations"][1]["bbox"] = None  # 198196 of image 40083: a person without a box

    converter, records = convert_all(make_card(tmp_path, coco_variant(tmp_path, edit), COCO_FILES))
    by_id = {r.sample_id: r for r in records}
    assert converter.stats["val"]["persons"] == sum(len(r.persons) for r in records) == 14
    person = by_id["coco/val/785"].persons[0]
    assert (person.keypoints_2d_vis == VIS_UNLABELLED).all()
    np.testing.assert_allclose(
        person.box, [280.79, 44.73, 280.79 + 218.7, 44.73 + 346.68], rtol=1e-6
    )
    boxless = by_id["coco/val/40083"].persons[0]
    assert boxless.keypoints_2d_vis[J["left_hip"]] == VIS_OCCLUDED
    labelled = boxless.keypoints_2d[boxless.keypoints_2d_vis != VIS_UNLABELLED]
    np.testing.assert_allclose(boxless.box, [*labelled.min(0), *labelled.max(0)])  # their extent


@pytest.mark.real_samples
def test_a_joint_outside_the_image_is_kept_as_out_of_frame(tmp_path):
    def edit(data):
        data["annotations"][0]["keypoints"][15:18] = [
            650,
            108,
            2,
        ]  # left shoulder, image is 640 wide

    _, records = convert_all(make_card(tmp_path, coco_variant(tmp_path, edit), COCO_FILES))
    person = next(r for r in records if r.sample_id == "coco/val/785").persons[0]
    assert person.keypoints_2d_vis[J["left_shoulder"]] == VIS_OUT_OF_FRAME
    assert person.keypoints_2d[J["left_shoulder"]].tolist() == [650.0, 108.0]
    assert person.keypoints_2d_vis[J["right_shoulder"]] == VIS_VISIBLE


@pytest.mark.real_samples
def test_card_pointing_at_a_missing_file(tmp_path):
    card = make_card(tmp_path, REAL / "coco", {"annotations": "nope.json", "images": "."})
    with pytest.raises(
        CardError, match=r"coco\.yaml: splits\.val\.annotations: file .*nope\.json not found"
    ):
        CocoKeypoints().check(card, "val")


@pytest.mark.real_samples
def test_json_without_annotations(tmp_path):
    root = coco_variant(tmp_path, lambda data: data.pop("annotations"))
    with pytest.raises(CardError, match=r"test_coco\.json: annotations is missing"):
        CocoKeypoints().index(make_card(tmp_path, root, COCO_FILES), "val")


@pytest.mark.real_samples
def test_wrong_keypoint_count_names_the_annotation(tmp_path):
    root = coco_variant(tmp_path, lambda data: data["annotations"][0]["keypoints"].pop())
    card = make_card(tmp_path, root, COCO_FILES)
    converter = CocoKeypoints()
    item = next(i for i in converter.index(card, "val") if i["image_id"] == 785)
    with pytest.raises(ConversionError, match="annotation 442619: 50 keypoint values, expected 51"):
        converter.convert(card, "val", item)


@pytest.mark.real_samples
def test_corrupt_jpeg_names_the_file(tmp_path):
    root = coco_variant(tmp_path, lambda data: None)
    (root / "000000000785.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    card = make_card(tmp_path, root, COCO_FILES)
    converter = CocoKeypoints()
    item = next(i for i in converter.index(card, "val") if i["image_id"] == 785)
    with pytest.raises(ConversionError, match=r"000000000785\.jpg"):
        converter.convert(card, "val", item)


@pytest.mark.real_samples
def test_unknown_keypoint_name_is_a_card_error(tmp_path):
    def edit(data):
        data["categories"][0]["keypoints"][0] = "snout"

    root = coco_variant(tmp_path, edit)
    with pytest.raises(CardError, match=r"coco\.yaml: options\.joint_names: keypoint 'snout'"):
        CocoKeypoints().index(make_card(tmp_path, root, COCO_FILES), "val")
    _, records = convert_all(
        make_card(tmp_path, root, COCO_FILES, {"joint_names": {"snout": "nose"}})
    )
    assert records[0].persons[0].keypoints_2d[J["nose"]].tolist() == [367.0, 81.0]


@pytest.mark.real_samples
@pytest.mark.parametrize(
    ("card_name", "split", "sample", "files"),
    [
        (
            "coco",
            "val",
            "coco",
            {"annotations/person_keypoints_val2017.json": "test_coco.json", "val2017": "."},
        ),
        (
            "crowdpose",
            "test",
            "crowdpose",
            {"json/crowdpose_test.json": "test_crowdpose.json", "images": "."},
        ),
    ],
)
def test_shipped_cards_read_their_layout(tmp_path, monkeypatch, card_name, split, sample, files):
    """The card in datasets/ converts the real sample laid out as its ``obtain`` says."""
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    root = tmp_path / "data" / "raw" / card_name
    for target, source in files.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if source == "." else shutil.copy
        copy(REAL / sample / source, root / target)
    card = load_card(Path(__file__).resolve().parents[4] / "datasets" / f"{card_name}.yaml")
    converter = converter_for(card)
    assert isinstance(converter, CocoKeypoints)
    converter.check(card, split)
    records = [converter.convert(card, split, i) for i in converter.index(card, split)]
    assert sum(len(r.persons) for r in records) == converter.stats[split]["persons"] > 0
    assert to_table(records).num_rows == len(records)


@pytest.mark.real_samples
def test_h36m_image_without_calibration(tmp_path):
    root = tmp_path / "h36m"
    shutil.copytree(REAL / "h36m", root)
    cameras = load_pickle(root / "cameras.pkl")
    del cameras[("S8", "55011271")]
    with (root / "cameras.pkl").open("wb") as fh:
        pickle.dump(cameras, fh)
    files = {"annotations": "h36m_coco.json", "images": ".", "cameras": "cameras.pkl"}
    card = make_card(tmp_path, root, files, H36M_OPTIONS, "h36m")
    converter = CocoKeypoints()
    items = converter.index(card, "val")
    assert converter.convert(card, "val", items[0]).intrinsics is not None
    with pytest.raises(
        ConversionError, match=r"S8_WalkDog_1\.55011271_000026\.jpg: no calibration"
    ):
        converter.convert(card, "val", items[3])


# -- COCO, CrowdPose and OCHuman files written here --------------------------------------------

COCO_CODES = {0: VIS_UNLABELLED, 1: VIS_OCCLUDED, 2: VIS_VISIBLE}
LABELLED_CODES = {0: VIS_UNLABELLED, 1: VIS_VISIBLE, 2: VIS_VISIBLE}


def assert_people_as_written(records, data: dict, joint_set, codes: dict, corpus: str, split: str):
    """Every non-crowd annotation is a person of its image's record, in file order, with its
    keypoints, visibility codes and box; crowd regions are no one."""
    by_id = {r.sample_id: r for r in records}
    assert sorted(by_id) == sorted(f"{corpus}/{split}/{i['id']}" for i in data["images"])
    index = joint_set.canonical_indices
    for image in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]]
        persons = by_id[f"{corpus}/{split}/{image['id']}"].persons
        assert len(persons) == len(anns)
        for person, ann in zip(persons, anns, strict=True):
            kp = np.asarray(ann["keypoints"], float).reshape(-1, 3)
            expected = np.array([codes[int(v)] for v in kp[:, 2]])
            np.testing.assert_array_equal(person.keypoints_2d_vis[index], expected)
            labelled = kp[:, 2] > 0
            np.testing.assert_allclose(person.keypoints_2d[index][labelled], kp[labelled, :2])
            assert (person.keypoints_2d[index][~labelled] == 0).all()
            assert (np.delete(person.keypoints_2d_vis, index) == VIS_UNLABELLED).all()
            x, y, w, h = ann["bbox"]
            np.testing.assert_allclose(person.box, [x, y, x + w, y + h], rtol=1e-6)
            assert person.keypoints_3d is None and person.smpl_source == "none"


def test_written_coco_people_visibility_boxes_crowd_and_negatives(tmp_path):
    data = write_coco_keypoints(tmp_path / "person_keypoints.json", tmp_path / "images")
    files = {"annotations": "person_keypoints.json", "images": "images"}
    converter, records = convert_all(make_card(tmp_path, tmp_path, files))
    # images of 2 (one without keypoints), 1, 3 and 0 people; a crowd region in the first
    assert converter.stats["val"] == {"images": 4, "persons": 6, "crowd_regions_excluded": 1}
    assert_people_as_written(records, data, COCO17, COCO_CODES, "coco", "val")
    flags = np.concatenate([np.asarray(a["keypoints"][2::3]) for a in data["annotations"]])
    assert {0, 1, 2} <= set(flags.tolist())  # every COCO flag occurs
    by_id = {r.sample_id: r for r in records}
    assert by_id["coco/val/4"].persons == []  # an image without people is kept
    unlabelled = by_id["coco/val/1"].persons[1]  # a person without keypoints keeps its box
    assert (unlabelled.keypoints_2d_vis == VIS_UNLABELLED).all() and unlabelled.box[2] > 0


def test_written_coco_joint_outside_the_image_is_out_of_frame(tmp_path):
    data = write_coco_keypoints(tmp_path / "kp.json", tmp_path / "images", size=(240, 320))
    data["annotations"][0]["keypoints"][15:18] = [330, 108, 2]  # left shoulder, 320 wide
    (tmp_path / "kp.json").write_text(json.dumps(data))
    files = {"annotations": "kp.json", "images": "images"}
    _, records = convert_all(make_card(tmp_path, tmp_path, files))
    person = next(r for r in records if r.sample_id == "coco/val/1").persons[0]
    assert person.keypoints_2d_vis[J["left_shoulder"]] == VIS_OUT_OF_FRAME
    assert person.keypoints_2d[J["left_shoulder"]].tolist() == [330.0, 108.0]


def test_written_crowdpose_head_and_neck_and_labelled_flags(tmp_path):
    root = tmp_path / "crowdpose"
    data = write_crowdpose(root)["test"]
    assert data["categories"][0]["keypoints"] == list(CROWDPOSE_KEYPOINTS)
    files = {"annotations": "json/crowdpose_test.json", "images": "images"}
    card = make_card(tmp_path, root, files, {"visibility_codes": "labelled"}, "crowdpose")
    _, records = convert_all(card)
    assert_people_as_written(records, data, CROWDPOSE14, LABELLED_CODES, "crowdpose", "val")
    persons = [p for r in records for p in r.persons]
    checked = 0
    for person, ann in zip(persons, data["annotations"], strict=True):
        head, neck = ann["keypoints"][36:39], ann["keypoints"][39:42]
        if head[2] and neck[2]:
            assert person.keypoints_2d[J["head_top"]].tolist() == head[:2]
            assert person.keypoints_2d[J["upper_neck"]].tolist() == neck[:2]
            assert person.keypoints_2d_vis[J["head_top"]] == VIS_VISIBLE  # v says "labelled"
            checked += 1
        assert person.keypoints_2d_vis[J["neck"]] == VIS_UNLABELLED  # not SMPL's neck
    assert checked


@pytest.mark.parametrize(
    ("card_name", "write", "splits", "joint_set", "codes"),
    [
        ("coco", write_coco, {"train": "train", "val": "val"}, COCO17, COCO_CODES),
        (
            "crowdpose",
            write_crowdpose,
            {"train": "trainval", "test": "test"},
            CROWDPOSE14,
            LABELLED_CODES,
        ),
        ("ochuman", write_ochuman, {"val": "val", "test": "test"}, COCO17, LABELLED_CODES),
    ],
)
def test_shipped_cards_read_written_layouts(
    tmp_path, monkeypatch, card_name, write, splits, joint_set, codes
):
    """The card in datasets/ converts files written in its corpus's layout (its ``obtain``)."""
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    root = tmp_path / "data" / "raw" / card_name
    written = write(root)
    if card_name == "coco":
        write_eft(root / "eft_fit" / "COCO2014-All-ver01.json", [])
    card = load_card(Path(__file__).resolve().parents[4] / "datasets" / f"{card_name}.yaml")
    for split, source in splits.items():
        assert written[source]["categories"][0]["keypoints"] == list(joint_set.joints)
        converter = converter_for(card)
        converter.check(card, split)
        records = [converter.convert(card, split, i) for i in converter.index(card, split)]
        assert_people_as_written(records, written[source], joint_set, codes, card_name, split)
        assert to_table(records).num_rows == len(records)
