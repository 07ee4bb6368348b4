"""mpii on the real mmpose JSON sample, on mmpose JSON written here, and on .mat files written in
the official release's layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml
from corpus_files import (
    EMPTY,
    MPII_MAT,
    mpii_annorect,
    write_eft,
    write_image,
    write_mpii,
    write_mpii_json,
    write_mpii_mat,
)
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

J = CANONICAL_INDEX
MPII = MPII16.canonical_indices
#: The joints of 005808361.jpg (1280 x 720) in mmpose's test_mpii.json, 1-based.
SAMPLE_JOINTS = [
    [804.0, 711.0], [816.0, 510.0], [908.0, 438.0], [1040.0, 454.0], [906.0, 528.0],
    [883.0, 707.0], [974.0, 446.0], [985.0, 253.0], [982.7591, 235.9694], [962.2409, 80.0306],
    [869.0, 214.0], [798.0, 340.0], [902.0, 253.0], [1067.0, 253.0], [1167.0, 353.0],
    [1142.0, 478.0],
]  # fmt: skip


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


@pytest.mark.real_samples
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


@pytest.mark.real_samples
def test_json_entries_of_one_image_become_one_record(tmp_path):
    def edit(entries):
        second = dict(entries[0], joints=[[x + 40, y] for x, y in entries[0]["joints"]])
        entries.append(second)

    _, records = convert_all(make_card(tmp_path, json_variant(tmp_path, edit), "mpii.json"))
    persons = records["mpii/train/005808361"].persons
    assert len(persons) == 2 and len(records) == 5
    assert persons[1].keypoints_2d[J["right_ankle"]].tolist() == [843.0, 710.0]


@pytest.mark.real_samples
def test_json_joint_outside_the_image_is_out_of_frame(tmp_path):
    def edit(entries):
        entries[1]["joints"][10] = [-5.0, 120.0]  # right wrist, left of the image

    _, records = convert_all(make_card(tmp_path, json_variant(tmp_path, edit), "mpii.json"))
    person = records["mpii/train/052475643"].persons[0]
    assert person.keypoints_2d_vis[J["right_wrist"]] == VIS_OUT_OF_FRAME
    assert person.keypoints_2d[J["right_wrist"]].tolist() == [-6.0, 119.0]


@pytest.mark.real_samples
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


# -- mmpose JSON written here ------------------------------------------------------------------


def expected_json_person(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """(16, 2) 0-based joints (zeros where unlabelled) and (16,) codes of a JSON entry."""
    labelled = np.asarray(entry["joints_vis"]) > 0
    joints = np.where(labelled[:, None], np.asarray(entry["joints"]) - 1.0, 0.0)
    return joints, np.where(labelled, VIS_VISIBLE, VIS_UNLABELLED)


def test_written_json_people_of_an_image_joints_and_visibility(tmp_path):
    entries = write_mpii_json(tmp_path / "mpii_train.json", tmp_path / "images", people=(1, 2, 1))
    entries[3]["joints"][10] = [-5.0, 120.0]  # right wrist of the last image, left of it
    entries[3]["joints_vis"][10] = 1
    (tmp_path / "mpii_train.json").write_text(json.dumps(entries))
    converter, records = convert_all(make_card(tmp_path, tmp_path, "mpii_train.json"))
    assert sorted(records) == [
        "mpii/train/000000001",
        "mpii/train/000000011",
        "mpii/train/000000021",
    ]
    assert converter.stats["train"] == {"images": 3, "persons": 4}
    by_image: dict[str, list[dict]] = {}
    for entry in entries:
        by_image.setdefault(Path(entry["image"]).stem, []).append(entry)
    for stem, people in by_image.items():
        persons = records[f"mpii/train/{stem}"].persons
        assert len(persons) == len(people)  # entries of one image: one record, in file order
        for person, entry in zip(persons, people, strict=True):
            joints, codes = expected_json_person(entry)
            if entry is entries[3]:
                codes[10] = VIS_OUT_OF_FRAME
            np.testing.assert_allclose(person.keypoints_2d[MPII], joints, rtol=1e-6)
            np.testing.assert_array_equal(person.keypoints_2d_vis[MPII], codes)
            assert (np.delete(person.keypoints_2d_vis, MPII) == VIS_UNLABELLED).all()
            labelled = person.keypoints_2d_vis != VIS_UNLABELLED
            np.testing.assert_allclose(person.box[:2], person.keypoints_2d[labelled].min(0))
    assert records["mpii/train/000000021"].persons[0].keypoints_2d[J["right_wrist"]].tolist() == [
        -6.0,
        119.0,
    ]


def test_written_json_bad_input(tmp_path):
    entries = write_mpii_json(tmp_path / "mpii.json", tmp_path / "images", people=(1,))
    (tmp_path / "mpii.json").write_text(json.dumps([{**entries[0], "joints": [[1.0, 2.0]] * 15}]))
    card = make_card(tmp_path, tmp_path, "mpii.json")
    item = Mpii().index(card, "train")[0]
    with pytest.raises(ConversionError, match=r"000000001\.jpg: entry 0: joints \(15, 2\)"):
        Mpii().convert(card, "train", item)
    (tmp_path / "mpii.json").write_text(json.dumps([{"image": "000000001.jpg"}]))
    with pytest.raises(CardError, match=r"mpii\.json: \[0\]\.joints is missing"):
        Mpii().index(card, "train")


# -- the official .mat ------------------------------------------------------------------------


def mat_fixture(tmp_path: Path) -> Path:
    """Images of the real samples' sizes and a .mat whose first person has the joints of
    005808361.jpg in mmpose's test_mpii.json."""
    for name, size in (
        ("005808361.jpg", (720, 1280)),
        ("052475643.jpg", (480, 854)),
        ("060754485.jpg", (720, 1280)),
    ):
        write_image(tmp_path / "images" / name, *size)
    flags = {0: 0, 8: EMPTY, 9: "1"}  # occluded, no flag (as for many head points), string
    points = [(k, float(x), float(y), flags.get(k, 1)) for k, (x, y) in enumerate(SAMPLE_JOINTS)]
    points = points[8:] + points[:8]  # the release lists points in no fixed order
    second = [(0, 300.0, 650.0, 1.0), (9, 1290.0, 50.0, 1), (12, 320.0, 300.0, 1)]
    write_mpii_mat(
        tmp_path / "mpii_human_pose_v1_u12_1.mat",
        [
            (
                "005808361.jpg",
                [
                    mpii_annorect(points, (966.0, 340.0), 4.7),
                    mpii_annorect(None, (301.0, 401.0), 2.0),
                    mpii_annorect(second, (310.0, 400.0), 3.0),
                ],
            ),
            ("052475643.jpg", [mpii_annorect(None, (316.0, 220.0), 1.7)]),
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
    write_image(tmp_path / "images" / "005808361.jpg", 720, 1280)
    with pytest.raises(CardError, match=r"other\.mat: RELEASE: missing"):
        Mpii().index(make_card(tmp_path, tmp_path, "other.mat"), "train")
    bad = [mpii_annorect([(16, 1.0, 2.0, 1)], (1.0, 1.0), 1.0)]
    write_mpii_mat(tmp_path / "bad.mat", [("005808361.jpg", bad)], [1])
    card = make_card(tmp_path, tmp_path, "bad.mat")
    item = Mpii().index(card, "train")[0]
    with pytest.raises(ConversionError, match=r"annolist\(1\)\.annorect\(1\): point id 16"):
        Mpii().convert(card, "train", item)


def test_shipped_card_reads_the_release_layout_with_eft_fits(tmp_path, monkeypatch):
    """datasets/mpii.yaml on images/ and mpii_human_pose_v1_u12_2/...mat as written by
    write_mpii, with an EFT file: people, points, is_visible and the rect without points."""
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    root = tmp_path / "data" / "raw" / "mpii"
    written = write_mpii(root)
    assert (root / MPII_MAT).is_file()
    write_eft(root / "eft_fit" / "MPII_ver01.json", [])
    card = load_card(Path(__file__).resolve().parents[4] / "datasets" / "mpii.yaml")
    converter, records = convert_all(card)
    people = written["train"]
    assert sorted(records) == sorted(f"mpii/train/{Path(n).stem}" for n in people)
    assert converter.stats["train"]["persons"] == sum(len(p) for p in people.values()) == 3
    for name, persons in people.items():
        got = records[f"mpii/train/{Path(name).stem}"].persons
        assert len(got) == len(persons)
        for person, source in zip(got, persons, strict=True):
            if not source["points"]:  # no annopoints: a person without joints, boxed
                assert (person.keypoints_2d_vis == VIS_UNLABELLED).all()
                (cx, cy), half = np.asarray(source["objpos"]) - 1, 100 * source["scale"]
                np.testing.assert_allclose(person.box, [cx - half, cy - half, cx + half, cy + half])
                continue
            assert (person.keypoints_2d_vis != VIS_UNLABELLED).sum() == len(source["points"])
            for k, x, y, visible in source["points"]:
                joint = MPII[k]
                np.testing.assert_allclose(person.keypoints_2d[joint], [x - 1, y - 1], rtol=1e-6)
                code = VIS_OCCLUDED if visible == 0 else VIS_VISIBLE
                assert person.keypoints_2d_vis[joint] == code, (name, k, visible)
