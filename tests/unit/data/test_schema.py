import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instancehmr.body.joint_sets import CANONICAL_INDEX, COCO17, H36M
from instancehmr.data.schema import (
    ARROW_SCHEMA,
    VIS_OCCLUDED,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    ImageRecord,
    Person,
    RecordError,
    persons_from_row,
    to_table,
)


def make_record() -> ImageRecord:
    rng = np.random.default_rng(0)
    vis = np.full(17, VIS_VISIBLE, np.int8)
    vis[3] = VIS_UNLABELLED
    vis[5] = VIS_OCCLUDED
    coco = Person.from_joint_set(
        COCO17, rng.random((17, 2)) * 100, vis, box=np.array([1, 2, 30, 40])
    )
    eft = Person.from_joint_set(
        COCO17, rng.random((17, 2)) * 100, vis, smpl_pose=rng.random(72), smpl_source="eft"
    )
    h36m = Person.from_joint_set(
        H36M,
        rng.random((17, 2)) * 100,
        np.full(17, VIS_VISIBLE),
        keypoints_3d=rng.random((17, 3)),
        smpl_pose=rng.random(72),
        smpl_betas=rng.random(10),
        smpl_transl=rng.random(3),
        smpl_source="gt",
        occlusion=0.25,
        gender="female",
    )
    return ImageRecord(
        "c/train/1",
        "c",
        "train",
        b"\xff\xd8\xff data",
        "jpeg",
        480,
        640,
        [coco, eft, h36m],
        np.eye(3),
    )


def test_round_trip_through_parquet_keeps_schema_and_values():
    record = make_record()
    buffer = io.BytesIO()
    pq.write_table(to_table([record]), buffer)
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert table.schema.equals(ARROW_SCHEMA, check_metadata=False)
    row = table.to_pylist()[0]
    assert row["intrinsics"] == list(np.eye(3, dtype=np.float32).reshape(9))
    back = persons_from_row(row)
    for before, after in zip(record.persons, back, strict=True):
        for field in ("keypoints_2d", "keypoints_2d_vis", "box", "keypoints_3d", "keypoints_3d_valid",
                      "smpl_pose", "smpl_betas", "smpl_transl"):  # fmt: skip
            a, b = getattr(before, field), getattr(after, field)
            assert (a is None) == (b is None), field
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=field)
        assert (before.smpl_source, before.gender) == (after.smpl_source, after.gender)
        assert (
            before.occlusion == pytest.approx(after.occlusion)
            if before.occlusion
            else after.occlusion is None
        )


def test_missing_labels_are_masks_or_nulls():
    coco, eft, h36m = make_record().persons
    assert coco.keypoints_2d_vis[CANONICAL_INDEX["left_ear"]] == VIS_UNLABELLED
    assert coco.keypoints_2d_vis[CANONICAL_INDEX["left_shoulder"]] == VIS_OCCLUDED
    assert coco.keypoints_2d_vis[CANONICAL_INDEX["spine1"]] == VIS_UNLABELLED
    assert coco.keypoints_3d is None and coco.smpl_pose is None
    assert eft.smpl_betas is None
    assert (
        h36m.keypoints_3d_valid[CANONICAL_INDEX["h36m_pelvis"]] and not h36m.keypoints_3d_valid[0]
    )
    row = to_table([make_record()]).to_pylist()[0]
    assert (
        row["keypoints_3d"][0] is None
        and row["smpl_betas"][1] is None
        and row["occlusion"][0] is None
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: setattr(p, "smpl_pose", np.zeros(69)),
            "person 0: smpl_pose has shape (69,), expected (72,)",
        ),
        (lambda p: setattr(p, "smpl_source", "gt"), "smpl_source 'gt' without its parameters"),
        (lambda p: setattr(p, "smpl_source", "mosh"), "smpl_source 'mosh' is not one of"),
        (lambda p: p.keypoints_2d.__setitem__((0, 0), np.nan), "keypoints_2d is not finite"),
        (lambda p: setattr(p, "keypoints_3d", np.zeros((48, 3))), "must both be set"),
    ],
)
def test_invalid_records_name_sample_and_field(change, message):
    record = make_record()
    change(record.persons[0])
    with pytest.raises(RecordError, match="c/train/1") as err:
        record.check()
    assert message in str(err.value)


def test_images_without_people_are_valid():
    table = to_table([ImageRecord("c/val/2", "c", "val", b"x", "png", 10, 10)])
    assert table.column("smpl_source").to_pylist() == [[]]
    assert isinstance(table.schema.field("keypoints_2d").type, pa.ListType)


@pytest.mark.parametrize(
    ("box", "size"),
    [([10, 10, 10, 40], "width 0 and height 30"), ([10, 50, 30, 40], "width 20 and height -10")],
)
def test_a_corpus_box_without_area_is_a_bad_annotation(box, size):
    """A box given by the corpus file must have positive width and height; a box made from the
    labelled keypoints may be a point (one labelled joint)."""
    keypoints = np.zeros((17, 2), np.float32)
    visibility = np.zeros(17, np.int8)
    with pytest.raises(RecordError, match=f"box x0, y0, x1, y1 = .* has {size}"):
        Person.from_joint_set(COCO17, keypoints, visibility, box=np.array(box, float))
    visibility[0] = VIS_VISIBLE
    point = Person.from_joint_set(COCO17, keypoints, visibility)
    assert point.box[2] == point.box[0]
