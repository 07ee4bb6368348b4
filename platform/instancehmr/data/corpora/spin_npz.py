"""SPIN-style npz corpora: Human3.6M and MPI-INF-3DHP as SPIN and mmpose's preprocessing write them.

The split's ``annotations`` npz holds N rows of one person each, J joints of the card's
``joint_set`` (option; ``h36m17`` or any name of :mod:`instancehmr.body.joint_sets`, or this
module's ``mpi_inf_3dhp17``):

* ``imgname`` (N,) image path under the split's ``images`` folder; rows sharing one image become
  the people of one record;
* ``part`` (N, J, 3) pixels x, y and a flag; ``S`` (N, J, 4) camera frame x, y, z in metres and a
  flag;
* ``pose`` (N, 72) and ``shape`` (N, >= 10), optional: SMPL ground truth (``smpl_source`` gt);
* ``center`` and ``scale`` are not read: a person's box is its labelled keypoints' extent.

Option ``flags`` says what the flags mean: ``labelled`` (SPIN: > 0 labelled / valid, 0 no label;
the default) or ``in_frame`` (mmpose's preprocessing: every joint is labelled, the flag only
says whether it falls inside the image). A labelled joint inside the image is ``VIS_VISIBLE``
(flag 1 is kept, unlike the release), outside ``VIS_OUT_OF_FRAME``.

Intrinsics come from the optional split file ``cameras``: a pickle (mmpose's ``cameras.pkl``)
mapping a key to a dict with ``f`` and ``c`` (2, 1). Option ``camera_key`` is a regular
expression searched in ``imgname`` whose groups form the key (one group: a string; several: a
tuple), e.g. Human3.6M's (subject, camera id).

``keep_every`` applies to the ``train`` split only: the image of rank r (order of first
appearance in the npz) is kept when r % keep_every == 0.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from instancehmr.body.joint_sets import JOINT_SETS, JointSet
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.data.cards import Card
from instancehmr.data.corpora.base import (
    ConversionError,
    Converter,
    frame_visibility,
    intrinsics_matrix,
    make_record,
    read_image,
)
from instancehmr.data.schema import ImageRecord, Person

#: MPI-INF-3DHP's 17 test joints (also mmpose's training order: the 28 annotated joints
#: [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6]). They are Human3.6M-17's
#: joints in another order: neck is H36M's thorax, head is H36M's head centre (neck_nose).
MPI_INF_3DHP17 = JointSet(
    "mpi_inf_3dhp17",
    (
        "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "pelvis", "spine", "head",
    ),
    (
        "h36m_head_top", "h36m_thorax", "h36m_right_shoulder", "h36m_right_elbow",
        "h36m_right_wrist", "h36m_left_shoulder", "h36m_left_elbow", "h36m_left_wrist",
        "h36m_right_hip", "h36m_right_knee", "h36m_right_ankle", "h36m_left_hip",
        "h36m_left_knee", "h36m_left_ankle", "h36m_pelvis", "h36m_spine", "h36m_neck_nose",
    ),
)  # fmt: skip
LAYOUTS: dict[str, JointSet] = {**JOINT_SETS, MPI_INF_3DHP17.name: MPI_INF_3DHP17}
FLAGS = ("labelled", "in_frame")
#: Largest plausible camera-frame coordinate in metres (larger values are millimetres).
MAX_METRES = 100.0


class SpinNpzConverter(Converter):
    format = "spin_npz"
    split_files: ClassVar[dict[str, str]] = {"annotations": "file", "images": "dir"}
    optional_files: ClassVar[dict[str, str]] = {"cameras": "file"}

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        layout = _layout(card)
        flags = card.options.get("flags", "labelled")
        if flags not in FLAGS:
            raise card.fail("options.flags", f"'{flags}' is not one of {FLAGS}")
        path = card.file(split, "annotations")
        arrays = _read_npz(card, split, path, len(layout.joints))
        names = arrays["imgname"]
        rows_of: dict[str, list[int]] = {}
        for row, name in enumerate(names):
            rows_of.setdefault(str(name), []).append(row)
        keep = card.keep_every if split == "train" else 1
        cameras = _Cameras(card, split) if "cameras" in card.splits[split] else None
        images = card.file(split, "images")
        items = []
        for rank, (name, rows) in enumerate(rows_of.items()):
            if rank % keep:
                continue
            item = {
                "imgname": name,
                "image": str(images / name),
                "annotations": str(path),
                "rows": rows,
                "flags": flags,
                "layout": layout.name,
                "intrinsics": None if cameras is None else cameras.intrinsics(name),
            }
            for key in ("part", "S", "pose", "shape"):
                if key in arrays:
                    item[key] = arrays[key][rows]
            items.append(item)
        return items

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        image = read_image(Path(item["image"]))
        layout = LAYOUTS[item["layout"]]
        persons = []
        for i, row in enumerate(item["rows"]):
            part, s = item["part"][i], item["S"][i]
            if item["flags"] == "in_frame":
                labelled = np.ones(len(part), bool)
                valid = labelled
            else:
                labelled, valid = part[:, 2] > 0, s[:, 3] > 0
            if not np.isfinite(part[labelled, :2]).all() or not np.isfinite(s[valid, :3]).all():
                raise ConversionError(
                    f"{item['annotations']}: row {row} ({item['imgname']}): non-finite joints"
                )
            xy = np.where(labelled[:, None], part[:, :2], 0.0)
            vis = frame_visibility(xy, labelled, image.height, image.width)
            smpl = {}
            if "pose" in item:
                pose, shape = item["pose"][i], item["shape"][i][:10]
                if not (np.isfinite(pose).all() and np.isfinite(shape).all()):
                    raise ConversionError(
                        f"{item['annotations']}: row {row} ({item['imgname']}): non-finite SMPL"
                    )
                smpl = {"smpl_pose": pose, "smpl_betas": shape, "smpl_source": "gt"}
            persons.append(
                Person.from_joint_set(
                    layout,
                    xy,
                    vis,
                    keypoints_3d=np.where(valid[:, None], s[:, :3], 0.0),
                    keypoints_3d_valid=valid,
                    **smpl,
                )
            )
        return make_record(card, split, item["imgname"], image, persons, item["intrinsics"])


def _layout(card: Card) -> JointSet:
    name = card.options.get("joint_set")
    if name not in LAYOUTS:
        raise card.fail("options.joint_set", f"'{name}' is not one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def _read_npz(card: Card, split: str, path: Path, n_joints: int) -> dict[str, np.ndarray]:
    """The npz's arrays, shapes checked against the layout; CardError naming file and key."""
    where = f"splits.{split}.annotations"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("imgname", "part", "S", "pose", "shape") if k in npz}
            keys = sorted(npz.files)
    except (OSError, ValueError) as err:
        raise card.fail(where, f"{path}: not a readable npz file ({err})") from None
    for key in ("imgname", "part", "S"):
        if key not in arrays:
            raise card.fail(where, f"{path}: no array '{key}' (the file has {keys})")
    if ("pose" in arrays) != ("shape" in arrays):
        raise card.fail(where, f"{path}: 'pose' and 'shape' come together (the file has {keys})")
    n = len(arrays["imgname"])
    expected = {
        "imgname": (n,),
        "part": (n, n_joints, 3),
        "S": (n, n_joints, 4),
        "pose": (n, 72),
    }
    for key, shape in expected.items():
        if key in arrays and arrays[key].shape != shape:
            raise card.fail(
                where, f"{path}: '{key}' has shape {arrays[key].shape}, expected {shape}"
            )
    betas = arrays.get("shape")
    if betas is not None and (betas.ndim != 2 or betas.shape[0] != n or betas.shape[1] < 10):
        raise card.fail(where, f"{path}: 'shape' has shape {betas.shape}, expected ({n}, >= 10)")
    coords = np.abs(arrays["S"][..., :3])
    if coords.size and np.nanmax(coords) > MAX_METRES:
        raise card.fail(
            where, f"{path}: 'S' reaches {np.nanmax(coords):.0f}; expected metres, not millimetres"
        )
    for key in ("part", "S", "pose", "shape"):
        if key in arrays:
            arrays[key] = arrays[key].astype(np.float32)
    return arrays


class _Cameras:
    """The split's camera pickle and the ``camera_key`` pattern that finds an image's camera."""

    def __init__(self, card: Card, split: str):
        self.path = card.file(split, "cameras")
        self.card = card
        pattern = card.options.get("camera_key")
        if not pattern:
            raise card.fail("options.camera_key", "needed with a cameras file (a regex on imgname)")
        try:
            self.pattern = re.compile(pattern)
        except re.error as err:
            raise card.fail(
                "options.camera_key", f"not a valid regular expression: {err}"
            ) from None
        self.where = f"splits.{split}.cameras"
        try:
            self.cameras = load_pickle(self.path)
        except (OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
            raise card.fail(
                self.where, f"{self.path}: cannot read the camera pickle ({err})"
            ) from None
        if not isinstance(self.cameras, dict):
            raise card.fail(self.where, f"{self.path}: expected a dict of cameras")

    def intrinsics(self, imgname: str) -> np.ndarray:
        match = self.pattern.search(imgname)
        if match is None or not match.groups():
            raise self.card.fail(
                "options.camera_key", f"'{self.pattern.pattern}' finds no camera key in '{imgname}'"
            )
        key = match.group(1) if len(match.groups()) == 1 else match.groups()
        camera = self.cameras.get(key)
        if camera is None:
            raise self.card.fail(self.where, f"{self.path}: no camera {key!r} (for '{imgname}')")
        try:
            return intrinsics_matrix(camera["f"], camera["c"])
        except (KeyError, TypeError, ValueError):
            raise self.card.fail(
                self.where, f"{self.path}: camera {key!r} needs 'f' and 'c' of 2 values each"
            ) from None
