"""synthetic_crowd: the shipped card, option checks, deterministic samples in any process,
exact labels (SMPL regenerates the 3-D joints, K projects them onto the 2-D joints), records
that validate and round-trip through Arrow."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import roma
import torch
import yaml

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora import converter_for
from instancehmr.data.corpora.synthetic import SyntheticCrowd, crowd_options
from instancehmr.data.schema import VIS_OUT_OF_FRAME, persons_from_row, to_table

REPO = Path(__file__).resolve().parents[4]
CARD = REPO / "datasets" / "synthetic.yaml"


def small_card(tmp_path: Path, **options):
    raw = yaml.safe_load(CARD.read_text())
    raw["options"].update({"image_size": 128, "sizes": {"train": 5, "val": 2, "test": 3}})
    raw["options"].update(options)
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_card(path)


@pytest.fixture
def card(tmp_path):
    return small_card(tmp_path)


def convert(card, split, index):
    return SyntheticCrowd().convert(card, split, {"index": index})


def test_shipped_card():
    card = load_card(CARD)
    converter = converter_for(card)
    assert isinstance(converter, SyntheticCrowd) and card.role == "both"
    options = crowd_options(card)
    assert options.image_size == 512 and options.max_people == 6 and options.occlusion == 0.5
    for split in card.splits:
        converter.check(card, split)
        assert len(converter.index(card, split)) == options.sizes[split] > 0
    assert set(card.labels) == {
        "keypoints_2d",
        "keypoints_3d",
        "smpl_gt",
        "intrinsics",
        "occlusion",
    }


def test_defaults(tmp_path):
    raw = yaml.safe_load(CARD.read_text())
    raw["options"] = {"sizes": {"train": 1, "val": 1, "test": 1}}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(raw))
    options = crowd_options(load_card(path))
    assert (options.image_size, options.max_people, options.occlusion, options.seed) == (
        512, 6, 0.5, 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"image_size": "big"}, "options.image_size"),
        ({"image_size": 16}, "options.image_size"),
        ({"max_people": 0}, "options.max_people"),
        ({"occlusion": "heavy"}, "options.occlusion"),
        ({"occlusion": 1.5}, "options.occlusion"),
        ({"seed": -1}, "options.seed"),
        ({"sizes": {"train": 5, "val": 2}}, "options.sizes.test"),
        ({"sizes": {"train": 5, "val": 2, "test": 3, "extra": 1}}, "options.sizes.extra"),
        ({"sizes": {"train": -5, "val": 2, "test": 3}}, "options.sizes.train"),
        ({"sizes": [5, 2, 3]}, "options.sizes"),
        ({"max_peeple": 3}, "options.max_peeple"),
    ],
)
def test_bad_options_name_the_key(tmp_path, options, key):
    card = small_card(tmp_path, **options)
    with pytest.raises(CardError, match=rf"synthetic.yaml: {key}: "):
        SyntheticCrowd().check(card, "train")


def test_samples_are_deterministic_and_distinct(card):
    a, b = convert(card, "train", 3), convert(card, "train", 3)
    assert a.image == b.image and a.sample_id == "synthetic/train/000003"
    assert len(a.persons) == len(b.persons)
    for p, q in zip(a.persons, b.persons, strict=True):
        np.testing.assert_array_equal(p.keypoints_2d, q.keypoints_2d)
        np.testing.assert_array_equal(p.keypoints_2d_vis, q.keypoints_2d_vis)
        np.testing.assert_array_equal(p.smpl_pose, q.smpl_pose)
    assert convert(card, "train", 4).image != a.image
    assert convert(card, "val", 3).image != a.image


def _convert_in_worker(card_path: str, split: str, index: int) -> bytes:
    card = load_card(card_path)
    return SyntheticCrowd().convert(card, split, {"index": index}).image


def test_samples_do_not_depend_on_the_process(card):
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        remote = list(pool.map(_convert_in_worker, [str(card.path)] * 2, ["val"] * 2, [1, 0]))
    assert remote == [convert(card, "val", 1).image, convert(card, "val", 0).image]


def test_labels_are_exact(card, body):
    for index in range(3):
        record = convert(card, "test", index)
        record.check()
        k = record.intrinsics.astype(np.float64).reshape(3, 3)
        assert record.image_format == "jpeg" and record.height == record.width == 128
        assert 1 <= len(record.persons) <= 6
        for person in record.persons:
            pose = torch.from_numpy(person.smpl_pose).view(24, 3)
            rotmats = roma.rotvec_to_rotmat(pose)
            with torch.no_grad():
                out = body(
                    rotmats[None, 0], rotmats[None, 1:], torch.from_numpy(person.smpl_betas)[None]
                )
            # smpl_transl is the camera-frame pelvis: shift the posed model's pelvis onto it.
            joints = out.joints[0].numpy()
            joints += person.smpl_transl - joints[CANONICAL_INDEX["pelvis"]]
            np.testing.assert_allclose(joints, person.keypoints_3d, atol=1e-5)
            uvw = person.keypoints_3d.astype(np.float64) @ k.T
            np.testing.assert_allclose(uvw[:, :2] / uvw[:, 2:], person.keypoints_2d, atol=1e-3)
            assert person.keypoints_3d_valid.all() and person.smpl_source == "gt"
            assert 0 <= person.occlusion <= 1 and person.gender == "neutral"
            inside = ((person.keypoints_2d >= -0.5) & (person.keypoints_2d < 127.5)).all(1)
            np.testing.assert_array_equal(person.keypoints_2d_vis == VIS_OUT_OF_FRAME, ~inside)


def test_records_round_trip_through_arrow(card):
    records = [convert(card, "test", i) for i in range(3)]
    table = to_table(records)
    assert table.num_rows == 3
    for record, row in zip(records, table.to_pylist(), strict=True):
        assert row["sample_id"] == record.sample_id and row["image"] == record.image
        np.testing.assert_allclose(np.reshape(row["intrinsics"], (3, 3)), record.intrinsics)
        for p, q in zip(record.persons, persons_from_row(row), strict=True):
            np.testing.assert_array_equal(p.keypoints_2d, q.keypoints_2d)
            np.testing.assert_array_equal(p.keypoints_2d_vis, q.keypoints_2d_vis)
            np.testing.assert_array_equal(p.keypoints_3d, q.keypoints_3d)
            np.testing.assert_array_equal(p.smpl_transl, q.smpl_transl)
            assert q.occlusion == pytest.approx(p.occlusion) and q.smpl_source == "gt"
