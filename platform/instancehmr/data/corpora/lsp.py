"""Leeds Sports Pose (LSP) and LSP-extended (LSPet) ``joints.mat`` (format ``lsp``), one person
per image, 14 joints in LSP order (:data:`instancehmr.body.joint_sets.LSP14`).

Split fields: ``joints`` (the .mat), ``images`` (folder); optional ``eft`` (:mod:`.eft`). The
layout is told by the array's shape:

* LSP (``lsp_dataset``, ``lsp_dataset_original``): ``joints`` 3 x 14 x N, rows x, y and a flag
  that is 1 for an OCCLUDED joint and 0 for a visible one. The dataset's README calls the row a
  visibility flag, but its values are the other way round (CPM's data preparation inverts it);
  images ``im0001.jpg`` ...
* LSPet (``lspet_dataset``; ``hr-lspet``, the high-resolution copy SPIN and EFT use): ``joints``
  14 x 3 x N, columns x, y and a flag that is 1 for a VISIBLE joint; images ``im00001.jpg`` ...
  (``.png`` in hr-lspet: the extension is the one the first image has).

Every joint is a label: flagged joints become ``VIS_OCCLUDED`` (SPIN keeps all of them as labels
too), the others ``VIS_VISIBLE``, and any outside the image ``VIS_OUT_OF_FRAME``. Coordinates are
MATLAB 1-based; records hold 0-based pixels (minus 1). Option ``image_range``: {split: [first,
last]}, 1-based image numbers to keep (LSP's first 1000 images are its training set).
Sample id: the image's file stem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.io

from instancehmr.body.joint_sets import LSP14
from instancehmr.data.cards import Card, CardError
from instancehmr.data.corpora.base import (
    ConversionError,
    Converter,
    make_record,
    mark_out_of_frame,
    read_image,
)
from instancehmr.data.corpora.eft import attach_to_items, eft_labels
from instancehmr.data.schema import VIS_OCCLUDED, VIS_VISIBLE, ImageRecord, Person

N_JOINTS = len(LSP14.joints)
#: layout -> (image number digits, the flag value that means occluded)
LAYOUTS = {"lsp": (4, 1), "lspet": (5, 0)}


class Lsp(Converter):
    format = "lsp"
    split_files: ClassVar[dict[str, str]] = {"joints": "file", "images": "dir"}
    optional_files: ClassVar[dict[str, str]] = {"eft": "file"}

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        path = card.file(split, "joints")
        layout, joints = _read_joints(card, path)
        first, last = _image_range(card, split, joints.shape[0])
        images = card.file(split, "images")
        digits = LAYOUTS[layout][0]
        suffix = next(
            (s for s in (".jpg", ".png") if (images / f"im{first:0{digits}d}{s}").is_file()), None
        )
        if suffix is None:
            raise card.fail(
                f"splits.{split}.images", f"no im{first:0{digits}d}.jpg or .png in {images}"
            )
        items = [
            {
                "file": str(images / f"im{n:0{digits}d}{suffix}"),
                "layout": layout,
                "joints": joints[n - 1, :, :2].tolist(),
                "flags": joints[n - 1, :, 2].tolist(),
            }
            for n in range(first, last + 1)
        ]
        self.stats[split] = attach_to_items(
            card, split, items, lambda item: [_person(item)], persons=len(items)
        )
        return items

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        image = read_image(Path(item["file"]))
        persons = [_person(item)]
        mark_out_of_frame(persons, image.height, image.width)
        return make_record(card, split, Path(item["file"]).stem, image, persons)


def _person(item: dict[str, Any]) -> Person:
    """The image's person; ConversionError naming the image for bad values."""
    joints = np.asarray(item["joints"], np.float64)
    flags = np.asarray(item["flags"], np.float64)
    if not np.isfinite(joints).all():
        raise ConversionError(f"{item['file']}: joints are not finite")
    if not np.isin(flags, (0, 1)).all():
        raise ConversionError(f"{item['file']}: visibility flags {flags.tolist()} are not 0 or 1")
    occluded = flags == LAYOUTS[item["layout"]][1]
    vis = np.where(occluded, VIS_OCCLUDED, VIS_VISIBLE).astype(np.int8)
    return Person.from_joint_set(LSP14, joints - 1.0, vis, **eft_labels(item, 0))


def _read_joints(card: Card, path: Path) -> tuple[str, np.ndarray]:
    """The layout name and the joints as (N, 14, 3): x, y, flag."""
    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError) as err:
        raise CardError(f"{card.path}: {path}: not a readable .mat file: {err}") from None
    if "joints" not in mat:
        raise CardError(f"{card.path}: {path}: joints: missing")
    joints = np.asarray(mat["joints"], np.float64)
    if joints.ndim == 2:  # MATLAB drops a trailing singleton dimension (one image)
        joints = joints[..., None]
    if joints.shape[:2] == (3, N_JOINTS):
        return "lsp", joints.transpose(2, 1, 0)
    if joints.shape[:2] == (N_JOINTS, 3):
        return "lspet", joints.transpose(2, 0, 1)
    raise CardError(
        f"{card.path}: {path}: joints: shape {joints.shape}, "
        "expected 3 x 14 x N (LSP) or 14 x 3 x N (LSPet)"
    )


def _image_range(card: Card, split: str, count: int) -> tuple[int, int]:
    """1-based (first, last) image numbers of the split from ``options.image_range``."""
    ranges = card.options.get("image_range") or {}
    if split not in ranges:
        return 1, count
    value = ranges[split]
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise card.fail(f"options.image_range.{split}", f"expected [first, last], got {value!r}")
    first, last = value
    if not 1 <= first <= last <= count:
        raise card.fail(
            f"options.image_range.{split}", f"[{first}, {last}] is not within 1..{count}"
        )
    return first, last
