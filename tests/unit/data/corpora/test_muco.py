"""muco_json on a MuCo-3DHP.json written here in 3DMPPE's layout, with images from cv2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from corpus_files import MUCO_C, MUCO_F, write_muco

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.corpora.muco import MUCO21, MucoJsonConverter
from instancehmr.data.schema import (
    VIS_OCCLUDED,
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    persons_from_row,
    to_table,
)

F, C = MUCO_F, MUCO_C


def make_card(tmp_path: Path, root: Path, annotations: str = "MuCo-3DHP.json", **fields):
    card = {
        "name": "muco_3dhp",
        "format": "muco_json",
        "root": str(root),
        "splits": {"train": {"annotations": annotations, "images": "."}},
        "labels": ["keypoints_2d", "keypoints_3d", "intrinsics"],
        "obtain": "test fixture",
        "license": "test fixture",
        "role": "train",
        **fields,
    }
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "muco"
    return root, write_muco(root)


def test_people_joints_visibility_and_metres(tmp_path, corpus):
    root, data = corpus
    card = make_card(tmp_path, root)
    converter = MucoJsonConverter()
    converter.check(card, "train")
    records = [converter.convert(card, "train", item) for item in converter.index(card, "train")]
    assert [r.sample_id for r in records] == [
        f"muco_3dhp/train/augmented_set/{i:06d}.jpg" for i in range(3)
    ]
    assert [len(r.persons) for r in records] == [2, 1, 0]
    rows = to_table(records).to_pylist()
    for record, row in zip(records, rows, strict=True):
        record.check()
        assert len(persons_from_row(row)) == len(record.persons)
    np.testing.assert_allclose(records[0].intrinsics, [[F[0], 0, C[0]], [0, F[1], C[1]], [0, 0, 1]])
    first, ann = records[0].persons[0], data["annotations"][0]
    index = MUCO21.canonical_indices
    np.testing.assert_allclose(
        first.keypoints_3d[index], np.array(ann["keypoints_cam"]) / 1000, rtol=1e-6
    )
    assert first.keypoints_3d_valid[index].all() and first.keypoints_3d_valid.sum() == 21
    np.testing.assert_allclose(first.keypoints_2d[index], ann["keypoints_img"], rtol=1e-6)
    pelvis, toe = CANONICAL_INDEX["h36m_pelvis"], CANONICAL_INDEX["left_foot"]
    np.testing.assert_allclose(
        first.keypoints_3d[pelvis], np.array(ann["keypoints_cam"][14]) / 1000, rtol=1e-6
    )
    np.testing.assert_allclose(
        first.keypoints_2d[CANONICAL_INDEX["right_hand"]], ann["keypoints_img"][17], rtol=1e-6
    )
    # Visible joints (flag 1) stay visible; hidden ones are occluded; the toe is out of frame.
    codes = first.keypoints_2d_vis
    assert codes[toe] == VIS_OUT_OF_FRAME
    assert codes[CANONICAL_INDEX["h36m_right_elbow"]] == VIS_OCCLUDED
    assert codes[CANONICAL_INDEX["right_hand"]] == VIS_OCCLUDED
    inside = np.delete(index, [3, 17, 20])
    assert (codes[inside] == VIS_VISIBLE).all()
    assert (np.delete(codes, index) == VIS_UNLABELLED).all()
    x, y, w, h = ann["bbox"]
    np.testing.assert_allclose(first.box, [x, y, x + w, y + h], rtol=1e-6)


def test_keep_every_by_image_id_rank(tmp_path, corpus):
    root, _ = corpus
    items = MucoJsonConverter().index(make_card(tmp_path, root, keep_every=2), "train")
    assert [item["file_name"] for item in items] == [
        "augmented_set/000000.jpg",
        "augmented_set/000002.jpg",
    ]


def test_missing_file_and_bad_structure_fail_before_work(tmp_path, corpus):
    root, data = corpus
    with pytest.raises(CardError, match=r"splits\.train\.annotations.*nope\.json"):
        MucoJsonConverter().check(make_card(tmp_path, root, "nope.json"), "train")
    (root / "bad.json").write_text(json.dumps({"images": data["images"]}))
    with pytest.raises(
        CardError, match=r"bad\.json: expected a dict with 'images' and 'annotations'"
    ):
        MucoJsonConverter().index(make_card(tmp_path, root, "bad.json"), "train")
    orphan = {**data, "annotations": [{**data["annotations"][0], "image_id": 99}]}
    (root / "orphan.json").write_text(json.dumps(orphan))
    with pytest.raises(CardError, match="image_id 99"):
        MucoJsonConverter().index(make_card(tmp_path, root, "orphan.json"), "train")


def test_nan_joints_and_corrupt_jpeg_are_conversion_errors(tmp_path, corpus):
    root, data = corpus
    data["annotations"][2]["keypoints_cam"][4][1] = float("nan")
    (root / "MuCo-3DHP.json").write_text(json.dumps(data))
    card = make_card(tmp_path, root)
    converter = MucoJsonConverter()
    items = converter.index(card, "train")
    with pytest.raises(
        ConversionError, match=r"image augmented_set/000001\.jpg: annotation 2: non-finite"
    ):
        converter.convert(card, "train", items[1])
    (root / "augmented_set/000000.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(ConversionError, match=r"000000\.jpg"):
        converter.convert(card, "train", items[0])
