"""MPII Human Pose (format ``mpii``), from either annotation file, picked by its extension.

Split fields: ``annotations`` (file), ``images`` (folder); optional ``eft`` (:mod:`.eft`).

* ``.json``: the mmpose / HRNet conversion, a list of one entry per person ``{image,
  joints (16, 2), joints_vis (16,), center (2,), scale}``; entries are grouped by image, so a
  multi-person image is one record. A joint at (-1, -1) or with ``joints_vis`` 0 is unlabelled;
  the others are labels without occlusion information (``VIS_VISIBLE``).
* ``.mat``: the official ``mpii_human_pose_v1_u12_1.mat``: ``RELEASE.annolist(i)`` holds
  ``image.name`` and ``annorect(j)``, whose ``annopoints.point(k)`` has ``id`` (0-15, MPII's
  joint order), ``x``, ``y`` and ``is_visible`` (1 -> ``VIS_VISIBLE``, 0 -> ``VIS_OCCLUDED``;
  empty, as for many head points, -> ``VIS_VISIBLE``); ``RELEASE.img_train(i)`` is 1 for the
  training images, the only ones with joints, and only those are listed. A rect without
  ``annopoints`` is a person without joint labels, kept with its ``objpos`` / ``scale`` box.

Coordinates in both files are MATLAB 1-based; records hold 0-based pixels (minus 1, as mmpose
does). Box: the labelled joints' extent, else the square of side 200 * scale around the person's
center (MPII's scale is the person's height / 200 px). Sample id: the image's file stem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.io

from instancehmr.body.joint_sets import MPII16
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

N_JOINTS = len(MPII16.joints)


class Mpii(Converter):
    format = "mpii"
    split_files: ClassVar[dict[str, str]] = {"annotations": "file", "images": "dir"}
    optional_files: ClassVar[dict[str, str]] = {"eft": "file"}

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        path = card.file(split, "annotations")
        if path.suffix == ".json":
            people = _read_json(card, path)
        elif path.suffix == ".mat":
            people = _read_mat(card, path)
        else:
            raise card.fail(f"splits.{split}.annotations", f"{path}: expected a .json or .mat file")
        images = card.file(split, "images")
        result = [{"file": str(images / name), "people": p} for name, p in people.items()]
        self.stats[split] = attach_to_items(
            card, split, result, _persons, persons=sum(len(i["people"]) for i in result)
        )
        return result

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        image = read_image(Path(item["file"]))
        persons = _persons(item)
        mark_out_of_frame(persons, image.height, image.width)
        return make_record(card, split, Path(item["file"]).stem, image, persons)


def _persons(item: dict[str, Any]) -> list[Person]:
    """The item's people; ConversionError naming the image and the person for a bad one."""
    persons = []
    for k, raw in enumerate(item["people"]):
        where = f"{item['file']}: {raw['source']}"
        joints, vis = _joints(raw, where)
        box = None if (vis != VIS_UNLABELLED).any() else _center_box(raw, where)
        persons.append(Person.from_joint_set(MPII16, joints, vis, box=box, **eft_labels(item, k)))
    return persons


def _center_box(raw: dict[str, Any], where: str) -> np.ndarray:
    """(4,) square of side 200 * scale around the 1-based center, in 0-based pixels."""
    try:
        (cx, cy), half = np.asarray(raw["center"], np.float64) - 1.0, 100.0 * float(raw["scale"])
    except (TypeError, ValueError):
        raise ConversionError(f"{where}: no labelled joint and no center / scale") from None
    return np.array([cx - half, cy - half, cx + half, cy + half])


def _joints(raw: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(16, 2) 0-based pixels and (16,) VIS codes from a JSON entry or a .mat rect."""
    if "points" in raw:
        joints = np.zeros((N_JOINTS, 2))
        vis = np.zeros(N_JOINTS, np.int8)
        for pid, x, y, visible in raw["points"]:
            if not isinstance(pid, int) or not 0 <= pid < N_JOINTS:
                raise ConversionError(f"{where}: point id {pid!r} is not in 0..{N_JOINTS - 1}")
            if not all(isinstance(v, int | float) for v in (x, y)):
                raise ConversionError(f"{where}: point {pid}: x, y = {x!r}, {y!r} are not numbers")
            if visible not in (None, 0, 1):
                raise ConversionError(f"{where}: point {pid}: is_visible {visible!r} is not 0 or 1")
            joints[pid] = (x, y)
            vis[pid] = VIS_OCCLUDED if visible == 0 else VIS_VISIBLE
    else:
        try:
            joints = np.asarray(raw["joints"], np.float64)
            flags = np.asarray(raw["joints_vis"], np.float64)
        except (TypeError, ValueError):
            raise ConversionError(
                f"{where}: joints / joints_vis are not arrays of numbers"
            ) from None
        if joints.shape != (N_JOINTS, 2) or flags.shape != (N_JOINTS,):
            raise ConversionError(
                f"{where}: joints {joints.shape} / joints_vis {flags.shape}, "
                "expected (16, 2) / (16,)"
            )
        missing = (flags == 0) | (joints == -1).all(axis=1)
        vis = np.where(missing, VIS_UNLABELLED, VIS_VISIBLE).astype(np.int8)
    if not np.isfinite(joints).all():
        raise ConversionError(f"{where}: joints are not finite")
    return np.where(vis[:, None] != VIS_UNLABELLED, joints - 1.0, 0.0), vis


def _read_json(card: Card, path: Path) -> dict[str, list[dict[str, Any]]]:
    """Image name -> people of the mmpose JSON; CardError for a wrong structure."""
    entries = read_json(card, path)
    if not isinstance(entries, list):
        raise CardError(f"{card.path}: {path}: expected a list of person entries")
    people: dict[str, list[dict[str, Any]]] = {}
    for k, entry in enumerate(entries):
        for key in ("image", "joints", "joints_vis"):
            if not isinstance(entry, dict) or key not in entry:
                raise CardError(f"{card.path}: {path}: [{k}].{key} is missing")
        person = {
            "source": f"entry {k}",
            "joints": entry["joints"],
            "joints_vis": entry["joints_vis"],
            "center": entry.get("center"),
            "scale": entry.get("scale"),
        }
        people.setdefault(str(entry["image"]), []).append(person)
    return people


def _read_mat(card: Card, path: Path) -> dict[str, list[dict[str, Any]]]:
    """Image name -> people of the official .mat's training images (with or without people)."""

    def fail(field: str, why: str) -> CardError:
        return CardError(f"{card.path}: {path}: {field}: {why}")

    try:
        mat = scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)
    except (OSError, ValueError, TypeError) as err:
        raise fail("file", f"not a readable .mat file: {err}") from None
    if "RELEASE" not in mat:
        raise fail("RELEASE", "missing")
    release = mat["RELEASE"]
    for field in ("annolist", "img_train"):
        if not hasattr(release, field):
            raise fail(f"RELEASE.{field}", "missing")
    annolist = _items(release.annolist)
    img_train = np.atleast_1d(release.img_train).ravel()
    if len(img_train) != len(annolist):
        raise fail("RELEASE.img_train", f"{len(img_train)} flags for {len(annolist)} images")
    people: dict[str, list[dict[str, Any]]] = {}
    for i, anno in enumerate(annolist):
        if img_train[i] != 1:
            continue
        try:
            name = str(anno.image.name)
        except AttributeError:
            raise fail(f"RELEASE.annolist({i + 1}).image.name", "missing") from None
        image_people = people.setdefault(name, [])
        for j, rect in enumerate(_items(getattr(anno, "annorect", None))):
            person = _rect(rect, f"annolist({i + 1}).annorect({j + 1})")
            if person is not None:
                image_people.append(person)
    return people


def _rect(rect: Any, source: str) -> dict[str, Any] | None:
    """One annorect as a plain dict (1-based coordinates), or None if it locates nobody."""
    objpos = getattr(rect, "objpos", None)
    center = [_scalar(objpos.x), _scalar(objpos.y)] if hasattr(objpos, "x") else None
    scale = _scalar(getattr(rect, "scale", None))
    annopoints = getattr(rect, "annopoints", None)
    points = [
        [_integral(p.id), _scalar(p.x), _scalar(p.y), _integral(getattr(p, "is_visible", None))]
        for p in _items(getattr(annopoints, "point", None))
    ]
    if not points and (center is None or None in center or scale is None):
        return None
    return {"source": source, "points": points, "center": center, "scale": scale}


def _items(value: Any) -> list:
    """A MATLAB struct array (squeezed to one struct, an array of structs, or empty) as a list."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _scalar(value: Any) -> Any:
    """A squeezed MATLAB scalar as a Python number; None for an empty array."""
    if isinstance(value, np.ndarray):
        return None if value.size == 0 else value.ravel()[0].item()
    return value.item() if isinstance(value, np.generic) else value


def _integral(value: Any) -> Any:
    """An id or flag as an int (MATLAB stores doubles or, for ``is_visible``, sometimes the
    strings '0' / '1'); None for an empty array; anything else unchanged."""
    value = _scalar(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool | float) and float(value).is_integer():
        return int(value)
    return value
