"""panoptic on sequences written here in the Panoptic toolbox's layout (bodies, calibration, HD frames)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from corpus_files import PANOPTIC_SIZE, panoptic_camera, write_panoptic

from instancehmr.body.joint_sets import PANOPTIC19
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.corpora.panoptic import PanopticConverter, lens_limit, sample_group
from instancehmr.data.schema import (
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    persons_from_row,
    to_table,
)

HEIGHT, WIDTH = PANOPTIC_SIZE
SEQUENCES = ("160422_haggling1", "160906_pizza1")
CAMERAS = ("00_16", "00_30")
N_FRAMES = 4


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "panoptic"
    return root, write_panoptic(root, {seq: range(N_FRAMES) for seq in SEQUENCES}, CAMERAS)


def make_card(tmp_path: Path, root: Path, **options):
    card = {
        "name": "panoptic",
        "format": "panoptic",
        "root": str(root),
        "splits": {"test": {"sequences": "."}},
        "labels": ["keypoints_2d", "keypoints_3d", "intrinsics"],
        "keep_every": options.pop("keep_every", 1),
        "options": {"sequences": list(SEQUENCES), "cameras": list(CAMERAS), **options},
        "obtain": "test fixture",
        "license": "test fixture",
        "role": "benchmark",
    }
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


def toolbox_projection(points: np.ndarray, cam: dict) -> np.ndarray:
    """The Panoptic toolbox's projectPoints (world cm -> distorted pixels), written out."""
    K, R, t, d = (np.array(cam[k], np.float64) for k in ("K", "R", "t", "distCoef"))
    x = R @ points.T + t.reshape(3, 1)
    x = x[:2] / x[2]
    r = (x**2).sum(0)
    radial = 1 + d[0] * r + d[1] * r**2 + d[4] * r**3
    u = x[0] * radial + 2 * d[2] * x[0] * x[1] + d[3] * (r + 2 * x[0] ** 2)
    v = x[1] * radial + 2 * d[3] * x[0] * x[1] + d[2] * (r + 2 * x[1] ** 2)
    return np.stack([K[0, 0] * u + K[0, 1] * v + K[0, 2], K[1, 1] * v + K[1, 2]], 1)


def test_bodies_project_into_each_chosen_hd_camera(tmp_path, corpus):
    root, truth = corpus
    card = make_card(tmp_path, root)
    converter = PanopticConverter()
    converter.check(card, "test")
    items = converter.index(card, "test")
    assert len(items) == len(SEQUENCES) * len(CAMERAS) * N_FRAMES
    records = [converter.convert(card, "test", item) for item in items]
    rows = to_table(records).to_pylist()
    index = PANOPTIC19.canonical_indices
    for record, row in zip(records, rows, strict=True):
        record.check()
        _, _, seq, cam_name, frame = record.sample_id.split("/")
        cam = next(c for c in truth[seq]["calibration"]["cameras"] if c["name"] == cam_name)
        np.testing.assert_allclose(record.intrinsics, cam["K"])
        # Bodies 2 and 3 are out of view.
        assert len(record.persons) == len(persons_from_row(row)) == 2
        for person, source in zip(record.persons, truth[seq]["bodies"][int(frame)], strict=False):
            joints = np.array(source["joints19"]).reshape(19, 4)
            labelled = joints[:, 3] >= 0.1
            expected_3d = (
                joints[:, :3] @ np.array(cam["R"]).T + np.array(cam["t"]).reshape(3)
            ) / 100
            np.testing.assert_allclose(
                person.keypoints_3d[index][labelled], expected_3d[labelled], rtol=1e-5
            )
            np.testing.assert_array_equal(person.keypoints_3d_valid[index], labelled)
            uv = toolbox_projection(joints[:, :3], cam)
            np.testing.assert_allclose(
                person.keypoints_2d[index][labelled], uv[labelled], atol=1e-3
            )
            inside = ((uv >= -0.5) & (uv < np.array([WIDTH, HEIGHT]) - 0.5)).all(1)
            codes = np.where(inside, VIS_VISIBLE, VIS_OUT_OF_FRAME)
            codes[~labelled] = VIS_UNLABELLED
            np.testing.assert_array_equal(person.keypoints_2d_vis[index], codes)
    assert records[0].persons[0].keypoints_2d_vis[index][7] == VIS_UNLABELLED  # the missing knee


def test_sample_ids_carry_the_sequence_group():
    assert sample_group("panoptic/test/160422_haggling1/00_16/00000012") == "Haggling"
    assert sample_group("panoptic/test/160422_mafia2/00_30/00000012") == "Mafia"
    assert sample_group("panoptic/test/160422_ultimatum1/00_16/00000001") == "Ultimatum"
    assert sample_group("panoptic/test/160906_pizza1/00_16/00000001") == "Pizza"


def test_keep_every_and_excluded_frames(tmp_path, corpus):
    root, _ = corpus
    card = make_card(tmp_path, root, keep_every=2, exclude_frames=["160906_pizza1/00_30/00000002"])
    ids = [
        (i["sequence"], i["camera"], i["frame"]) for i in PanopticConverter().index(card, "test")
    ]
    expected = [(s, c, f) for s in SEQUENCES for f in (0, 2) for c in CAMERAS]
    expected.remove(("160906_pizza1", "00_30", 2))
    assert ids == expected


def test_missing_camera_folder_or_calibration_fails_before_work(tmp_path, corpus):
    root, _ = corpus
    with pytest.raises(CardError, match=r"calibration_160422_haggling1\.json: no camera '00_03'"):
        PanopticConverter().index(make_card(tmp_path, root, cameras=["00_03"]), "test")
    with pytest.raises(CardError, match=r"160422_mafia2/calibration_160422_mafia2\.json"):
        PanopticConverter().index(make_card(tmp_path, root, sequences=["160422_mafia2"]), "test")
    (root / "160906_pizza1" / "hdImgs" / "00_30").rename(root / "elsewhere")
    with pytest.raises(CardError, match=r"160906_pizza1/hdImgs/00_30 not found"):
        PanopticConverter().index(make_card(tmp_path, root), "test")
    with pytest.raises(CardError, match=r"options\.cameras"):
        PanopticConverter().index(make_card(tmp_path, root, cameras="00_16"), "test")


def test_nan_joints_and_corrupt_jpeg_fail_their_frame(tmp_path, corpus):
    root, _ = corpus
    body_file = root / "160422_haggling1" / "hdPose3d_stage1_coco19" / "body3DScene_00000001.json"
    scene = json.loads(body_file.read_text())
    scene["bodies"][1]["joints19"][5] = float("nan")
    body_file.write_text(json.dumps(scene))
    (root / "160422_haggling1" / "hdImgs" / "00_30" / "00_30_00000002.jpg").write_bytes(
        b"not a jpeg"
    )
    card = make_card(tmp_path, root)
    converter = PanopticConverter()
    items = {(i["sequence"], i["camera"], i["frame"]): i for i in converter.index(card, "test")}
    converter.convert(card, "test", items[("160422_haggling1", "00_16", 0)])
    with pytest.raises(ConversionError, match=r"body3DScene_00000001\.json: body 1: non-finite"):
        converter.convert(card, "test", items[("160422_haggling1", "00_16", 1)])
    with pytest.raises(ConversionError, match=r"00_30_00000002\.jpg"):
        converter.convert(card, "test", items[("160422_haggling1", "00_30", 2)])


def test_a_joint_far_outside_the_field_of_view_that_the_lens_folds_into_the_image_is_not_seen(
    tmp_path, corpus
):
    """66 degrees off the axis of camera 00_16 (normalized x = 2.2), the fixture's own barrel
    distortion maps a ray back inside the image; the camera cannot see it."""
    root, truth = corpus
    seq = SEQUENCES[0]
    cam = next(c for c in truth[seq]["calibration"]["cameras"] if c["name"] == "00_16")
    R, t = np.array(cam["R"]), np.array(cam["t"]).reshape(3)
    aside = (np.array([2.2, 0.05, 1.0]) * 250.0 - t) @ R  # world point of that camera ray
    folded = toolbox_projection(aside[None], cam)[0]
    assert 0 < folded[0] < WIDTH and 0 < folded[1] < HEIGHT  # the lens model says: visible
    body_file = root / seq / "hdPose3d_stage1_coco19" / "body3DScene_00000000.json"
    scene = json.loads(body_file.read_text())
    scene["bodies"][0]["joints19"][4 * 5 : 4 * 5 + 3] = aside.tolist()  # person 0's left wrist
    everywhere = np.tile(np.concatenate([aside, [0.9]]), (19, 1))  # a body only there
    scene["bodies"].append({"id": 4, "joints19": everywhere.reshape(-1).tolist()})
    body_file.write_text(json.dumps(scene))
    card = make_card(tmp_path, root)
    converter = PanopticConverter()
    item = next(i for i in converter.index(card, "test") if i["camera"] == "00_16")
    record = converter.convert(card, "test", item)
    assert len(record.persons) == 2  # the body beside the camera is not in this image
    wrist = PANOPTIC19.canonical_indices[5]
    person = record.persons[0]
    assert person.keypoints_2d_vis[wrist] == VIS_UNLABELLED
    assert person.keypoints_3d_valid[wrist]  # the 3-D label stays
    np.testing.assert_allclose(person.keypoints_3d[wrist], aside @ R.T / 100 + t / 100, rtol=1e-5)


def test_lens_limit_is_the_turning_point_of_the_radial_model():
    assert lens_limit(np.array([-0.3, 0.0, 0.0, 0.0, 0.0])) == pytest.approx(1 / 0.9**0.5)
    assert lens_limit(np.array([0.2, 0.01, 0.001, 0.0, 0.0])) == float("inf")
    k1, k2, _, _, k3 = panoptic_camera("00_16", 0.0)["distCoef"]
    r = lens_limit(np.array([k1, k2, 0.0, 0.0, k3]))
    slope = 1 + 3 * k1 * r**2 + 5 * k2 * r**4 + 7 * k3 * r**6
    assert 1.5 < r < 2.2 and slope == pytest.approx(0.0, abs=1e-9)
