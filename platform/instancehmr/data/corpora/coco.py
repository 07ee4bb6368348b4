"""COCO-style keypoint JSON (format ``coco_keypoints``): COCO-17, CrowdPose-14, OCHuman, and
Human3.6M's COCO-style JSON with per-annotation ``keypoints_3d``.

Split fields: ``annotations`` (the JSON file), ``images`` (folder); optional ``eft`` (EFT fits,
:mod:`.eft`, found by ``annotId``) and ``cameras`` (a calibration pickle keyed by
(subject, camera id) with R, T, f, c, as mmpose's Human3.6M ``cameras.pkl``).

The keypoint category names its joints (``categories[].keypoints``); they map onto the canonical
set by name: CrowdPose's and COCO's lists as in :mod:`instancehmr.body.joint_sets`, other names
that are canonical names as they are. Options:

* ``joint_names``: {file name: canonical name} for other names (H36M's ``'root (pelvis)'``).
* ``joint_set``: a joint set of ``JOINT_SETS`` taken by position, ignoring the file's names (the
  Human3.6M JSON of mmpose's tests names joints 1-3 ``left_*`` and 4-6 ``right_*``, but its data
  follow the Human3.6M order, right side first: use ``joint_set: h36m17``).
* ``visibility_codes``: ``coco`` (default; v 0 unlabelled, 1 labelled occluded, 2 visible) or
  ``labelled`` (any v > 0 is a label without occlusion information: CrowdPose, whose v says only
  "labelled", OCHuman, Human3.6M).
* ``keypoints_3d_frame``: ``camera`` (default) or ``world``; world joints (as in the Human3.6M
  JSON) are moved to the camera frame with the ``cameras`` pickle, x_cam = R^T (x_world - T).
* ``file_name_pattern``: regex with named groups over an image's ``file_name`` (default: the
  Human3.6M ``S1_Directions_1.54138969_000001.jpg`` pattern); its groups ``subject`` and
  ``camera`` pick the calibration (an image without one is a ConversionError), and all groups
  fill ``image_path``.
* ``image_path``: an image's path under ``images``, a template over ``file_name`` and the
  pattern's groups (default ``{file_name}``).

Crowd regions (``iscrowd: 1``) are not people: they are left out and counted in
``stats[split]['crowd_regions_excluded']`` after :meth:`CocoKeypoints.index`; images without
people are kept as negatives. A person whose ``keypoints`` are null, absent or empty (annotation
tools write null for people without keypoints) is a person with no labelled joint, as one whose
flags are all 0; a null ``bbox`` is a person without a box. A labelled joint outside the image gets
``VIS_OUT_OF_FRAME``.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from instancehmr.body.joint_sets import (
    CANONICAL_INDEX,
    COCO17,
    CROWDPOSE14,
    JOINT_SETS,
    JointSet,
)
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.data.cards import Card, CardError
from instancehmr.data.corpora.base import (
    ConversionError,
    Converter,
    make_record,
    mark_out_of_frame,
    read_image,
    read_json,
)
from instancehmr.data.corpora.eft import attach_to_items, eft_labels
from instancehmr.data.schema import (
    VIS_OCCLUDED,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    ImageRecord,
    Person,
)

#: Joint sets recognised by their exact list of names in a file.
KNOWN_SETS = (COCO17, CROWDPOSE14)
DEFAULT_FILE_NAME_PATTERN = (
    r"(?P<subject>S\d+)_(?P<action>.+)\.(?P<camera>\d+)_(?P<frame>\d+)\.\w+$"
)


def file_joint_set(card: Card, path: Path, names: list[str]) -> JointSet:
    """The file's joints as a JointSet onto canonical names (see the module docstring)."""
    chosen = card.options.get("joint_set")
    if chosen is not None:
        if chosen not in JOINT_SETS:
            raise card.fail(
                "options.joint_set", f"unknown joint set '{chosen}'; known: {sorted(JOINT_SETS)}"
            )
        js = JOINT_SETS[chosen]
        if len(js.joints) != len(names):
            raise card.fail(
                "options.joint_set",
                f"{chosen} has {len(js.joints)} joints, {path} names {len(names)}",
            )
        return js
    overrides = card.options.get("joint_names") or {}
    if not isinstance(overrides, dict):
        raise card.fail("options.joint_names", "expected a mapping {file name: canonical name}")
    known = next((s for s in KNOWN_SETS if tuple(names) == s.joints), None)
    mapping = dict(zip(known.joints, known.canonical, strict=True)) if known else {}
    mapping.update(overrides)
    canonical = tuple(mapping.get(n, n) for n in names)
    for name, target in zip(names, canonical, strict=True):
        if target not in CANONICAL_INDEX:
            raise card.fail(
                "options.joint_names",
                f"keypoint '{name}' of {path} maps to no canonical joint ('{target}'); "
                "give its canonical name in options.joint_names",
            )
    if len(set(canonical)) != len(canonical):
        raise card.fail(
            "options.joint_names", f"two keypoints of {path} map to one joint: {canonical}"
        )
    if known and canonical == known.canonical:
        return known
    return JointSet(card.name, tuple(names), canonical)


def visibility_codes(card: Card, raw: np.ndarray, where: str) -> np.ndarray:
    """A file's per-joint flags (J,) -> ``VIS_*`` codes under ``options.visibility_codes``."""
    if (raw < 0).any():
        raise ConversionError(f"{where}: visibility flags {raw.tolist()} are not all >= 0")
    if card.options.get("visibility_codes", "coco") == "labelled":
        return np.where(raw > 0, VIS_VISIBLE, VIS_UNLABELLED).astype(np.int8)
    if not np.isin(raw, (0, 1, 2)).all():
        raise ConversionError(f"{where}: COCO visibility flags {raw.tolist()} are not in 0, 1, 2")
    return np.choose(raw.astype(np.int64), (VIS_UNLABELLED, VIS_OCCLUDED, VIS_VISIBLE)).astype(
        np.int8
    )


def _numbers(value: Any, where: str) -> np.ndarray:
    """A JSON list of numbers as a flat float array; ConversionError naming ``where`` if not."""
    try:
        return np.asarray(value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConversionError(f"{where}: not a list of numbers") from None


def _require(card: Card, path: Path, obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise CardError(f"{card.path}: {path}: {where}{key} is missing")
    return obj[key]


class CocoKeypoints(Converter):
    format = "coco_keypoints"
    split_files: ClassVar[dict[str, str]] = {"annotations": "file", "images": "dir"}
    optional_files: ClassVar[dict[str, str]] = {"eft": "file", "cameras": "file"}

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        path = card.file(split, "annotations")
        data = read_json(card, path)
        images = _require(card, path, data, "images", "")
        annotations = _require(card, path, data, "annotations", "")
        categories = _require(card, path, data, "categories", "")
        keypoint_cats = [c for c in categories if isinstance(c, dict) and "keypoints" in c]
        if len(keypoint_cats) != 1:
            raise CardError(
                f"{card.path}: {path}: categories: expected one category with 'keypoints', "
                f"got {len(keypoint_cats)}"
            )
        category = keypoint_cats[0]
        js = file_joint_set(card, path, [str(n) for n in category["keypoints"]])
        frame = card.options.get("keypoints_3d_frame", "camera")
        if frame not in ("camera", "world"):
            raise card.fail("options.keypoints_3d_frame", f"'{frame}' is not camera or world")
        if card.options.get("visibility_codes", "coco") not in ("coco", "labelled"):
            raise card.fail("options.visibility_codes", "must be coco or labelled")
        cameras = self._cameras(card, split)
        if frame == "world" and cameras is None:
            raise card.fail(
                f"splits.{split}.cameras", "keypoints_3d_frame: world needs a cameras file"
            )
        try:
            pattern = re.compile(card.options.get("file_name_pattern", DEFAULT_FILE_NAME_PATTERN))
        except re.error as err:
            raise card.fail(
                "options.file_name_pattern", f"not a regular expression: {err}"
            ) from None
        template = card.options.get("image_path", "{file_name}")

        items: dict[int, dict[str, Any]] = {}
        for k, image in enumerate(images):
            image_id = _require(card, path, image, "id", f"images[{k}].")
            file_name = str(_require(card, path, image, "file_name", f"images[{k}]."))
            match = pattern.search(file_name)
            fields = match.groupdict() if match else {}
            try:
                relative = template.format(file_name=file_name, **fields)
            except (KeyError, IndexError) as err:
                raise card.fail(
                    "options.image_path",
                    f"{file_name}: no field {err} in file_name_pattern's groups",
                ) from None
            items[image_id] = {
                "image_id": image_id,
                "file": str(card.file(split, "images") / relative),
                "height": image.get("height"),
                "width": image.get("width"),
                "cameras": cameras is not None,
                "camera": self._camera(cameras, fields),
                "camera_key": [fields.get("subject"), fields.get("camera")],
                "joints": list(js.joints),
                "canonical": list(js.canonical),
                "annotations": [],
            }
        crowd = 0
        for k, ann in enumerate(annotations):
            ann_id = _require(card, path, ann, "id", f"annotations[{k}].")
            image_id = _require(card, path, ann, "image_id", f"annotations[{k}].")
            if ann.get("category_id", category.get("id")) != category.get("id"):
                continue
            if ann.get("iscrowd", 0):
                crowd += 1
                continue
            if image_id not in items:
                raise CardError(
                    f"{card.path}: {path}: annotations[{k}] (id {ann_id}): "
                    f"image_id {image_id} is not in images"
                )
            items[image_id]["annotations"].append(
                {
                    "id": ann_id,
                    "keypoints": ann.get("keypoints"),
                    "bbox": ann.get("bbox"),
                    "keypoints_3d": ann.get("keypoints_3d"),
                }
            )
        result = list(items.values())
        self.stats[split] = attach_to_items(
            card,
            split,
            result,
            lambda item: self._persons(card, item),
            lambda item: [a["id"] for a in item["annotations"]],
            persons=sum(len(i["annotations"]) for i in result),
            crowd_regions_excluded=crowd,
        )
        return result

    def _cameras(self, card: Card, split: str) -> dict | None:
        if "cameras" not in card.splits[split]:
            return None
        path = card.file(split, "cameras")
        try:
            cameras = load_pickle(path)
        except (OSError, pickle.UnpicklingError) as err:
            raise CardError(
                f"{card.path}: {path}: not a readable calibration pickle: {err}"
            ) from None
        if not isinstance(cameras, dict):
            raise CardError(f"{card.path}: {path}: expected a dict keyed by (subject, camera id)")
        for key, cam in cameras.items():
            for field in ("R", "T", "f", "c"):
                if not isinstance(cam, dict) or field not in cam:
                    raise CardError(f"{card.path}: {path}: camera {key}: field {field} is missing")
        return cameras

    @staticmethod
    def _camera(cameras: dict | None, fields: dict[str, str]) -> dict | None:
        """The calibration of (subject, camera) as plain lists: K (9,), R (9,), T (3,)."""
        if cameras is None:
            return None
        cam = cameras.get((fields.get("subject"), fields.get("camera")))
        if cam is None:
            return None
        (fx, fy), (cx, cy) = np.ravel(cam["f"]), np.ravel(cam["c"])
        return {
            "K": [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
            "R": np.asarray(cam["R"], np.float64).reshape(9).tolist(),
            "T": np.asarray(cam["T"], np.float64).reshape(3).tolist(),
        }

    def _persons(self, card: Card, item: dict[str, Any]) -> list[Person]:
        js = JointSet(card.name, tuple(item["joints"]), tuple(item["canonical"]))
        n = len(js.joints)
        persons = []
        for k, ann in enumerate(item["annotations"]):
            where = f"{item['file']}: annotation {ann['id']}"
            if ann["keypoints"] in (None, []):  # null, absent or empty: no labelled joint
                kp = np.zeros((n, 3))
            else:
                kp = _numbers(ann["keypoints"], f"{where}: keypoints")
                if kp.size != 3 * n:
                    raise ConversionError(
                        f"{where}: {kp.size} keypoint values, expected {3 * n} ({n} joints x 3)"
                    )
                kp = kp.reshape(n, 3)
                if not np.isfinite(kp).all():
                    raise ConversionError(f"{where}: keypoints are not finite")
            vis = visibility_codes(card, kp[:, 2], where)
            box = None
            if ann.get("bbox") is not None:
                xywh = _numbers(ann["bbox"], f"{where}: bbox")
                if xywh.size != 4 or not np.isfinite(xywh).all():
                    raise ConversionError(f"{where}: bbox {ann['bbox']!r} is not x, y, w, h")
                x, y, w, h = xywh
                box = np.array([x, y, x + w, y + h])
            kp3d, valid3d = self._keypoints_3d(card, item, ann, n, where)
            persons.append(
                Person.from_joint_set(
                    js,
                    kp[:, :2],
                    vis,
                    keypoints_3d=kp3d,
                    keypoints_3d_valid=valid3d,
                    box=box,
                    **eft_labels(item, k),
                )
            )
        return persons

    @staticmethod
    def _keypoints_3d(card: Card, item: dict, ann: dict, n: int, where: str) -> tuple:
        """(n, 3) camera-frame joints in metres and (n,) validity, or (None, None)."""
        if ann.get("keypoints_3d") is None:
            return None, None
        raw = _numbers(ann["keypoints_3d"], f"{where}: keypoints_3d")
        if raw.size not in (3 * n, 4 * n):
            raise ConversionError(
                f"{where}: {raw.size} keypoints_3d values, expected {3 * n} or {4 * n}"
            )
        raw = raw.reshape(n, -1)
        points = raw[:, :3]
        valid = raw[:, 3] > 0 if raw.shape[1] == 4 else np.ones(n, bool)
        if card.options.get("keypoints_3d_frame", "camera") == "world":
            cam = item["camera"]
            points = (points - np.asarray(cam["T"])) @ np.asarray(cam["R"]).reshape(3, 3)
        if not np.isfinite(points[valid]).all():
            raise ConversionError(f"{where}: keypoints_3d are not finite")
        return np.where(valid[:, None], points, 0.0), valid

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        image = read_image(Path(item["file"]))
        height, width = image.height, image.width
        if item["height"] is not None and (item["height"], item["width"]) != (height, width):
            raise ConversionError(
                f"{item['file']}: image is {width} x {height}, "
                f"the annotations say {item['width']} x {item['height']}"
            )
        camera = item["camera"]
        if item["cameras"] and camera is None:
            raise ConversionError(
                f"{item['file']}: no calibration for (subject, camera) {item['camera_key']}"
            )
        persons = self._persons(card, item)
        mark_out_of_frame(persons, height, width)
        intrinsics = None if camera is None else np.asarray(camera["K"], np.float32).reshape(3, 3)
        return make_record(card, split, str(item["image_id"]), image, persons, intrinsics)
