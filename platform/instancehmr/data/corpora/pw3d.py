"""3DPW from its original sequence pickles and image folders.

A split's ``sequences`` folder holds ``<sequence>.pkl`` files (read with the restricted
unpickler), its ``images`` folder ``<sequence>/image_%05d.jpg``. Per sequence, P people and F
image frames (frame f is ``image_{f:05d}.jpg``; ``img_frame_ids`` only index the 60 Hz streams):

* ``poses`` P x (F, 72) SMPL axis-angle, world frame; ``betas`` P x (>= 10,), the first 10 kept;
  ``genders`` P x 'm' | 'f';
* ``jointPositions`` P x (F, 72): the 24 SMPL joints in the world frame, metres;
* ``campose_valid`` P x (F,): whether the person's pose is aligned with the image;
* ``poses2d`` P x (F, 3, 18): the person's 2-D keypoints (x, y, confidence), all zero in
  frames where the person has none;
* ``cam_poses`` (F, 4, 4) world-to-camera; ``cam_intrinsics`` (3, 3).

A record holds a frame's people whose ``campose_valid`` is set and whose ``poses2d`` is not all
zero, in sequence order (frames with none have no record): the person-frames the official 3DPW
evaluation scores (github.com/aymenmir1/3dpw-eval, ``evaluate.py``, ``check_valid_inds``), and
ROMP's 3DPW-PC subset with them (github.com/Arthur151/ROMP, ``romp/lib/dataset/pw3d.py``,
``pack_data``). Per person:

* ``smpl_pose``: global orientation rotated into the camera frame (R_cam @ R_world, through
  roma), body pose unchanged; ``smpl_betas``; ``smpl_source`` gt; gender.
* ``smpl_transl``: the pelvis (SMPL joint 0) in the camera frame, metres. SMPL rotates about
  the rest pelvis J0(betas), so smplx's own ``transl`` in the camera frame would be
  R_cam (J0 + trans) + t_cam - J0: it needs the gendered body model, while the pelvis (3DPW's
  ``jointPositions``) does not. To place a mesh: pose the model without translation, then
  shift it by ``smpl_transl`` minus its joint 0.
* ``keypoints_3d``: ``jointPositions`` in the camera frame as SMPL-24 canonical joints, valid.
* ``keypoints_2d``: those joints projected with ``cam_intrinsics``; ``VIS_VISIBLE`` inside the
  image, ``VIS_OUT_OF_FRAME`` outside, unlabelled behind the camera.

Split ``pc`` is 3DPW-PC (docs/method.md#3dpw-pc): the frames of ``PC_RANGES``, each sequence
found in any subfolder of the split's ``sequences`` folder (point it at ``sequenceFiles``).
``keep_every`` applies to the ``train`` split only (frame % keep_every == 0); benchmarks keep
every frame.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import roma
import torch

from instancehmr.body.joint_sets import SMPL
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.data.cards import Card
from instancehmr.data.corpora.base import (
    ConversionError,
    Converter,
    frame_visibility,
    make_record,
    read_image,
)
from instancehmr.data.schema import ImageRecord, Person

#: 3DPW-PC, the person-occluded frames (release ranges, half-open, image frame numbers).
PC_RANGES = {
    "courtyard_basketball_00": (200, 280),
    "courtyard_captureSelfies_00": (500, 600),
    "courtyard_dancing_00": (60, 370),
    "courtyard_dancing_01": (60, 270),
    "courtyard_hug_00": (100, 500),
    "downtown_bus_00": (1620, 1900),
}
PC_SPLIT = "pc"
GENDERS = {"m": "male", "f": "female"}
PER_PERSON = ("genders", "poses", "betas", "jointPositions", "campose_valid", "poses2d")
KEYS = ("sequence", *PER_PERSON, "cam_poses", "cam_intrinsics")


class Pw3dConverter(Converter):
    format = "3dpw"
    split_files: ClassVar[dict[str, str]] = {"sequences": "dir", "images": "dir"}

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        folder = card.file(split, "sequences")
        keep = card.keep_every if split == "train" else 1
        if split == PC_SPLIT:
            chosen = [(_find(card, split, folder, name), PC_RANGES[name]) for name in PC_RANGES]
        else:
            chosen = [(path, (0, None)) for path in sorted(folder.glob("*.pkl"))]
            if not chosen:
                raise card.fail(f"splits.{split}.sequences", f"no *.pkl files in {folder}")
        images = card.file(split, "images")
        items = []
        for path, (start, stop) in chosen:
            seq = _read_sequence(card, split, path)
            n_frames = len(seq["cam_poses"])
            for frame in range(start, n_frames if stop is None else min(stop, n_frames), keep):
                people = [p for p in range(len(seq["poses"])) if seq["valid"][p][frame]]
                if not people:
                    continue
                items.append(
                    {
                        "pickle": str(path),
                        "sequence": seq["sequence"],
                        "frame": frame,
                        "image": str(images / seq["sequence"] / f"image_{frame:05d}.jpg"),
                        "cam_pose": seq["cam_poses"][frame],
                        "intrinsics": seq["intrinsics"],
                        "people": [
                            {
                                "pose": seq["poses"][p][frame],
                                "betas": seq["betas"][p],
                                "joints": seq["joints"][p][frame],
                                "gender": seq["genders"][p],
                            }
                            for p in people
                        ],
                    }
                )
        return items

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        image = read_image(Path(item["image"]))
        cam, K = item["cam_pose"], item["intrinsics"]
        people = item["people"]
        values = [cam, K, *(p[k] for p in people for k in ("pose", "betas", "joints"))]
        if not all(np.isfinite(v).all() for v in values):
            raise ConversionError(f"{item['pickle']}: frame {item['frame']}: non-finite values")
        rotation, translation = cam[:3, :3], cam[:3, 3]
        poses = np.stack([p["pose"] for p in people])
        world = roma.rotvec_to_rotmat(torch.from_numpy(poses[:, :3]))
        poses[:, :3] = roma.rotmat_to_rotvec(torch.from_numpy(rotation) @ world).numpy()
        persons = []
        for person, pose in zip(people, poses, strict=True):
            joints = person["joints"] @ rotation.T + translation  # (24, 3) camera frame
            kp2d, vis = project(joints, K, image.height, image.width)
            persons.append(
                Person.from_joint_set(
                    SMPL,
                    kp2d,
                    vis,
                    keypoints_3d=joints,
                    smpl_pose=pose,
                    smpl_betas=person["betas"],
                    smpl_transl=joints[0],
                    smpl_source="gt",
                    gender=person["gender"],
                )
            )
        source_id = f"{item['sequence']}/{item['frame']:05d}"
        return make_record(card, split, source_id, image, persons, K)


def project(
    joints: np.ndarray, K: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame joints (J, 3) -> pixels (J, 2) (zero behind the camera) and VIS_* codes."""
    front = joints[:, 2] > 0
    uvw = joints @ K.T
    uv = np.where(front[:, None], uvw[:, :2] / np.where(front, uvw[:, 2], 1.0)[:, None], 0.0)
    return uv, frame_visibility(uv, front, height, width)


def _find(card: Card, split: str, folder: Path, name: str) -> Path:
    """The one ``<name>.pkl`` in any subfolder of ``folder``."""
    found = sorted(folder.rglob(f"{name}.pkl"))
    if len(found) != 1:
        what = "not found" if not found else f"found {len(found)} times"
        raise card.fail(
            f"splits.{split}.sequences", f"3DPW-PC sequence {name}.pkl {what} under {folder}"
        )
    return found[0]


def _read_sequence(card: Card, split: str, path: Path) -> dict[str, Any]:
    """A sequence pickle's fields, checked and as float64 arrays; CardError naming the field."""
    where = f"splits.{split}.sequences"
    try:
        raw = load_pickle(path)
    except (OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise card.fail(where, f"{path}: cannot read the sequence pickle ({err})") from None
    if not isinstance(raw, dict):
        raise card.fail(where, f"{path}: expected a dict, got {type(raw).__name__}")
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise card.fail(where, f"{path}: no {missing} (the file has {sorted(raw)})")

    def array(value: Any, shape: tuple[int, ...], field: str) -> np.ndarray:
        try:
            out = np.asarray(value, np.float64)
        except (TypeError, ValueError):
            out = None
        if out is None or out.shape != shape:
            got = None if out is None else out.shape
            raise card.fail(where, f"{path}: {field} has shape {got}, expected {shape}")
        return out

    n_frames = len(raw["cam_poses"])
    cam_poses = array(raw["cam_poses"], (n_frames, 4, 4), "cam_poses")
    n_people = len(raw["poses"])
    for key in PER_PERSON:
        if len(raw[key]) != n_people:
            raise card.fail(where, f"{path}: {key} has {len(raw[key])} entries, poses {n_people}")
    betas = []
    for p, value in enumerate(raw["betas"]):
        flat = np.asarray(value, np.float64).reshape(-1)
        if flat.size < 10:
            raise card.fail(where, f"{path}: betas[{p}] has {flat.size} values, needs 10")
        betas.append(flat[:10])
    genders = [GENDERS.get(str(g)) for g in raw["genders"]]
    if None in genders:
        raise card.fail(where, f"{path}: genders {raw['genders']} are not all 'm' or 'f'")
    return {
        "sequence": str(raw["sequence"]),
        "genders": genders,
        "poses": [array(v, (n_frames, 72), f"poses[{p}]") for p, v in enumerate(raw["poses"])],
        "betas": betas,
        "joints": [
            array(v, (n_frames, 72), f"jointPositions[{p}]").reshape(n_frames, 24, 3)
            for p, v in enumerate(raw["jointPositions"])
        ],
        "valid": [
            (array(v, (n_frames,), f"campose_valid[{p}]") > 0)
            & (array(k, (n_frames, 3, 18), f"poses2d[{p}]") != 0).any(axis=(1, 2))
            for p, (v, k) in enumerate(zip(raw["campose_valid"], raw["poses2d"], strict=True))
        ],
        "cam_poses": cam_poses,
        "intrinsics": array(raw["cam_intrinsics"], (3, 3), "cam_intrinsics"),
    }
