"""CMU Panoptic Studio (benchmark): the 3-D bodies of HD frames seen from chosen HD cameras.

Under the split's ``sequences`` folder, per sequence ``<seq>`` (option ``sequences``):

* ``calibration_<seq>.json``: ``cameras``, each with ``name`` ("00_16"), ``K`` (3, 3),
  ``distCoef`` (5: k1 k2 p1 p2 k3), ``R`` (3, 3) and ``t`` (3, 1) centimetres, world to camera;
* ``hdPose3d_stage1_coco19/body3DScene_<frame:08d>.json``: ``bodies``, each with ``id`` and
  ``joints19`` (19 x [x, y, z, confidence] flat, world frame, centimetres);
* ``hdImgs/<cam>/<cam>_<frame:08d>.jpg``, frames extracted from ``hdVideos/hd_<cam>.mp4``.

One record per (sequence, camera of option ``cameras``, frame with a body file), except the
``<seq>/<cam>/<frame:08d>`` images of option ``exclude_frames`` (broken video frames).
``keep_every`` keeps frames whose number is a multiple of it, in every split (a benchmark with
no training split). A body's joints go to the camera frame (R X + t, metres) as PANOPTIC19;
joints with confidence not above ``MIN_CONFIDENCE`` are unlabelled and invalid (the toolbox's and
CRMH's rule). Whether the camera sees a labelled joint is decided on its ray before the lens
model is applied: in front of the camera, and within :func:`lens_limit` of the optical axis in
normalized image coordinates (beyond it the polynomial lens model folds rays from far outside
the field of view back into the image). Such joints are projected with the lens distortion
(cv2.projectPoints), i.e. to pixels of the distorted image: ``VIS_VISIBLE`` inside it,
``VIS_OUT_OF_FRAME`` outside; the others have no image position and are unlabelled in 2-D (their
3-D label stays). The record's intrinsics are K; the distortion is not stored. A body with no
labelled joint inside the image is outside this camera's view and is left out of the record.

Sample ids are ``<corpus>/<split>/<seq>/<cam>/<frame:08d>``; :func:`sample_group` gives the
sequence group that evaluation reports (Haggling, Mafia, Ultimatum, Pizza).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from instancehmr.body.joint_sets import PANOPTIC19
from instancehmr.data.cards import Card
from instancehmr.data.corpora.base import (
    ConversionError,
    Converter,
    frame_visibility,
    make_record,
    read_image,
)
from instancehmr.data.schema import VIS_VISIBLE, ImageRecord, Person

MIN_CONFIDENCE = 0.1
POSE_FOLDER = "hdPose3d_stage1_coco19"
BODY_FILE = re.compile(r"^body3DScene_(\d+)\.json$")
N_JOINTS = len(PANOPTIC19.joints)


def sample_group(sample_id: str) -> str:
    """The sequence group of a Panoptic sample id: "160422_haggling1" -> "Haggling"."""
    sequence = sample_id.rsplit("/", 3)[-3]
    match = re.match(r"^\d+_([A-Za-z]+)", sequence)
    return match.group(1).capitalize() if match else sequence


class PanopticConverter(Converter):
    format = "panoptic"
    split_files: ClassVar[dict[str, str]] = {"sequences": "dir"}

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        sequences = _names(card, "sequences")
        cameras = _names(card, "cameras")
        excluded = set(card.options.get("exclude_frames") or ())
        root = card.file(split, "sequences")
        items = []
        for seq in sequences:
            folder = root / seq
            calibration = _calibration(card, split, folder / f"calibration_{seq}.json", cameras)
            poses = folder / POSE_FOLDER
            if not poses.is_dir():
                raise card.fail(f"splits.{split}.sequences", f"folder {poses} not found")
            for cam in cameras:
                if not (folder / "hdImgs" / cam).is_dir():
                    raise card.fail(
                        f"splits.{split}.sequences", f"folder {folder / 'hdImgs' / cam} not found"
                    )
            frames = sorted(
                (int(m.group(1)), p)
                for p in poses.iterdir()
                if (m := BODY_FILE.match(p.name)) is not None
            )
            for frame, body in frames:
                if frame % card.keep_every:
                    continue
                for cam in cameras:
                    if f"{seq}/{cam}/{frame:08d}" in excluded:
                        continue
                    items.append(
                        {
                            "sequence": seq,
                            "camera": cam,
                            "frame": frame,
                            "body": str(body),
                            "image": str(folder / "hdImgs" / cam / f"{cam}_{frame:08d}.jpg"),
                            **calibration[cam],
                        }
                    )
        return items

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        image = read_image(Path(item["image"]))
        K, dist, R, t = item["K"], item["dist"], item["R"], item["t"]
        persons = []
        for joints in _bodies(Path(item["body"])):
            cam = joints[:, :3] @ R.T + t  # camera frame, centimetres
            labelled = joints[:, 3] > MIN_CONFIDENCE
            seen = labelled & in_lens_field(cam, dist)
            uv = np.zeros((N_JOINTS, 2))
            if seen.any():
                projected, _ = cv2.projectPoints(cam[seen], np.zeros(3), np.zeros(3), K, dist)
                uv[seen] = projected[:, 0]
            vis = frame_visibility(uv, seen, image.height, image.width)
            if not (vis == VIS_VISIBLE).any():
                continue
            persons.append(
                Person.from_joint_set(
                    PANOPTIC19,
                    uv,
                    vis,
                    keypoints_3d=np.where(labelled[:, None], cam / 100, 0.0),
                    keypoints_3d_valid=labelled,
                )
            )
        source_id = f"{item['sequence']}/{item['camera']}/{item['frame']:08d}"
        return make_record(card, split, source_id, image, persons, K)


def lens_limit(dist: np.ndarray) -> float:
    """The radius r of normalized image coordinates (x / z, y / z) up to which the radial part
    of the lens model, r (1 + k1 r^2 + k2 r^4 + k3 r^6) with ``dist`` = (k1, k2, p1, p2, k3) as
    in OpenCV and the Panoptic toolbox, still grows with r: its smallest turning point, inf when
    it has none. Within it the model maps rays one-to-one; beyond it, it maps rays from far
    outside the field of view back towards the image centre."""
    k1, k2, k3 = dist[0], dist[1], dist[4]
    # d/dr of the radial model = 1 + 3 k1 s + 5 k2 s^2 + 7 k3 s^3, with s = r^2.
    roots = np.roots([7 * k3, 5 * k2, 3 * k1, 1.0])
    turns = roots.real[(np.abs(roots.imag) < 1e-12) & (roots.real > 0)]
    return float(np.sqrt(turns.min())) if len(turns) else float("inf")


def in_lens_field(points: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Camera-frame points (J, 3) -> (J,) bool: in front of the camera and within
    :func:`lens_limit` of the optical axis, i.e. where the lens model gives the point's image."""
    z = points[:, 2]
    front = z > 0
    radius = np.linalg.norm(points[:, :2], axis=1) / np.where(front, z, 1.0)
    return front & (radius < lens_limit(dist))


def _names(card: Card, option: str) -> list[str]:
    names = card.options.get(option)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise card.fail(f"options.{option}", f"a non-empty list of names is needed, got {names!r}")
    return names


def _calibration(card: Card, split: str, path: Path, cameras: list[str]) -> dict[str, dict]:
    """K, dist, R, t (centimetres) of each chosen camera; CardError naming file and field."""
    where = f"splits.{split}.sequences"
    try:
        listed = {c.get("name"): c for c in json.loads(path.read_text())["cameras"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise card.fail(where, f"{path}: not a Panoptic calibration file ({err!r})") from None
    out = {}
    for cam in cameras:
        if cam not in listed:
            raise card.fail(where, f"{path}: no camera '{cam}' (it has {sorted(map(str, listed))})")
        fields = {
            "K": ("K", (3, 3)),
            "dist": ("distCoef", (5,)),
            "R": ("R", (3, 3)),
            "t": ("t", (3,)),
        }
        out[cam] = {}
        for key, (name, shape) in fields.items():
            try:
                value = np.asarray(listed[cam][name], np.float64).reshape(shape)
            except (KeyError, TypeError, ValueError):
                raise card.fail(
                    where, f"{path}: camera '{cam}': {name} of shape {shape} needed"
                ) from None
            out[cam][key] = value
    return out


def _bodies(path: Path) -> list[np.ndarray]:
    """A body file's bodies as (19, 4) arrays (x, y, z cm, confidence); ConversionError."""
    try:
        bodies = json.loads(path.read_text())["bodies"]
        joints = [np.asarray(b["joints19"], np.float64).reshape(N_JOINTS, 4) for b in bodies]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConversionError(f"{path}: not a Panoptic body file ({err!r})") from None
    for body, value in zip(bodies, joints, strict=True):
        if not np.isfinite(value).all():
            raise ConversionError(f"{path}: body {body.get('id')}: non-finite joints")
    return joints
