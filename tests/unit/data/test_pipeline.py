"""make_sample: decode, augment and targets of one record (no Ray)."""

from types import SimpleNamespace

import cv2
import numpy as np

from instancehmr.body.joint_sets import CANONICAL_INDEX, COCO17
from instancehmr.data.pipeline import TARGET_COLUMNS, make_sample
from instancehmr.data.schema import VIS_VISIBLE, ImageRecord, Person, to_table


def coco_person(offset: float) -> Person:
    rng = np.random.default_rng(int(offset))
    kp = np.stack([offset + rng.random(17) * 60, 40 + rng.random(17) * 150], 1)
    return Person.from_joint_set(COCO17, kp, np.full(17, VIS_VISIBLE))


def record(n_people: int) -> dict:
    image = np.full((240, 320, 3), 90, np.uint8)
    _, data = cv2.imencode(".jpg", image)
    persons = [coco_person(20.0 + 70 * i) for i in range(n_people)]
    rec = ImageRecord("t/train/0", "t", "train", data.tobytes(), "jpeg", 240, 320, persons)
    return to_table([rec]).to_pylist()[0]


def test_letterboxed_sample_has_targets_at_people():
    row = record(3)
    sample = make_sample(row, input_size=128, max_people=4)
    assert sample["images"].shape == (128, 128, 3) and sample["images"].dtype == np.uint8
    assert set(TARGET_COLUMNS) <= set(sample)
    assert sample["person_mask"].tolist() == [True, True, True, False]
    assert sample["center_heatmap"].shape == (1, 16, 16) and sample["joint_heatmap"].shape == (
        24,
        16,
        16,
    )
    for cx, cy in np.round(sample["centers"][:3]).astype(int):
        assert sample["center_heatmap"][0, cy, cx] == 1.0
    # COCO labels shoulders/hips/limbs but not the spine or hands: those channels are ignored.
    mask = sample["joint_heatmap_mask"]
    assert mask[CANONICAL_INDEX["left_knee"]] and not mask[CANONICAL_INDEX["spine1"]]
    # Joint peaks sit at each person's joints (map pixels of the normalised keypoints).
    knee = CANONICAL_INDEX["left_knee"]
    for p in range(3):
        x, y = np.round((sample["keypoints_2d"][p, knee] + 1) * 8 - 0.5).astype(int)
        assert sample["joint_heatmap"][knee, y, x] == 1.0
    assert not sample["pose_mask"].any() and not sample["keypoints_3d_mask"].any()
    assert sample["people_dropped"] == 0


def test_extra_people_are_counted_not_silently_lost():
    sample = make_sample(record(3), input_size=64, max_people=2)
    assert sample["person_mask"].sum() == 2 and sample["people_dropped"] == 1


def test_augmented_samples_keep_shapes():
    augment = SimpleNamespace(
        crop_scale=[0.6, 1.0],
        rotation_deg=30.0,
        rotation_prob=1.0,
        flip_prob=0.5,
        color_jitter=0.2,
        color_jitter_prob=1.0,
    )
    rng = np.random.default_rng(0)
    for _ in range(5):
        sample = make_sample(record(2), 64, 3, augment, rng)
        assert sample["images"].shape == (64, 64, 3)
        assert np.isfinite(sample["keypoints_2d"]).all()
