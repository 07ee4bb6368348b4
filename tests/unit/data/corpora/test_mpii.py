"""mpii on the real mmpose JSON sample and on a .mat written in the official release's layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import CANONICAL_INDEX, MPII16
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.corpora.mpii import Mpii
from instancehmr.data.schema import (
    VIS_OCCLUDED,
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    to_table,
)

pytestmark = pytest.mark.real_samples  # every test here reads the real samples

J = CANONICAL_INDEX
MPII = MPII16.canonical_indices
EMPTY = np.zeros((0, 0))


def make_card(tmp_path: Path, root: Path, annotations: str) -> object:
    card = {
        "name": "mpii",
        "format": "mpii",
        "root": str(root),
        "splits": {"train": {"annotations": annotations, "images": "images"}},
        "labels": ["keypoints_2d"],
        "obtain": "test",
        "license": "test",
        "role": "train",
    }
    path = tmp_path / "mpii.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


def convert_all(card):
    converter = Mpii()
    converter.check(card, "train")
    records = [converter.convert(card, "train", i) for i in converter.index(card, "train")]
    assert to_table(records).num_rows == len(records)
    return converter, {r.sample_id: r for r in records}


def json_variant(tmp_path: Path, edit=None) -> Path:
    """The real sample under tmp_path/images with its JSON as ``edit`` left it; returns the root."""
    shutil.copytree(REAL / "mpii", tmp_path / "images", ignore=shutil.ignore_patterns("*.json"))
    entries = json.loads((REAL / "mpii" / "test_mpii.json").read_text())
    if edit is not None:
        edit(entries)
    (tmp_path / "mpii.json").write_text(json.dumps(entries))
    return tmp_path


def test_json_sample_keeps_joints_marked_visible_with_one(tmp_path):
    converter, records = convert_all(make_card(tmp_path, json_variant(tmp_path), "mpii.json"))
    assert sorted(records) == [
        "mpii/train/004645041",
        "mpii/train/005808361",
        "mpii/train/051423444",
        "mpii/train/052475643",
        "mpii/train/060754485",
    ]
    assert converter.stats["train"] == {"images": 5, "persons": 5}
    assert all(len(r.persons) == 1 for r in records.values())
    person = records["mpii/train/005808361"].persons[0]
    assert (person.keypoints_2d_vis[MPII] == VIS_VISIBLE).all()  # joints_vis 1: labels, not dropped
    assert (person.keypoints_2d_vis != VIS_UNLABELLED).sum() == 16
    # MATLAB 1-based pixels -> 0-based
    assert person.keypoints_2d[J["right_ankle"]].tolist() == [803.0, 710.0]
    np.testing.assert_allclose(
        person.keypoints_2d[J["upper_neck"]], [981.7591, 234.9694], rtol=1e-6
    )
    assert person.keypoints_2d[J["head_top"]][1] < person.keypoints_2d[J["upper_neck"]][1]
    assert person.keypoints_2d[J["neck"]].tolist() == [984.0, 252.0]  # MPII thorax
    # (-1, -1) with joints_vis 0 is unlabelled
    other = records["mpii/train/051423444"].persons[0]
    assert other.keypoints_2d_vis[J["right_ankle"]] == VIS_UNLABELLED
    assert other.keypoints_2d[J["right_ankle"]].tolist() == [0.0, 0.0]  # a mask, not -2 px
    assert other.keypoints_2d_vis[J["left_ankle"]] == VIS_UNLABELLED
    assert (other.keypoints_2d_vis != VIS_UNLABELLED).sum() == 14
    labelled = other.keypoints_2d_vis != VIS_UNLABELLED
    np.testing.assert_allclose(other.box[:2], other.keypoints_2d[labelled].min(0))


def test_json_entries_of_one_image_become_one_record(tmp_path):
    def edit(entries):
        second = dict(entries[0], joints=[[x + 40, y] for x, y in entries[0]["joints"]])
        entries.append(second)

    _, records = convert_all(make_card(tmp_path, json_variant(tmp_path, edit), "mpii.json"))
    persons = records["mpii/train/005808361"].persons
    assert len(persons) == 2 and len(records) == 5
    assert persons[1].keypoints_2d[J["right_ankle"]].tolist() == [843.0, 710.0]


def test_json_joint_outside_the_image_is_out_of_frame(tmp_path):
    def edit(entries):
        entries[1]["joints"][10] = [-5.0, 120.0]  # right wrist, left of the image

    _, records = convert_all(make_card(tmp_path, json_variant(tmp_path, edit), "mpii.json"))
    person = records["mpii/train/052475643"].persons[0]
    assert person.keypoints_2d_vis[J["right_wrist"]] == VIS_OUT_OF_FRAME
    assert person.keypoints_2d[J["right_wrist"]].tolist() == [-6.0, 119.0]


def test_json_bad_input(tmp_path):
    root = json_variant(tmp_path, lambda entries: entries[2].pop("joints"))
    with pytest.raises(CardError, match=r"mpii\.json: \[2\]\.joints is missing"):
        Mpii().index(make_card(tmp_path, root, "mpii.json"), "train")
    (root / "mpii.json").write_text(
        json.dumps(
            [
                dict(e, joints=e["joints"][:15])
                for e in json.loads((REAL / "mpii" / "test_mpii.json").read_text())
            ]
        )
    )
    card = make_card(tmp_path, root, "mpii.json")
    item = Mpii().index(card, "train")[0]
    with pytest.raises(ConversionError, match=r"005808361\.jpg: entry 0: joints \(15, 2\)"):
        Mpii().convert(card, "train", item)
    with pytest.raises(CardError, match=r"splits\.train\.annotations: .*\.json or \.mat"):
        Mpii().index(make_card(tmp_path, root, "images/005808361.jpg"), "train")


# -- the official .mat ------------------------------------------------------------------------


def struct_array(rows: list[dict]) -> np.ndarray:
    """A 1 x n MATLAB struct array (savemat writes a structured object array as one)."""
    array = np.empty((1, len(rows)), dtype=[(key, object) for key in rows[0]])
    for i, row in enumerate(rows):
        for key, value in row.items():
            array[0, i][key] = value
    return array


def annorect(points: list[tuple] | None, objpos=(EMPTY, EMPTY), scale=EMPTY) -> dict:
    """One person: points (id, x, y, is_visible) or None (no annopoints), objpos, scale."""
    annopoints = EMPTY
    if points is not None:
        rows = [{"x": x, "y": y, "id": pid, "is_visible": vis} for pid, x, y, vis in points]
        annopoints = {"point": struct_array(rows)}
    return {
        "x1": EMPTY, "y1": EMPTY, "x2": EMPTY, "y2": EMPTY,
        "annopoints": annopoints,
        "scale": scale,
        "objpos": {"x": objpos[0], "y": objpos[1]},
    }  # fmt: skip


def write_release(path: Path, images: list[tuple[str, list[dict]]], img_train: list[int]) -> None:
    """``RELEASE`` as mpii_human_pose_v1_u12_1.mat holds it: annolist(i).image.name and
    .annorect(j), img_train, version, single_person, act, video_list."""
    annolist = struct_array(
        [
            {
                "image": {"name": name},
                "annorect": struct_array(rects) if rects else EMPTY,
                "frame_sec": EMPTY,
                "vididx": EMPTY,
            }
            for name, rects in images
        ]
    )
    single_person = np.empty((len(images), 1), dtype=object)
    single_person[:] = [[EMPTY]] * len(images)
    act = struct_array([{"cat_name": EMPTY, "act_name": EMPTY, "act_id": -1}] * len(images))
    release = {
        "annolist": annolist,
        "img_train": np.array([img_train], np.uint8),
        "version": "12",
        "single_person": single_person,
        "act": act,
        "video_list": np.array([["vid"]], dtype=object),
    }
    scipy.io.savemat(path, {"RELEASE": release})


def mat_fixture(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("005808361.jpg", "052475643.jpg", "060754485.jpg"):
        shutil.copy(REAL / "mpii" / name, images / name)
    entry = json.loads((REAL / "mpii" / "test_mpii.json").read_text())[0]  # 005808361.jpg
    flags = {0: 0, 8: EMPTY, 9: "1"}  # occluded, no flag (as for many head points), string
    points = [(k, float(x), float(y), flags.get(k, 1)) for k, (x, y) in enumerate(entry["joints"])]
    points = points[8:] + points[:8]  # the release lists points in no fixed order
    second = [(0, 300.0, 650.0, 1.0), (9, 1290.0, 50.0, 1), (12, 320.0, 300.0, 1)]
    write_release(
        tmp_path / "mpii_human_pose_v1_u12_1.mat",
        [
            (
                "005808361.jpg",
                [
                    annorect(points, (966.0, 340.0), 4.7),
                    annorect(None, (301.0, 401.0), 2.0),
                    annorect(second, (310.0, 400.0), 3.0),
                ],
            ),
            ("052475643.jpg", [annorect(None, (316.0, 220.0), 1.7)]),
            ("060754485.jpg", []),
        ],
        [1, 0, 1],
    )
    return tmp_path


def test_official_mat_layout(tmp_path):
    card = make_card(tmp_path, mat_fixture(tmp_path), "mpii_human_pose_v1_u12_1.mat")
    converter, records = convert_all(card)
    assert sorted(records) == [
        "mpii/train/005808361",
        "mpii/train/060754485",
    ]  # test image left out
    assert converter.stats["train"] == {"images": 2, "persons": 3}
    assert records["mpii/train/060754485"].persons == []  # a training image without people
    first, unlabelled, second = records["mpii/train/005808361"].persons
    assert first.keypoints_2d[J["right_ankle"]].tolist() == [803.0, 710.0]
    assert first.keypoints_2d_vis[J["right_ankle"]] == VIS_OCCLUDED  # is_visible 0
    assert first.keypoints_2d_vis[J["upper_neck"]] == VIS_VISIBLE  # no is_visible: a label
    assert first.keypoints_2d_vis[J["head_top"]] == VIS_VISIBLE  # is_visible '1'
    assert (first.keypoints_2d_vis[MPII] != VIS_UNLABELLED).all()
    # a rect without annopoints: a person without joints, boxed by objpos +- 100 * scale
    assert (unlabelled.keypoints_2d_vis == VIS_UNLABELLED).all()
    np.testing.assert_allclose(unlabelled.box, [100.0, 200.0, 500.0, 600.0])
    assert (second.keypoints_2d_vis != VIS_UNLABELLED).sum() == 3
    assert second.keypoints_2d_vis[J["head_top"]] == VIS_OUT_OF_FRAME  # x = 1289 in a 1280 image
    assert second.keypoints_2d[J["right_shoulder"]].tolist() == [319.0, 299.0]


def test_official_mat_bad_input(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"annolist": np.zeros(3)})
    (tmp_path / "images").mkdir()
    shutil.copy(REAL / "mpii" / "005808361.jpg", tmp_path / "images")
    with pytest.raises(CardError, match=r"other\.mat: RELEASE: missing"):
        Mpii().index(make_card(tmp_path, tmp_path, "other.mat"), "train")
    bad = [annorect([(16, 1.0, 2.0, 1)], (1.0, 1.0), 1.0)]
    write_release(tmp_path / "bad.mat", [("005808361.jpg", bad)], [1])
    card = make_card(tmp_path, tmp_path, "bad.mat")
    item = Mpii().index(card, "train")[0]
    with pytest.raises(ConversionError, match=r"annolist\(1\)\.annorect\(1\): point id 16"):
        Mpii().convert(card, "train", item)
