"""The image record: one Arrow schema for every corpus (docs/design.md#the-image-record).

One row per image. Per-person labels are parallel list columns (same length, person order
fixed) in the 48-joint canonical set of :mod:`instancehmr.body.joint_sets`. A missing label is a
mask or a null, never zeros that look like data:

* 2-D keypoints carry a visibility code per joint (``VIS_*``); 0 means unlabelled.
* 3-D joints carry a validity mask; absent per-person labels (3-D joints, SMPL parameters,
  occlusion, gender) are null entries.
* SMPL parameters carry their source: ``gt`` (pose, betas, translation), ``eft`` (pseudo-GT pose
  and orientation, no shape), ``none``. ``smpl_pose[:3]`` is the global orientation in the camera
  frame; ``smpl_transl`` is the camera-frame position of the SMPL pelvis (joint 0), so a mesh is
  placed by posing the model without translation and shifting it by ``smpl_transl - joint0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from instancehmr.body.joint_sets import NUM_CANONICAL, JointSet

SCHEMA_VERSION = 1

#: Per-joint visibility codes of ``keypoints_2d_vis``. "Visible" for training means labelled
#: and inside the (augmented) image (docs/method.md#visible-joints): codes 1-4 with in-frame
#: coordinates.
VIS_UNLABELLED = 0
VIS_VISIBLE = 1
VIS_OCCLUDED = 2  # labelled but hidden, cause unknown (COCO v = 1)
VIS_OCCLUDED_BY_PERSON = 3  # hidden behind another person (synthetic depth buffer)
VIS_SELF_OCCLUDED = 4  # hidden behind the person's own body
VIS_OUT_OF_FRAME = 5  # labelled position outside the image
LABELLED_CODES = (VIS_VISIBLE, VIS_OCCLUDED, VIS_OCCLUDED_BY_PERSON, VIS_SELF_OCCLUDED)

SMPL_SOURCES = ("gt", "eft", "none")
GENDERS = ("neutral", "male", "female")

J = NUM_CANONICAL


def _fixed(dtype: pa.DataType, size: int) -> pa.DataType:
    return pa.list_(dtype, size)


ARROW_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),
        pa.field("image_format", pa.string(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("intrinsics", pa.list_(pa.float32())),  # 3x3 K row-major, null if unknown
        # Per-person columns: one entry per person; an entry is null where the label is absent.
        # Nullable entries are variable-size lists (Parquet does not round-trip null entries of
        # nested fixed-size lists); their sizes are checked by ImageRecord.check.
        pa.field("keypoints_2d", pa.list_(_fixed(pa.float32(), J * 2)), nullable=False),
        pa.field("keypoints_2d_vis", pa.list_(_fixed(pa.int8(), J)), nullable=False),
        pa.field("keypoints_3d", pa.list_(pa.list_(pa.float32())), nullable=False),
        pa.field("keypoints_3d_valid", pa.list_(pa.list_(pa.bool_())), nullable=False),
        pa.field("smpl_pose", pa.list_(pa.list_(pa.float32())), nullable=False),
        pa.field("smpl_betas", pa.list_(pa.list_(pa.float32())), nullable=False),
        pa.field("smpl_transl", pa.list_(pa.list_(pa.float32())), nullable=False),
        pa.field("smpl_source", pa.list_(pa.string()), nullable=False),
        pa.field("boxes", pa.list_(_fixed(pa.float32(), 4)), nullable=False),
        pa.field("occlusion", pa.list_(pa.float32()), nullable=False),
        pa.field("gender", pa.list_(pa.string()), nullable=False),
    ],
    metadata={"instancehmr_schema_version": str(SCHEMA_VERSION)},
)


class RecordError(ValueError):
    """A record that does not fit the schema; the message names the sample and field."""


@dataclass
class Person:
    """One person's labels in canonical joints (J = 48), original-image pixels and metres.

    keypoints_2d (J, 2), keypoints_2d_vis (J,) int8 codes, keypoints_3d (J, 3) camera frame
    with keypoints_3d_valid (J,) or both None, smpl_pose (72,) / smpl_betas (10,) /
    smpl_transl (3,) or None, box (4,) x0 y0 x1 y1.
    """

    keypoints_2d: np.ndarray
    keypoints_2d_vis: np.ndarray
    box: np.ndarray
    keypoints_3d: np.ndarray | None = None
    keypoints_3d_valid: np.ndarray | None = None
    smpl_pose: np.ndarray | None = None
    smpl_betas: np.ndarray | None = None
    smpl_transl: np.ndarray | None = None
    smpl_source: str = "none"
    occlusion: float | None = None
    gender: str | None = None

    @classmethod
    def from_joint_set(
        cls,
        joint_set: JointSet,
        keypoints_2d: np.ndarray,
        visibility: np.ndarray,
        keypoints_3d: np.ndarray | None = None,
        keypoints_3d_valid: np.ndarray | None = None,
        box: np.ndarray | None = None,
        **labels,
    ) -> Person:
        """Labels given in a dataset's own joint order; ``box`` (x0, y0, x1, y1, pixels)
        defaults to the labelled keypoints' extent. ``visibility`` holds ``VIS_*`` codes.
        RecordError for a given box without positive width and height (a bad annotation: the
        sample is counted as failed)."""
        kp2d, labelled = joint_set.to_canonical(
            np.asarray(keypoints_2d, np.float32), np.asarray(visibility) != VIS_UNLABELLED
        )
        vis = np.zeros(J, np.int8)
        vis[joint_set.canonical_indices] = np.asarray(visibility, np.int8)
        vis[~labelled] = VIS_UNLABELLED
        kp3d = valid3d = None
        if keypoints_3d is not None:
            valid = (
                np.ones(len(joint_set.joints), bool)
                if keypoints_3d_valid is None
                else keypoints_3d_valid
            )
            kp3d, valid3d = joint_set.to_canonical(
                np.asarray(keypoints_3d, np.float32), np.asarray(valid, bool)
            )
        if box is None:
            box = keypoint_box(kp2d, labelled)
        else:
            x0, y0, x1, y1 = np.asarray(box, np.float64).reshape(4)
            if not (x1 - x0 > 0 and y1 - y0 > 0):  # NaN fails too
                raise RecordError(
                    f"box x0, y0, x1, y1 = {x0:g}, {y0:g}, {x1:g}, {y1:g} has width "
                    f"{x1 - x0:g} and height {y1 - y0:g}: both must be positive"
                )
        return cls(kp2d, vis, np.asarray(box, np.float32), kp3d, valid3d, **labels)


def keypoint_box(keypoints_2d: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """(4,) x0 y0 x1 y1 of the labelled keypoints; zeros when none is labelled."""
    if not labelled.any():
        return np.zeros(4, np.float32)
    pts = keypoints_2d[labelled]
    return np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)


@dataclass
class ImageRecord:
    """One image and its people; ``image`` holds the encoded file bytes (JPEG or PNG)."""

    sample_id: str
    corpus: str
    split: str
    image: bytes
    image_format: str
    height: int
    width: int
    persons: list[Person] = field(default_factory=list)
    intrinsics: np.ndarray | None = None

    def to_row(self) -> dict:
        """The record as a dict of plain Python/numpy values in ``ARROW_SCHEMA``'s layout."""
        self.check()
        persons = self.persons

        def flat(values: list[np.ndarray | None], dtype=np.float32) -> list[np.ndarray | None]:
            return [None if v is None else np.asarray(v, dtype).reshape(-1) for v in values]

        return {
            "sample_id": self.sample_id,
            "corpus": self.corpus,
            "split": self.split,
            "image": self.image,
            "image_format": self.image_format,
            "height": int(self.height),
            "width": int(self.width),
            "intrinsics": None
            if self.intrinsics is None
            else np.asarray(self.intrinsics, np.float32).reshape(9),
            "keypoints_2d": flat([p.keypoints_2d for p in persons]),
            "keypoints_2d_vis": flat([p.keypoints_2d_vis for p in persons], np.int8),
            "keypoints_3d": flat([p.keypoints_3d for p in persons]),
            "keypoints_3d_valid": flat([p.keypoints_3d_valid for p in persons], bool),
            "smpl_pose": flat([p.smpl_pose for p in persons]),
            "smpl_betas": flat([p.smpl_betas for p in persons]),
            "smpl_transl": flat([p.smpl_transl for p in persons]),
            "smpl_source": [p.smpl_source for p in persons],
            "boxes": flat([p.box for p in persons]),
            "occlusion": [p.occlusion for p in persons],
            "gender": [p.gender for p in persons],
        }

    def check(self) -> None:
        """Raise :class:`RecordError` naming the sample and the field that does not fit."""

        def fail(what: str) -> None:
            raise RecordError(f"{self.sample_id}: {what}")

        if self.height <= 0 or self.width <= 0:
            fail(f"image size {self.width} x {self.height}")
        if self.image_format not in ("jpeg", "png"):
            fail(f"image_format '{self.image_format}' is not jpeg or png")
        for i, p in enumerate(self.persons):
            shapes = {
                "keypoints_2d": (p.keypoints_2d, (J, 2)),
                "keypoints_2d_vis": (p.keypoints_2d_vis, (J,)),
                "box": (p.box, (4,)),
                "keypoints_3d": (p.keypoints_3d, (J, 3)),
                "keypoints_3d_valid": (p.keypoints_3d_valid, (J,)),
                "smpl_pose": (p.smpl_pose, (72,)),
                "smpl_betas": (p.smpl_betas, (10,)),
                "smpl_transl": (p.smpl_transl, (3,)),
            }
            for name, (value, shape) in shapes.items():
                if value is not None and np.shape(value) != shape:
                    fail(f"person {i}: {name} has shape {np.shape(value)}, expected {shape}")
                if value is not None and not np.isfinite(np.asarray(value, np.float64)).all():
                    fail(f"person {i}: {name} is not finite")
            if (p.keypoints_3d is None) != (p.keypoints_3d_valid is None):
                fail(
                    f"person {i}: keypoints_3d and keypoints_3d_valid must both be set or both None"
                )
            if p.smpl_source not in SMPL_SOURCES:
                fail(f"person {i}: smpl_source '{p.smpl_source}' is not one of {SMPL_SOURCES}")
            needs = {"gt": (p.smpl_pose, p.smpl_betas), "eft": (p.smpl_pose,), "none": ()}[
                p.smpl_source
            ]
            if any(v is None for v in needs):
                fail(f"person {i}: smpl_source '{p.smpl_source}' without its parameters")
            if p.gender is not None and p.gender not in GENDERS:
                fail(f"person {i}: gender '{p.gender}' is not one of {GENDERS}")


def to_table(records: list[ImageRecord]) -> pa.Table:
    """Records -> an Arrow table of ``ARROW_SCHEMA`` (validates each record)."""
    rows = [r.to_row() for r in records]
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


def persons_from_row(row: dict) -> list[Person]:
    """Inverse of :meth:`ImageRecord.to_row` for the per-person columns of one row."""

    def array(value, shape, dtype=np.float32) -> np.ndarray | None:
        return None if value is None else np.asarray(value, dtype).reshape(shape)

    return [
        Person(
            keypoints_2d=array(row["keypoints_2d"][i], (J, 2)),
            keypoints_2d_vis=array(row["keypoints_2d_vis"][i], (J,), np.int8),
            box=array(row["boxes"][i], (4,)),
            keypoints_3d=array(row["keypoints_3d"][i], (J, 3)),
            keypoints_3d_valid=array(row["keypoints_3d_valid"][i], (J,), bool),
            smpl_pose=array(row["smpl_pose"][i], (72,)),
            smpl_betas=array(row["smpl_betas"][i], (10,)),
            smpl_transl=array(row["smpl_transl"][i], (3,)),
            smpl_source=source,
            occlusion=row["occlusion"][i],
            gender=row["gender"][i],
        )
        for i, source in enumerate(row["smpl_source"])
    ]
