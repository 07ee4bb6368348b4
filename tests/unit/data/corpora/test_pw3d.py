"""3dpw on sequence pickles written here in 3DPW's layout (2 people, joints from the body model),
pickled the Python 2 way as the released files are."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import roma
import torch
import yaml
from corpus_files import PW3D_INTRINSICS as K
from corpus_files import (
    PW3D_SIZE,
    write_pw3d,
    write_pw3d_image,
    write_pw3d_sequence,
    write_py2_pickle,
)

from instancehmr.body.joint_sets import SMPL
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.corpora.pw3d import PC_RANGES, Pw3dConverter
from instancehmr.data.schema import (
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    persons_from_row,
    to_table,
)

HEIGHT, WIDTH = PW3D_SIZE
#: Where each 3DPW-PC sequence lives in the fixture and how many frames it has (dancing_01 is
#: shorter than its range, so the range is clipped).
LAYOUT = {
    "courtyard_basketball_00": ("train", 285),
    "courtyard_captureSelfies_00": ("train", 605),
    "courtyard_dancing_01": ("train", 100),
    "courtyard_dancing_00": ("validation", 375),
    "courtyard_hug_00": ("validation", 505),
    "downtown_bus_00": ("test", 1905),
}


def rotation(rotvec) -> np.ndarray:
    return roma.rotvec_to_rotmat(torch.tensor(rotvec, dtype=torch.float64)).numpy()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, body):
    root = tmp_path_factory.mktemp("3dpw")
    sequences = write_pw3d(
        root, body, LAYOUT, images={"courtyard_basketball_00": (0, 1, 2, 3, 200)}
    )
    return root, sequences


def test_sequence_files_are_python2_pickles_read_with_latin1(corpus):
    root, sequences = corpus
    path = root / "sequenceFiles" / "train" / "courtyard_basketball_00.pkl"
    raw = path.read_bytes()
    # Protocol 2, arrays through numpy.core.multiarray, their data as Python 2 strings
    assert raw[:2] == b"\x80\x02" and b"numpy.core.multiarray" in raw and b"_codecs" not in raw
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(raw)  # Python 3's default ASCII decoding: the array data are not text
    loaded = load_pickle(path)
    expected = sequences["courtyard_basketball_00"]
    assert loaded["sequence"] == "courtyard_basketball_00" and loaded["genders"] == ["m", "f"]
    np.testing.assert_array_equal(loaded["jointPositions"][1], expected["jointPositions"][1])
    np.testing.assert_array_equal(loaded["campose_valid"][0], expected["campose_valid"][0])
    assert loaded["cam_poses"].dtype == np.float64 and loaded["campose_valid"][0].dtype == bool


def make_card(tmp_path: Path, root: Path, **fields):
    splits = {
        split: {"sequences": f"sequenceFiles/{split}", "images": "imageFiles"}
        for split in ("train", "validation", "test")
    }
    splits["pc"] = {"sequences": "sequenceFiles", "images": "imageFiles"}
    card = {
        "name": "3dpw",
        "format": "3dpw",
        "root": str(root),
        "splits": fields.pop("splits", splits),
        "labels": ["keypoints_2d", "keypoints_3d", "smpl_gt", "intrinsics"],
        "obtain": "test fixture",
        "license": "test fixture",
        "role": "benchmark",
        **fields,
    }
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


def item_of(items: list[dict], sequence: str, frame: int) -> dict:
    return next(i for i in items if i["sequence"] == sequence and i["frame"] == frame)


def test_camera_frame_labels_project_onto_the_stored_2d_joints(tmp_path, corpus):
    root, sequences = corpus
    card = make_card(tmp_path, root)
    converter = Pw3dConverter()
    converter.check(card, "train")
    items = converter.index(card, "train")
    assert len(items) == sum(n for split, n in LAYOUT.values() if split == "train")
    seq = sequences["courtyard_basketball_00"]
    records = [
        converter.convert(card, "train", item_of(items, "courtyard_basketball_00", f))
        for f in (0, 1, 2)
    ]
    rows = to_table(records).to_pylist()
    for frame, (record, row) in enumerate(zip(records, rows, strict=True)):
        record.check()
        assert record.sample_id == f"3dpw/train/courtyard_basketball_00/{frame:05d}"
        np.testing.assert_allclose(record.intrinsics, K)
        assert len(record.persons) == len(persons_from_row(row)) == 2
        cam = seq["cam_poses"][frame]
        for p, person in enumerate(record.persons):
            assert person.smpl_source == "gt" and person.gender == ("male", "female")[p]
            np.testing.assert_allclose(person.smpl_betas, seq["betas"][p][:10], rtol=1e-6)
            np.testing.assert_allclose(
                person.smpl_pose[3:], seq["poses"][p][frame, 3:], rtol=1e-5, atol=1e-6
            )
            orient = rotation(person.smpl_pose[:3])
            np.testing.assert_allclose(
                orient, cam[:3, :3] @ rotation(seq["poses"][p][frame, :3]), atol=1e-5
            )
            world = seq["jointPositions"][p][frame].reshape(24, 3)
            joints = person.keypoints_3d[SMPL.canonical_indices]
            np.testing.assert_allclose(joints, world @ cam[:3, :3].T + cam[:3, 3], atol=1e-5)
            assert (
                person.keypoints_3d_valid[SMPL.canonical_indices].all()
                and person.keypoints_3d_valid.sum() == 24
            )
            np.testing.assert_allclose(person.smpl_transl, joints[0], atol=1e-6)
            # Projecting the stored 3-D joints with the stored intrinsics gives the stored 2-D.
            uvw = joints @ record.intrinsics.T
            uv = uvw[:, :2] / uvw[:, 2:]
            np.testing.assert_allclose(person.keypoints_2d[SMPL.canonical_indices], uv, atol=1e-3)
            inside = ((uv >= -0.5) & (uv < np.array([WIDTH, HEIGHT]) - 0.5)).all(1)
            codes = person.keypoints_2d_vis[SMPL.canonical_indices]
            np.testing.assert_array_equal(codes, np.where(inside, VIS_VISIBLE, VIS_OUT_OF_FRAME))
            assert (
                np.delete(person.keypoints_2d_vis, SMPL.canonical_indices) == VIS_UNLABELLED
            ).all()


def test_smpl_transl_places_the_posed_body_on_the_camera_frame_joints(tmp_path, corpus, body):
    root, _ = corpus
    card = make_card(tmp_path, root)
    converter = Pw3dConverter()
    record = converter.convert(
        card, "train", item_of(converter.index(card, "train"), "courtyard_basketball_00", 2)
    )
    for person in record.persons:
        mats = roma.rotvec_to_rotmat(torch.tensor(person.smpl_pose).reshape(24, 3)).float()
        with torch.no_grad():
            out = body(mats[None, 0], mats[None, 1:], torch.tensor(person.smpl_betas)[None].float())
        joints = out.joints[0, :24] - out.joints[0, :1] + torch.tensor(person.smpl_transl)
        np.testing.assert_allclose(joints.numpy(), person.keypoints_3d[:24], atol=1e-4)


def test_pc_split_selects_exactly_the_listed_frames_from_every_folder(tmp_path, corpus):
    root, _ = corpus
    card = make_card(tmp_path, root)
    converter = Pw3dConverter()
    converter.check(card, "pc")
    got = {(i["sequence"], i["frame"]) for i in converter.index(card, "pc")}
    expected = {
        (name, frame)
        for name, (start, stop) in PC_RANGES.items()
        for frame in range(start, min(stop, LAYOUT[name][1]))
    }
    assert got == expected
    assert (("courtyard_basketball_00", 199) not in got) and (
        ("courtyard_basketball_00", 279) in got
    )
    assert ("courtyard_dancing_01", 99) in got  # clipped at the sequence's end
    record = converter.convert(
        card, "pc", item_of(converter.index(card, "pc"), "courtyard_basketball_00", 200)
    )
    assert record.sample_id == "3dpw/pc/courtyard_basketball_00/00200"


def test_keep_every_thins_train_only(tmp_path, corpus):
    root, _ = corpus
    card = make_card(tmp_path, root, keep_every=4)
    converter = Pw3dConverter()
    frames = [
        i["frame"]
        for i in converter.index(card, "train")
        if i["sequence"] == "courtyard_basketball_00"
    ]
    assert frames == list(range(0, 285, 4))
    assert len(converter.index(card, "validation")) == 375 + 505


def test_only_the_person_frames_the_official_evaluation_scores_are_kept(tmp_path, body):
    """3dpw-eval's check_valid_inds (ROMP's PC subset too): campose_valid AND poses2d not all
    zero, in every split."""
    own = tmp_path / "own"
    for split in ("train", "test"):
        path = own / "sequenceFiles" / split / "s.pkl"
        data = write_pw3d_sequence(path, "courtyard_basketball_00", 8, body, 0)
        data["campose_valid"][1][2] = False
        data["campose_valid"][0][4] = data["campose_valid"][1][4] = False
        data["poses2d"][0][5] = 0.0  # person 0 has no 2-D keypoints in frame 5
        data["poses2d"][0][6] = data["poses2d"][1][6] = 0.0  # nobody in frame 6
        data["poses2d"][1][7, 2] = 0.0  # zero confidences alone do not drop a person
        write_py2_pickle(path, data)
    for frame in range(8):
        write_pw3d_image(own, "courtyard_basketball_00", frame)
    card = make_card(tmp_path, own)
    converter = Pw3dConverter()
    for split in ("train", "test"):
        items = converter.index(card, split)
        assert [i["frame"] for i in items] == [0, 1, 2, 3, 5, 7]
        people = {i["frame"]: [p["gender"] for p in i["people"]] for i in items}
        assert people[2] == ["male"] and people[5] == ["female"]
        assert people[7] == ["male", "female"]
        record = converter.convert(card, split, items[2])
        assert len(record.persons) == 1 and record.persons[0].gender == "male"


def test_a_poses2d_of_the_wrong_shape_fails_before_work(tmp_path, body):
    own = tmp_path / "own"
    path = own / "sequenceFiles" / "test" / "s.pkl"
    data = write_pw3d_sequence(path, "courtyard_basketball_00", 4, body, 0)
    data["poses2d"][1] = np.ones((4, 18, 3))
    write_py2_pickle(path, data)
    (own / "imageFiles").mkdir()
    with pytest.raises(
        CardError, match=r"poses2d\[1\] has shape \(4, 18, 3\), expected \(4, 3, 18\)"
    ):
        Pw3dConverter().index(make_card(tmp_path, own), "test")


def test_missing_folder_missing_key_and_missing_pc_sequence_fail_before_work(tmp_path, corpus):
    root, sequences = corpus
    bad = make_card(
        tmp_path, root, splits={"train": {"sequences": "nowhere", "images": "imageFiles"}}
    )
    with pytest.raises(CardError, match=r"splits\.train\.sequences.*nowhere"):
        Pw3dConverter().check(bad, "train")
    own = tmp_path / "own"
    data = {k: v for k, v in sequences["courtyard_basketball_00"].items() if k != "cam_poses"}
    write_py2_pickle(own / "sequenceFiles" / "train" / "courtyard_basketball_00.pkl", data)
    (own / "imageFiles").mkdir()
    card = make_card(tmp_path, own)
    with pytest.raises(CardError, match=r"courtyard_basketball_00\.pkl: no \['cam_poses'\]"):
        Pw3dConverter().index(card, "train")
    with pytest.raises(CardError, match=r"courtyard_captureSelfies_00\.pkl not found"):
        Pw3dConverter().index(card, "pc")


def test_nan_joints_fail_that_frame_and_a_corrupt_jpeg_fails_its_frame(tmp_path, body):
    own = tmp_path / "own"
    path = own / "sequenceFiles" / "train" / "courtyard_basketball_00.pkl"
    data = write_pw3d_sequence(path, "courtyard_basketball_00", 4, body, 0)
    data["jointPositions"][1][2, 7] = np.nan
    write_py2_pickle(path, data)
    for frame in range(4):
        write_pw3d_image(own, "courtyard_basketball_00", frame)
    (own / "imageFiles" / "courtyard_basketball_00" / "image_00003.jpg").write_bytes(
        b"\xff\xd8\xff\xdbbroken"
    )
    card = make_card(tmp_path, own)
    converter = Pw3dConverter()
    items = converter.index(card, "train")
    converter.convert(card, "train", items[1])
    with pytest.raises(ConversionError, match=r"courtyard_basketball_00\.pkl: frame 2: non-finite"):
        converter.convert(card, "train", items[2])
    with pytest.raises(ConversionError, match=r"image_00003\.jpg"):
        converter.convert(card, "train", items[3])
