"""MuCo-3DHP as distributed with 3DMPPE (RootNet / PoseNet): one COCO-style JSON.

``MuCo-3DHP.json`` (the split's ``annotations``):

* ``images``: ``id``, ``file_name`` (under the split's ``images`` folder), ``width``,
  ``height``, ``f`` (fx, fy) and ``c`` (cx, cy) in pixels -> the record's intrinsics;
* ``annotations``: ``image_id``, ``keypoints_img`` (21, 2) pixels, ``keypoints_cam`` (21, 3)
  camera frame millimetres (stored in metres), ``keypoints_vis`` (21,), ``bbox`` x, y, w, h.

One record per image with all its annotations as people (composites of several MPI-INF-3DHP
people). Every joint is labelled (motion capture); ``keypoints_vis`` says whether it is visible:
a visible joint inside the image is ``VIS_VISIBLE`` (kept, unlike the release), a hidden one
``VIS_OCCLUDED``, any joint outside the image ``VIS_OUT_OF_FRAME``. Joints: ``MUCO21``.

``keep_every`` applies to the ``train`` split only: images sorted by id, the one of rank r kept
when r % keep_every == 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from instancehmr.body.joint_sets import JointSet
from instancehmr.data.cards import Card
from instancehmr.data.corpora.base import (
    ConversionError,
    Converter,
    in_frame,
    intrinsics_matrix,
    make_record,
    read_image,
    read_json,
)
from instancehmr.data.corpora.spin_npz import MPI_INF_3DHP17
from instancehmr.data.schema import VIS_OCCLUDED, VIS_OUT_OF_FRAME, VIS_VISIBLE, ImageRecord, Person

#: MuCo-3DHP's 21 joints: MPI-INF-3DHP's 17 (Head_top, Thorax, R_Shoulder, ..., Pelvis, Spine,
#: Head) then hands and toes. Hands map to SMPL's hand joints; toes to SMPL's foot joints
#: (SMPL's "foot" sits at the toe base; ROMP maps MuCo's toes there too).
MUCO21 = JointSet(
    "muco21",
    (*MPI_INF_3DHP17.joints, "right_hand", "left_hand", "right_toe", "left_toe"),
    (*MPI_INF_3DHP17.canonical, "right_hand", "left_hand", "right_foot", "left_foot"),
)
N_JOINTS = len(MUCO21.joints)


class MucoJsonConverter(Converter):
    format = "muco_json"
    split_files: ClassVar[dict[str, str]] = {"annotations": "file", "images": "dir"}

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        path = card.file(split, "annotations")
        where = f"splits.{split}.annotations"
        data = read_json(card, path)
        if not isinstance(data, dict) or not {"images", "annotations"} <= data.keys():
            raise card.fail(where, f"{path}: expected a dict with 'images' and 'annotations'")
        images: dict[Any, dict[str, Any]] = {}
        for i, image in enumerate(data["images"]):
            missing = [k for k in ("id", "file_name", "f", "c") if k not in image]
            if missing:
                raise card.fail(where, f"{path}: images[{i}] has no {missing}")
            images[image["id"]] = {"image": image, "annotations": []}
        for i, ann in enumerate(data["annotations"]):
            if ann.get("image_id") not in images:
                raise card.fail(
                    where,
                    f"{path}: annotations[{i}] names image_id {ann.get('image_id')!r}, "
                    "which is not among the images",
                )
            images[ann["image_id"]]["annotations"].append(ann)
        keep = card.keep_every if split == "train" else 1
        folder = card.file(split, "images")
        items = []
        for rank, image_id in enumerate(sorted(images)):
            if rank % keep:
                continue
            image, anns = images[image_id]["image"], images[image_id]["annotations"]
            items.append(
                {
                    "annotations_file": str(path),
                    "image": str(folder / image["file_name"]),
                    "file_name": image["file_name"],
                    "f": image["f"],
                    "c": image["c"],
                    "people": [
                        {k: ann.get(k) for k in ("id", "keypoints_img", "keypoints_cam",
                                                  "keypoints_vis", "bbox")}
                        for ann in anns
                    ],
                }
            )  # fmt: skip
        return items

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        image = read_image(Path(item["image"]))
        height, width = image.height, image.width
        where = f"{item['annotations_file']}: image {item['file_name']}"
        try:
            intrinsics = intrinsics_matrix(item["f"], item["c"])
        except (TypeError, ValueError):
            raise ConversionError(f"{where}: 'f' and 'c' need 2 numbers each") from None
        persons = []
        for ann in item["people"]:
            try:
                kp2d = np.asarray(ann["keypoints_img"], np.float64).reshape(N_JOINTS, 2)
                kp3d = np.asarray(ann["keypoints_cam"], np.float64).reshape(N_JOINTS, 3) / 1000
                shown = np.asarray(ann["keypoints_vis"], np.float64).reshape(N_JOINTS) > 0
                x, y, w, h = np.asarray(ann["bbox"], np.float64).reshape(4)
            except (TypeError, ValueError):
                raise ConversionError(
                    f"{where}: annotation {ann['id']}: keypoints_img (21, 2), keypoints_cam "
                    "(21, 3), keypoints_vis (21,) and bbox (4,) expected"
                ) from None
            if not (np.isfinite(kp2d).all() and np.isfinite(kp3d).all()):
                raise ConversionError(f"{where}: annotation {ann['id']}: non-finite joints")
            vis = np.where(shown, VIS_VISIBLE, VIS_OCCLUDED)
            vis[~in_frame(kp2d, height, width)] = VIS_OUT_OF_FRAME
            persons.append(
                Person.from_joint_set(
                    MUCO21, kp2d, vis, keypoints_3d=kp3d, box=np.array([x, y, x + w, y + h])
                )
            )
        return make_record(card, split, item["file_name"], image, persons, intrinsics)
