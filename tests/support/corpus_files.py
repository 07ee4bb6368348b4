"""Small corpora in their ORIGINAL file layouts, written for tests.

One writer per source layout: the folders and files a corpus card's ``obtain`` text describes
(``datasets/*.yaml``) and its converter (``instancehmr/data/corpora``) reads, with images drawn by
OpenCV and annotations in the original file formats:

* COCO-style person-keypoint JSON (:func:`write_coco_keypoints`): COCO 2017 (:func:`write_coco`),
  CrowdPose's 14 joints (:func:`write_crowdpose`), OCHuman (:func:`write_ochuman`);
* MPII: the official ``RELEASE`` .mat (:func:`write_mpii`, :func:`write_mpii_mat`) and the
  mmpose / HRNet JSON (:func:`write_mpii_json`);
* LSP's and LSPet's ``joints.mat`` (:func:`write_lsp`, :func:`write_lspet`);
* SPIN / mmpose npz with a camera pickle: Human3.6M (:func:`write_h36m`), MPI-INF-3DHP
  (:func:`write_mpi_inf_3dhp`);
* MuCo-3DHP's 3DMPPE JSON (:func:`write_muco`);
* 3DPW sequence pickles, written the Python 2 way as the released files are
  (:func:`write_pw3d`, :func:`write_pw3d_sequence`, :func:`write_py2_pickle`);
* CMU Panoptic: calibration, ``hdPose3d_stage1_coco19`` bodies, ``hdImgs`` (:func:`write_panoptic`);
* EFT fits (:func:`write_eft`, :func:`eft_fit`).

Every writer returns what it wrote (the JSON document, the arrays, the people) so a test can check
that each label lands where the source file puts it. Nothing here imports the platform: the files
follow the formats' own descriptions, independently of the converters that read them.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import roma
import scipy.io
import torch

# -- images --------------------------------------------------------------------------------------


def write_image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A JPEG or PNG (by the suffix) of ``height`` x ``width``: a colour gradient with a few
    filled shapes, so it encodes like a photograph rather than a flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    slope = rng.uniform(0.2, 1.5, (2, 3)).astype(np.float32)
    image = (x[..., None] * slope[0] + y[..., None] * slope[1] + rng.integers(0, 255, 3)) % 256
    image = image.astype(np.uint8)
    for _ in range(3):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(2, max(3, min(height, width) // 4)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(image, center, radius, colour, -1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cv2 could not write {path}")
    return path


# -- COCO-style person keypoints (COCO, CrowdPose, OCHuman) --------------------------------------

#: The keypoint names of COCO's person category, as its JSON lists them.
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_SKELETON = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
    [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]  # fmt: skip
#: CrowdPose's 14 keypoint names, as crowdpose_{trainval,test}.json list them.
CROWDPOSE_KEYPOINTS = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head",
    "neck",
)  # fmt: skip


def coco_person(
    rng: np.random.Generator,
    height: int,
    width: int,
    n_joints: int,
    flags: Sequence[int] = (0, 1, 2),
    labelled: bool = True,
) -> dict[str, Any]:
    """One person annotation's keypoints (x, y, v flat; v 0 written as 0, 0, 0 as COCO does),
    ``num_keypoints``, ``bbox`` x, y, w, h, ``area`` and a polygon ``segmentation``."""
    bw, bh = rng.uniform(0.2, 0.4) * width, rng.uniform(0.4, 0.6) * height
    x0, y0 = rng.uniform(0, width - bw), rng.uniform(0, height - bh)
    xy = np.round(rng.uniform([x0, y0], [x0 + bw, y0 + bh], (n_joints, 2)))
    weights = {0: 0.15, 1: 0.2, 2: 0.65}
    p = np.array([weights.get(f, 1.0) for f in flags])
    v = rng.choice(np.asarray(flags), n_joints, p=p / p.sum()) if labelled else np.zeros(n_joints)
    kp = np.concatenate([np.where(v[:, None] > 0, xy, 0), v[:, None]], 1).astype(int)
    box = [round(float(x0), 2), round(float(y0), 2), round(float(bw), 2), round(float(bh), 2)]
    x1, y1 = x0 + bw, y0 + bh
    polygon = [round(float(c), 2) for c in (x0, y0, x1, y0, x1, y1, x0, y1)]
    return {
        "segmentation": [polygon],
        "num_keypoints": int((v > 0).sum()),
        "area": round(float(bw * bh * 0.6), 3),
        "iscrowd": 0,
        "keypoints": kp.reshape(-1).tolist(),
        "bbox": box,
        "category_id": 1,
    }


def write_coco_keypoints(
    json_path: Path,
    images_dir: Path,
    *,
    keypoints: Sequence[str] = COCO_KEYPOINTS,
    people: Sequence[int] = (2, 1, 3, 0),
    first_image_id: int = 1,
    first_annotation_id: int = 1,
    file_name: str = "{id:012d}.jpg",
    size: tuple[int, int] = (240, 320),
    flags: Sequence[int] = (0, 1, 2),
    crowd: bool = True,
    image_fields: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A COCO-style person-keypoints JSON file and its images.

    Image ``i`` (id ``first_image_id + i``, file ``file_name.format(id=...)``, ``size`` (height,
    width), ``image_fields`` added to its entry) holds ``people[i]`` people (0: an image without
    people, a negative). The last person of the first image with two or more people has no
    labelled keypoint (as COCO's small people); with ``crowd``, the first image also holds an
    ``iscrowd`` region (RLE, no keypoints). Keypoint flags ``v`` are drawn from ``flags``.
    Returns the JSON document.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    images, annotations = [], []
    ann_id = first_annotation_id
    unlabelled_done = False
    for i, count in enumerate(people):
        image_id = first_image_id + i
        name = file_name.format(id=image_id)
        write_image(Path(images_dir) / name, height, width, seed + i)
        images.append(
            {
                "license": 4,
                "file_name": name,
                "coco_url": f"http://images.cocodataset.org/test/{name}",
                "height": height,
                "width": width,
                "date_captured": "2013-11-19 21:22:42",
                "flickr_url": f"http://farm8.staticflickr.com/{name}",
                "id": image_id,
                **(image_fields or {}),
            }
        )
        for k in range(count):
            unlabelled = not unlabelled_done and count >= 2 and k == count - 1
            unlabelled_done |= unlabelled
            person = coco_person(rng, height, width, len(keypoints), flags, not unlabelled)
            annotations.append({**person, "image_id": image_id, "id": ann_id})
            ann_id += 1
        if crowd and i == 0:
            annotations.append(
                {
                    "segmentation": {"counts": [0, 40, 200, 40, 1000], "size": [height, width]},
                    "num_keypoints": 0,
                    "area": 3200.0,
                    "iscrowd": 1,
                    "keypoints": [0] * (3 * len(keypoints)),
                    "image_id": image_id,
                    "bbox": [10.0, 10.0, 80.0, 40.0],
                    "category_id": 1,
                    "id": ann_id,
                }
            )
            ann_id += 1
    data = {
        "info": {"description": "test corpus", "version": "1.0", "year": 2017},
        "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4}],
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "supercategory": "person",
                "id": 1,
                "name": "person",
                "keypoints": list(keypoints),
                "skeleton": COCO_SKELETON,
            }
        ],
    }
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(data))
    return data


def write_coco(root: Path, seed: int = 0) -> dict[str, dict]:
    """COCO 2017 as ``datasets/coco.yaml`` says: ``annotations/person_keypoints_{train,val}2017
    .json`` with ``train2017/`` and ``val2017/`` (``000000xxxxxx.jpg``). Returns
    {"train": JSON, "val": JSON}. (EFT fits: :func:`write_eft` into ``eft_fit/``.)"""
    root = Path(root)
    out = {}
    for k, (split, first) in enumerate((("train", 1000), ("val", 785))):
        out[split] = write_coco_keypoints(
            root / "annotations" / f"person_keypoints_{split}2017.json",
            root / f"{split}2017",
            first_image_id=first,
            first_annotation_id=100 * first,
            size=(240 + 8 * k, 320),
            seed=seed + 10 * k,
        )
    return out


def write_crowdpose(root: Path, seed: int = 0) -> dict[str, dict]:
    """CrowdPose as ``datasets/crowdpose.yaml`` says: ``json/crowdpose_{trainval,test}.json``
    (14 joints, ``crowdIndex`` per image) and one ``images/`` folder. Returns {"trainval": JSON,
    "test": JSON}."""
    root = Path(root)
    out = {}
    for k, (split, first) in enumerate((("trainval", 100000), ("test", 106848))):
        out[split] = write_coco_keypoints(
            root / "json" / f"crowdpose_{split}.json",
            root / "images",
            keypoints=CROWDPOSE_KEYPOINTS,
            people=(3, 2),
            first_image_id=first,
            first_annotation_id=first + 17000,
            file_name="{id}.jpg",
            size=(250, 320),
            crowd=False,
            image_fields={"crowdIndex": 0.33},
            seed=seed + 10 * k,
        )
    return out


def write_ochuman(root: Path, seed: int = 0) -> dict[str, dict]:
    """OCHuman as ``datasets/ochuman.yaml`` says: ``ochuman_coco_format_{val,test}_range_0.00_
    1.00.json`` (COCO-17) beside ``images/`` (``000001.jpg`` ...). Returns {"val": JSON,
    "test": JSON}."""
    root = Path(root)
    out = {}
    for k, (split, first) in enumerate((("val", 1), ("test", 3))):
        out[split] = write_coco_keypoints(
            root / f"ochuman_coco_format_{split}_range_0.00_1.00.json",
            root / "images",
            people=(3, 2),
            first_image_id=first,
            first_annotation_id=10 * first,
            file_name="{id:06d}.jpg",
            size=(256, 224),
            crowd=False,
            seed=seed + 10 * k,
        )
    return out


# -- EFT fits -------------------------------------------------------------------------------------

#: Where SPIN's preprocessing puts each dataset joint among its 24 label joints (SPIN's
#: datasets/preprocess/{mpii,coco,lsp_dataset}.py): ``gt_keypoint_2d[25 + SPIN_FROM_X[k]]`` is
#: joint k of dataset X.
SPIN_FROM_MPII = [0, 1, 2, 3, 4, 5, 14, 15, 12, 13, 6, 7, 8, 9, 10, 11]
SPIN_FROM_COCO = [19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0]
SPIN_FROM_LSP = list(range(14))


def spin49(
    joints: np.ndarray, spin_index: list[int], labelled: np.ndarray | None = None
) -> list[list[float]]:
    """(49, 3) ``gt_keypoint_2d`` with a dataset's (J, 2) joints (those ``labelled``, default
    all) in SPIN's label slots (25 + i), confidence 1; the OpenPose slots 0-24 empty."""
    joints = np.asarray(joints, np.float64)
    labelled = np.ones(len(joints), bool) if labelled is None else np.asarray(labelled, bool)
    rows = [25 + spin_index[k] for k in np.flatnonzero(labelled)]
    kp = np.zeros((49, 3))
    kp[rows, :2] = joints[labelled]
    kp[rows, 2] = 1.0
    return kp.tolist()


def eft_pose(seed: int) -> np.ndarray:
    """(72,) axis-angle SMPL pose of the fit :func:`eft_fit` makes with ``seed``."""
    return np.random.default_rng(seed).normal(0, 0.3, (24, 3)).reshape(72)


def eft_fit(image: str, keypoints: list, seed: int, annot_id: int | None = None) -> dict[str, Any]:
    """One fit of EFT's JSON: ``parm_pose`` (24, 3, 3) rotation matrices of :func:`eft_pose`
    (seed), ``parm_shape``, ``parm_cam``, the box, ``gt_keypoint_2d`` (49, 3), ``imageName``
    and, for COCO, ``annotId``."""
    rotvec = torch.from_numpy(eft_pose(seed).reshape(24, 3))
    entry = {
        "parm_pose": roma.rotvec_to_rotmat(rotvec).tolist(),
        "parm_shape": [0.5] * 10,
        "parm_cam": [0.9, 0.0, 0.1],
        "bbox_scale": 1.2,
        "bbox_center": [100.0, 100.0],
        "gt_keypoint_2d": keypoints,
        "joint_validity_openpose18": [1] * 18,
        "smpltype": "smpl",
        "imageName": image,
    }
    if annot_id is not None:
        entry["annotId"] = annot_id
    return entry


def write_eft(path: Path, fits: list[dict]) -> dict[str, Any]:
    """EFT's released JSON ``{"ver": "01", "data": [fit, ...]}``; returns the document."""
    data = {"ver": "01", "data": fits}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data))
    return data


# -- MPII -----------------------------------------------------------------------------------------

#: An empty MATLAB value (what savemat writes for [] and loadmat reads back as an empty array).
EMPTY = np.zeros((0, 0))
MPII_MAT = "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat"


def mpii_struct_array(rows: list[dict]) -> np.ndarray:
    """A 1 x n MATLAB struct array (savemat writes a structured object array as one)."""
    array = np.empty((1, len(rows)), dtype=[(key, object) for key in rows[0]])
    for i, row in enumerate(rows):
        for key, value in row.items():
            array[0, i][key] = value
    return array


def mpii_annorect(points: list[tuple] | None, objpos=(EMPTY, EMPTY), scale=EMPTY) -> dict:
    """One person of ``RELEASE.annolist(i).annorect``: points (id, x, y, is_visible) or None
    (no ``annopoints``), ``objpos`` and ``scale``; the head box x1..y2 left empty."""
    annopoints = EMPTY
    if points is not None:
        rows = [{"x": x, "y": y, "id": pid, "is_visible": vis} for pid, x, y, vis in points]
        annopoints = {"point": mpii_struct_array(rows)}
    return {
        "x1": EMPTY, "y1": EMPTY, "x2": EMPTY, "y2": EMPTY,
        "annopoints": annopoints,
        "scale": scale,
        "objpos": {"x": objpos[0], "y": objpos[1]},
    }  # fmt: skip


def write_mpii_mat(
    path: Path, images: list[tuple[str, list[dict]]], img_train: list[int]
) -> dict[str, Any]:
    """``RELEASE`` as mpii_human_pose_v1_u12_1.mat holds it: ``annolist(i).image.name`` and
    ``.annorect(j)`` (:func:`mpii_annorect`), ``img_train``, ``version``, ``single_person``,
    ``act``, ``video_list``. Returns the ``RELEASE`` struct as saved."""
    annolist = mpii_struct_array(
        [
            {
                "image": {"name": name},
                "annorect": mpii_struct_array(rects) if rects else EMPTY,
                "frame_sec": EMPTY,
                "vididx": EMPTY,
            }
            for name, rects in images
        ]
    )
    single_person = np.empty((len(images), 1), dtype=object)
    single_person[:] = [[EMPTY]] * len(images)
    act = mpii_struct_array([{"cat_name": EMPTY, "act_name": EMPTY, "act_id": -1}] * len(images))
    release = {
        "annolist": annolist,
        "img_train": np.array([img_train], np.uint8),
        "version": "12",
        "single_person": single_person,
        "act": act,
        "video_list": np.array([["vid"]], dtype=object),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"RELEASE": release})
    return release


def mpii_person(rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
    """One MPII person: ``points`` [(id 0-15, x, y, is_visible)] in 1-based pixels, listed in
    no fixed order as the release does, one or two joints left out, ``is_visible`` 1, 0 or None
    (none stored, as for many head points); ``objpos`` (x, y) and ``scale`` (height / 200 px)."""
    bw, bh = 0.25 * width, 0.6 * height
    x0, y0 = rng.uniform(1, width - bw), rng.uniform(1, height - bh)
    xy = np.round(rng.uniform([x0, y0], [x0 + bw, y0 + bh], (16, 2)), 1)
    flags = rng.choice(np.array([1, 1, 1, 0, 2]), 16)  # 2: no is_visible stored
    keep = np.sort(rng.permutation(16)[: 16 - int(rng.integers(1, 3))])
    points = [
        (int(k), float(xy[k, 0]), float(xy[k, 1]), None if flags[k] == 2 else int(flags[k]))
        for k in rng.permutation(keep)
    ]
    objpos = (round(float(x0 + bw / 2), 1), round(float(y0 + bh / 2), 1))
    return {"points": points, "objpos": objpos, "scale": round(float(bh / 200), 4)}


def write_mpii(
    root: Path,
    people: dict[str, list[dict]] | None = None,
    *,
    test_images: Sequence[str] = ("099999999.jpg",),
    size: tuple[int, int] | None = (240, 320),
    seed: int = 0,
) -> dict[str, Any]:
    """MPII as ``datasets/mpii.yaml`` says: ``images/`` and the official ``RELEASE`` .mat
    (:data:`MPII_MAT`).

    ``people``: training image name -> its people as :func:`mpii_person` makes them (a person
    without ``points`` is a rect without ``annopoints``, located by objpos / scale); by default
    three images with 1, 2 (one without points) and 0 people. ``test_images`` are listed with
    ``img_train`` 0 and a rect without points, as the release's test images. Images of ``size``
    are written (None: the caller puts them in ``images/``). Returns {"train": people,
    "test": names}.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    height, width = size or (240, 320)
    if people is None:
        people = {
            "015601864.jpg": [mpii_person(rng, height, width)],
            "015599452.jpg": [
                mpii_person(rng, height, width),
                {"points": [], "objpos": (60.0, 90.0), "scale": 0.5},
            ],
            "005808361.jpg": [],
        }
    images, img_train = [], []
    for name, persons in people.items():
        rects = [
            mpii_annorect(
                [(k, x, y, EMPTY if v is None else v) for k, x, y, v in p["points"]]
                if p["points"]
                else None,
                p["objpos"],
                p["scale"],
            )
            for p in persons
        ]
        images.append((name, rects))
        img_train.append(1)
    for name in test_images:
        images.append((name, [mpii_annorect(None, (100.0, 120.0), 1.1)]))
        img_train.append(0)
    if size is not None:
        for k, (name, _) in enumerate(images):
            write_image(root / "images" / name, height, width, seed + k)
    write_mpii_mat(root / MPII_MAT, images, img_train)
    return {"train": people, "test": list(test_images)}


def mpii_json_entry(
    rng: np.random.Generator, image: str, height: int, width: int
) -> dict[str, Any]:
    """One person of the mmpose / HRNet MPII JSON: ``joints`` (16, 2) 1-based pixels,
    ``joints_vis`` (16,) 1 labelled / 0 not, an unlabelled joint at (-1, -1), ``center``,
    ``scale`` (person height / 200 px)."""
    person = mpii_person(rng, height, width)
    joints = np.full((16, 2), -1.0)
    vis = np.zeros(16, int)
    for k, x, y, _ in person["points"]:
        joints[k] = (x, y)
        vis[k] = 1
    return {
        "joints_vis": vis.tolist(),
        "joints": joints.tolist(),
        "image": image,
        "scale": person["scale"],
        "center": list(person["objpos"]),
    }


def write_mpii_json(
    path: Path,
    images_dir: Path,
    *,
    people: Sequence[int] = (1, 2, 1),
    size: tuple[int, int] = (240, 320),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """mmpose's / HRNet's MPII annotations (``mpii_{train,val}.json``): a list of one entry per
    person (:func:`mpii_json_entry`); image i (``0000000{i}1.jpg``) holds ``people[i]`` people.
    Writes the images into ``images_dir``; returns the entries."""
    rng = np.random.default_rng(seed)
    entries = []
    for i, count in enumerate(people):
        name = f"{i * 10 + 1:09d}.jpg"
        write_image(Path(images_dir) / name, *size, seed + i)
        entries += [mpii_json_entry(rng, name, *size) for _ in range(count)]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(entries))
    return entries


# -- LSP and LSPet --------------------------------------------------------------------------------


def lsp_joints(n: int, rng: np.random.Generator, size: tuple[int, int] = (200, 300)) -> np.ndarray:
    """(n, 14, 3): 1-based x, y inside a ``size`` (height, width) image and a 0/1 flag."""
    height, width = size
    xy = rng.uniform([10, 10], [width - 10, height - 10], size=(n, 14, 2)).round(1)
    flags = rng.integers(0, 2, size=(n, 14, 1))
    return np.concatenate([xy, flags], axis=2)


def write_lsp(
    root: Path,
    n: int = 3,
    *,
    joints: np.ndarray | None = None,
    folder: str = "lsp_dataset_original",
    size: tuple[int, int] = (425, 640),
    seed: int = 0,
) -> np.ndarray:
    """LSP: ``<folder>/joints.mat`` (3 x 14 x N: x, y, flag 1 = OCCLUDED; MATLAB 1-based) and
    ``<folder>/images/im0001.jpg`` ...; ``joints`` (N, 14, 3) default :func:`lsp_joints`.
    Returns the (N, 14, 3) joints."""
    if joints is None:
        joints = lsp_joints(n, np.random.default_rng(seed))
    images = Path(root) / folder / "images"
    for k in range(1, len(joints) + 1):
        write_image(images / f"im{k:04d}.jpg", *size, seed + k)
    scipy.io.savemat(Path(root) / folder / "joints.mat", {"joints": joints.transpose(2, 1, 0)})
    return joints


def write_lspet(
    root: Path,
    n: int = 2,
    *,
    joints: np.ndarray | None = None,
    folder: str = "hr-lspet",
    size: tuple[int, int] = (200, 300),
    seed: int = 1,
) -> np.ndarray:
    """LSPet (hr-lspet, the high-resolution copy): ``<folder>/joints.mat`` (14 x 3 x N: x, y,
    flag 1 = VISIBLE) beside PNG images ``im00001.png`` ...; ``joints`` (N, 14, 3) default
    :func:`lsp_joints`. Returns the (N, 14, 3) joints."""
    if joints is None:
        joints = lsp_joints(n, np.random.default_rng(seed))
    images = Path(root) / folder
    for k in range(1, len(joints) + 1):
        write_image(images / f"im{k:05d}.png", *size, seed + k)
    scipy.io.savemat(images / "joints.mat", {"joints": joints.transpose(1, 2, 0)})
    return joints


# -- SPIN / mmpose npz: Human3.6M and MPI-INF-3DHP -----------------------------------------------


def _rotation(rotvec: Sequence[float]) -> np.ndarray:
    return roma.rotvec_to_rotmat(torch.tensor(rotvec, dtype=torch.float64)).numpy()


def _camera_frame_person(rng: np.random.Generator, x: float, depth: float) -> np.ndarray:
    """(17, 3) camera-frame joints in metres: a standing person around (x, 0, depth)."""
    height = np.linspace(-0.85, 0.85, 17)[rng.permutation(17)]
    return np.stack(
        [
            x + rng.normal(0, 0.2, 17),
            height + rng.normal(0, 0.05, 17),
            depth + rng.normal(0, 0.1, 17),
        ],
        1,
    )


def _project(S: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) -> pixels (..., 2) with focal lengths and centre (2,)."""
    return S[..., :2] / S[..., 2:] * np.ravel(f) + np.ravel(c)


def _spin_rows(
    rng: np.random.Generator,
    imgnames: Sequence[str],
    camera_of: dict[str, dict],
    size: tuple[int, int],
    flags: str,
    outside: Iterable[int] = (),
) -> dict[str, np.ndarray]:
    """npz arrays of one person per name: ``S`` (N, 17, 4) camera frame metres and ``part``
    (N, 17, 3) their projection with the name's camera, both with one flag per joint: 1
    (``flags`` "all", mmpose's Human3.6M) or "inside the image" (``in_frame``, mmpose's
    MPI-INF-3DHP); ``center``, ``scale``. Rows in ``outside`` have both wrists (joints 4 and 7)
    left of the image."""
    height, width = size
    parts, S = [], []
    for row, name in enumerate(imgnames):
        cam = camera_of[name]
        xyz = _camera_frame_person(rng, rng.uniform(-0.3, 0.3), rng.uniform(4.5, 5.5))
        if row in set(outside):
            xyz[[4, 7], 0] = (
                -(np.ravel(cam["c"])[0] + 20.0) / np.ravel(cam["f"])[0] * xyz[[4, 7], 2]
            )
        uv = _project(xyz, cam["f"], cam["c"])
        inside = (uv >= 0).all(1) & (uv[:, 0] < width) & (uv[:, 1] < height)
        flag = inside if flags == "in_frame" else np.ones(17, bool)
        parts.append(np.concatenate([uv, flag[:, None]], 1))
        S.append(np.concatenate([xyz, flag[:, None]], 1))
    part = np.asarray(parts, np.float64)
    lo, hi = part[..., :2].min(1), part[..., :2].max(1)
    return {
        "imgname": np.asarray(imgnames),
        "center": (lo + hi) / 2,
        "scale": (hi - lo).max(1) / 200,
        "part": part,
        "S": np.asarray(S, np.float64),
    }


#: Human3.6M's four cameras (ids as in mmpose's cameras.pkl).
H36M_CAMERAS = ("54138969", "55011271", "58860488", "60457274")
#: (subject, action, camera id, frame) of the default Human3.6M images.
H36M_FRAMES = (
    ("S1", "Directions_1", "54138969", 1),
    ("S1", "Directions_1", "54138969", 6),
    ("S5", "SittingDown", "54138969", 2061),
    ("S6", "Eating_2", "58860488", 11),
    ("S7", "Greeting", "55011271", 396),
    ("S8", "WalkDog_1", "60457274", 26),
)


def h36m_imgname(subject: str, action: str, camera: str, frame: int) -> str:
    """mmpose's Human3.6M image path: ``S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg``."""
    stem = f"{subject}_{action}.{camera}"
    return f"{subject}/{stem}/{stem}_{frame:06d}.jpg"


def write_h36m(
    root: Path,
    frames: Sequence[tuple[str, str, str, int]] = H36M_FRAMES,
    *,
    size: tuple[int, int] = (250, 250),
    seed: int = 0,
) -> dict[str, Any]:
    """Human3.6M as mmpose's preprocess_h36m.py writes it (``datasets/h36m.yaml``):
    ``images/<S>/<S>_<Action>.<camera>/<...>_<frame:06d>.jpg``, ``annotation_body3d/cameras.pkl``
    (R, T, f, c, k, p, w, h, name, id keyed by (subject, camera id), pickle protocol 3 as in
    mmpose's file) and ``annotation_body3d/fps50/h36m_train.npz`` (imgname, center, scale, part
    17 x 3 flag 1, S 17 x 4 camera-frame metres; Human3.6M-17 order). Returns {"npz": arrays,
    "cameras": the pickled dict}."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    height, width = size
    cameras = {}
    for subject in sorted({f[0] for f in frames}):
        for k, cam in enumerate(H36M_CAMERAS):
            cameras[(subject, cam)] = {
                "R": _rotation([0.1 * k, 0.3 * k - 0.5, 0.05]),
                "T": rng.normal(0, 2, (3, 1)),
                "c": np.array([[width / 2 + rng.normal(0, 3)], [height / 2 + rng.normal(0, 3)]]),
                "f": np.array([[290.0 + k], [289.0 + k]]),
                "k": rng.normal(0, 0.1, (3, 1)),
                "p": rng.normal(0, 0.001, (2, 1)),
                "w": width,
                "h": height,
                "name": f"camera{k + 1}",
                "id": cam,
            }
    names = [h36m_imgname(*f) for f in frames]
    camera_of = {name: cameras[(f[0], f[2])] for name, f in zip(names, frames, strict=True)}
    arrays = _spin_rows(rng, names, camera_of, size, "all")
    for k, name in enumerate(names):
        write_image(root / "images" / name, height, width, seed + k)
    folder = root / "annotation_body3d"
    (folder / "fps50").mkdir(parents=True, exist_ok=True)
    np.savez(folder / "fps50" / "h36m_train.npz", **arrays)
    with (folder / "cameras.pkl").open("wb") as fh:
        pickle.dump(cameras, fh, protocol=3)
    return {"npz": arrays, "cameras": cameras}


MPI_TRAIN_IMAGES = (
    "S1_Seq1_Cam0_000001.jpg",
    "S1_Seq1_Cam0_000011.jpg",
    "S4_Seq2_Cam0_001033.jpg",
    "S6_Seq1_Cam4_000101.jpg",
    "S7_Seq2_Cam7_000421.jpg",
    "S8_Seq1_Cam8_002165.jpg",
)
MPI_TEST_IMAGES = ("TS1_002001.jpg", "TS2_001850.jpg")


def write_mpi_inf_3dhp(
    root: Path,
    train: Sequence[str] = MPI_TRAIN_IMAGES,
    test: Sequence[str] = MPI_TEST_IMAGES,
    *,
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
) -> dict[str, dict]:
    """MPI-INF-3DHP as mmpose's preprocess_mpi_inf_3dhp.py writes it (``datasets/mpi_inf_3dhp
    .yaml``): ``images/S<s>_Seq<q>_Cam<c>_<frame:06d>.jpg`` and ``images/TS<s>_<frame:06d>.jpg``,
    ``annotations/mpi_inf_3dhp_train.npz`` and ``mpi_inf_3dhp_test_valid.npz`` (imgname, center,
    scale, part 17 x 3 with flag "inside the image", S 17 x 4 camera-frame metres; the 17 test
    joints), ``annotations/cameras_train.pkl`` (R, T, c, f, w, h, name keyed by
    ``S<s>_Seq<q>_Cam<c>``) and ``cameras_test.pkl`` (c, f, w, h, name keyed by ``TS<s>``).
    The last test row has both wrists left of the image (flag 0). Returns {"train": {"npz",
    "cameras"}, "test": {...}}."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    height, width = size
    out = {}
    for split, names, npz in (
        ("train", train, "mpi_inf_3dhp_train.npz"),
        ("test", test, "mpi_inf_3dhp_test_valid.npz"),
    ):
        keys = {name: name.rsplit("_", 1)[0] for name in names}
        cameras = {}
        for k, key in enumerate(sorted(set(keys.values()))):
            cam = {
                "c": np.array([[width / 2 + k], [height / 2 - k]]),
                "f": np.array([[200.0 + 3 * k], [199.0 + 3 * k]]),
                "w": width,
                "h": height,
                "name": f"{split}_cam_{k}",
            }
            if split == "train":
                cam = {"R": _rotation([0.0, 0.2 * k, 3.1]), "T": rng.normal(0, 2, (3, 1)), **cam}
            cameras[key] = cam
        camera_of = {name: cameras[key] for name, key in keys.items()}
        outside = [len(names) - 1] if split == "test" else []
        arrays = _spin_rows(rng, names, camera_of, size, "in_frame", outside)
        for k, name in enumerate(names):
            write_image(root / "images" / name, height, width, seed + k)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        np.savez(root / "annotations" / npz, **arrays)
        with (root / "annotations" / f"cameras_{split}.pkl").open("wb") as fh:
            pickle.dump(cameras, fh, protocol=3)
        out[split] = {"npz": arrays, "cameras": cameras}
    return out


# -- MuCo-3DHP ------------------------------------------------------------------------------------

MUCO_SIZE = (120, 160)  # height, width
MUCO_F, MUCO_C = (150.0, 155.0), (80.0, 60.0)


def muco_person(rng: np.random.Generator, x: float) -> dict[str, Any]:
    """One annotation: 21 joints around (x, 0, 4 m) in mm, projected; joints 3 and 17 hidden."""
    cam = np.array([x, 0.0, 4000.0]) + rng.normal(scale=300.0, size=(21, 3))
    img = cam[:, :2] / cam[:, 2:] * MUCO_F + MUCO_C
    vis = np.ones(21, int)
    vis[[3, 17]] = 0
    lo, hi = img.min(0), img.max(0)
    return {
        "keypoints_img": img.tolist(),
        "keypoints_cam": cam.tolist(),
        "keypoints_vis": vis.tolist(),
        "bbox": [*lo.tolist(), *(hi - lo).tolist()],
    }


def write_muco(root: Path, n_images: int = 3) -> dict[str, Any]:
    """MuCo-3DHP as 3DMPPE distributes it (``datasets/muco_3dhp.yaml``): ``MuCo-3DHP.json``
    (images with ``f``, ``c``; annotations with ``keypoints_img`` (21, 2) px, ``keypoints_cam``
    (21, 3) mm, ``keypoints_vis``, ``bbox``) beside ``augmented_set/<id:06d>.jpg``. Image i holds
    2, 1, 0 people (cycling); the first person's left toe (joint 20) lies left of the image.
    Returns the JSON document."""
    root = Path(root)
    rng = np.random.default_rng(0)
    height, width = MUCO_SIZE
    images, annotations = [], []
    for i in range(n_images):
        name = f"augmented_set/{i:06d}.jpg"
        write_image(root / name, height, width, i)
        images.append(
            {
                "id": 10 + i,
                "file_name": name,
                "width": width,
                "height": height,
                "f": list(MUCO_F),
                "c": list(MUCO_C),
            }
        )
        for x in [-600.0, 700.0][: [2, 1, 0][i % 3]]:
            annotations.append({"id": len(annotations), "image_id": 10 + i, **muco_person(rng, x)})
    annotations[0]["keypoints_img"][20] = [-30.0, 50.0]  # left toe outside the image
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}],
    }
    (root / "MuCo-3DHP.json").write_text(json.dumps(data))
    return data


# -- 3DPW -----------------------------------------------------------------------------------------

PW3D_SIZE = (256, 192)  # height, width
PW3D_INTRINSICS = np.array([[220.0, 0.0, 96.0], [0.0, 225.0, 128.0], [0.0, 0.0, 1.0]])
PW3D_POSES = 3  # distinct poses per person; frame f uses pose f % PW3D_POSES


class Python2Pickler(pickle._Pickler):
    """Pickles the way Python 2 did (protocol 2): byte strings and ASCII text as ``str``
    (BINSTRING opcodes, no ``_codecs.encode`` call), numpy arrays through
    ``numpy.core.multiarray._reconstruct`` with their raw data as such a ``str``, standard
    modules by their Python 2 names. Python 3 reads such files only with ``encoding='latin1'``
    (the array data are not ASCII), as 3DPW's readers do. Written here because Python 3's own
    protocol-2 pickles store bytes as ``_codecs.encode`` calls, which no Python 2 file holds,
    and no maintained library writes Python 2's form."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file: io.BufferedWriter) -> None:
        super().__init__(file, protocol=2, fix_imports=True)

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("ascii")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def save_text(self, obj: str) -> None:
        if obj.isascii():
            self.save_py2_str(obj)
        else:  # Python 2's unicode
            pickle._Pickler.save_str(self, obj)

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if getattr(obj, "__module__", None) in ("numpy._core.multiarray", "numpy.core.multiarray"):
            self.write(pickle.GLOBAL + f"numpy.core.multiarray\n{name or obj.__name__}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_text


def write_py2_pickle(path: Path, data: Any) -> Any:
    """``data`` pickled as Python 2 wrote it (:class:`Python2Pickler`); returns ``data``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("wb") as fh:
        Python2Pickler(fh).dump(data)
    return data


def write_pw3d_sequence(
    path: Path,
    name: str,
    n_frames: int,
    body: Any,
    seed: int,
    valid: Sequence[Iterable[int]] | None = None,
) -> dict[str, Any]:
    """A 3DPW sequence pickle (Python 2 style): world-frame SMPL fits of 2 people (male,
    female) seen by a moving camera, their joints posed with ``body`` (a callable
    ``(global_orient (N, 3, 3), body_pose (N, 23, 3, 3), betas (N, 10)) -> out.joints``).

    Keys as released: sequence, genders, poses P x (F, 72), trans, betas P x (16,),
    jointPositions P x (F, 72) metres, cam_poses (F, 4, 4) world to camera, cam_intrinsics,
    campose_valid P x (F,) (``valid``: per person the frames set, default all), poses2d
    P x (F, 3, 18) (not all zero: every person-frame counts in the official evaluation),
    img_frame_ids, poses_60Hz, trans_60Hz. Returns the pickled dict.
    """
    g = torch.Generator().manual_seed(seed)
    poses, joints, betas = [], [], []
    for offset in (-0.5, 0.5):
        rotvec = torch.randn(PW3D_POSES, 24, 3, generator=g, dtype=torch.float64) * 0.2
        rotvec[:, 0] = torch.tensor([np.pi / 2, 0.3, 0.0], dtype=torch.float64)  # z-up world
        beta = torch.randn(16, generator=g, dtype=torch.float64)
        mats = roma.rotvec_to_rotmat(rotvec).float()
        with torch.no_grad():
            out = body(mats[:, 0], mats[:, 1:], beta[None, :10].float().expand(PW3D_POSES, 10))
        trans = np.array([offset, 0.1 * seed, 0.9])
        frames = np.arange(n_frames) % PW3D_POSES
        poses.append(rotvec.reshape(PW3D_POSES, 72).numpy()[frames])
        joints.append((out.joints[:, :24].double().numpy() + trans).reshape(PW3D_POSES, 72)[frames])
        betas.append(beta.numpy())
    cams = np.zeros((PW3D_POSES, 4, 4))
    for i in range(PW3D_POSES):
        # World z-up -> camera y-down, looking along world y.
        cams[i, :3, :3] = _rotation([np.pi / 2 + 0.05 * i, 0.1 * i, 0.0])
        cams[i, :3, 3] = [0.0, 0.9, 4.0 + 0.2 * i]
        cams[i, 3, 3] = 1.0
    if valid is None:
        campose_valid = [np.ones(n_frames, bool), np.ones(n_frames, bool)]
    else:
        campose_valid = [np.isin(np.arange(n_frames), list(frames)) for frames in valid]
    data = {
        "sequence": name,
        "genders": ["m", "f"],
        "poses": poses,
        "trans": [np.zeros((n_frames, 3))] * 2,
        "betas": betas,
        "jointPositions": joints,
        "cam_poses": cams[np.arange(n_frames) % PW3D_POSES],
        "cam_intrinsics": PW3D_INTRINSICS,
        "campose_valid": campose_valid,
        "poses2d": [np.full((n_frames, 3, 18), 0.5) for _ in range(2)],
        "img_frame_ids": np.arange(n_frames) * 2,
        "poses_60Hz": [np.zeros((2 * n_frames, 72))] * 2,
        "trans_60Hz": [np.zeros((2 * n_frames, 3))] * 2,
    }
    write_py2_pickle(path, data)
    return data


def write_pw3d_image(root: Path, name: str, frame: int, size: tuple[int, int] = PW3D_SIZE) -> Path:
    """``imageFiles/<sequence>/image_<frame:05d>.jpg``."""
    return write_image(root / "imageFiles" / name / f"image_{frame:05d}.jpg", *size, frame)


def write_pw3d(
    root: Path,
    body: Any,
    layout: dict[str, tuple[str, int]],
    *,
    valid: dict[str, Sequence[Iterable[int]]] | None = None,
    images: dict[str, Iterable[int]] | None = None,
) -> dict[str, dict]:
    """3DPW as ``datasets/3dpw.yaml`` says: ``sequenceFiles/<split>/<sequence>.pkl`` for each
    sequence of ``layout`` ({name: (split, frames)}; :func:`write_pw3d_sequence`, ``valid``
    per sequence) and ``imageFiles/<sequence>/image_%05d.jpg`` for the frames of ``images``
    (default: every frame where someone is valid). Returns {sequence: pickled dict}."""
    root = Path(root)
    out = {}
    for seed, (name, (split, n_frames)) in enumerate(layout.items()):
        path = root / "sequenceFiles" / split / f"{name}.pkl"
        seq_valid = None if valid is None else valid.get(name)
        out[name] = write_pw3d_sequence(path, name, n_frames, body, seed, seq_valid)
        if images is None:
            frames = np.flatnonzero(np.any(out[name]["campose_valid"], axis=0)).tolist()
        else:
            frames = list(images.get(name, ()))
        for frame in frames:
            write_pw3d_image(root, name, frame)
    return out


# -- CMU Panoptic ---------------------------------------------------------------------------------

PANOPTIC_SIZE = (180, 320)  # height, width: HD frames (1080 x 1920) at a sixth


def panoptic_camera(name: str, yaw: float) -> dict[str, Any]:
    """An HD camera 3 m from the origin looking at it (Panoptic: y down, centimetres)."""
    height, width = PANOPTIC_SIZE
    return {
        "name": name,
        "type": "hd",
        "resolution": [width, height],
        "panel": 0,
        "node": int(name.split("_")[1]),
        "K": [[260.0, 0.0, 158.0], [0.0, 258.0, 91.0], [0.0, 0.0, 1.0]],
        "distCoef": [-0.21, 0.15, 0.001, -0.0008, -0.03],
        "R": _rotation([0.0, yaw, 0.0]).tolist(),
        "t": [[0.0], [-100.0], [300.0]],
    }


def panoptic_body(rng: np.random.Generator, center: np.ndarray, body_id: int) -> dict:
    """One body of a body3DScene file: ``joints19`` 19 x (x, y, z cm, confidence) flat."""
    joints = np.concatenate(
        [center + rng.normal(scale=25.0, size=(19, 3)), rng.uniform(0.3, 1, (19, 1))], 1
    )
    return {"id": body_id, "joints19": joints.reshape(-1).tolist()}


def write_panoptic_sequence(
    root: Path,
    seq: str,
    seed: int,
    frames: Iterable[int] = range(4),
    cameras: Sequence[str] = ("00_16", "00_30"),
) -> dict[str, Any]:
    """One sequence as the Panoptic toolbox leaves it: ``<seq>/calibration_<seq>.json`` (the
    HD ``cameras`` and a VGA one), ``<seq>/hdPose3d_stage1_coco19/body3DScene_<frame:08d>.json``
    and ``<seq>/hdImgs/<cam>/<cam>_<frame:08d>.jpg``. Each frame holds 4 bodies: 0 and 1 in
    front of the cameras (body 0's left knee unreconstructed, confidence -1), 2 behind both
    cameras, 3 far beside them. Returns {"calibration": JSON, "bodies": {frame: bodies}}."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / seq
    yaws = {"00_16": 0.3, "00_30": -0.4}
    hd = [panoptic_camera(cam, yaws.get(cam, 0.1 * k)) for k, cam in enumerate(cameras)]
    calibration = {
        "calibDataSource": seq,
        "cameras": [hd[0], {**panoptic_camera("01_01", 0.0), "type": "vga"}, *hd[1:]],
    }
    folder.mkdir(parents=True)
    (folder / f"calibration_{seq}.json").write_text(json.dumps(calibration))
    (folder / "hdPose3d_stage1_coco19").mkdir()
    bodies = {}
    for frame in frames:
        people = [
            panoptic_body(rng, np.array([-40.0, 100.0, 0.0]), 0),
            panoptic_body(rng, np.array([50.0, 110.0, 20.0]), 1),
        ]
        people.append(panoptic_body(rng, np.array([0.0, 100.0, -1000.0]), 2))  # behind both
        people.append(panoptic_body(rng, np.array([3000.0, 100.0, 0.0]), 3))  # beside / behind
        people[0]["joints19"][4 * 7 + 3] = -1.0  # left knee not reconstructed
        bodies[frame] = people
        scene = {
            "version": 0.7,
            "univTime": 1000.0 + frame,
            "fpsType": "hd_29_97",
            "bodies": people,
        }
        (folder / "hdPose3d_stage1_coco19" / f"body3DScene_{frame:08d}.json").write_text(
            json.dumps(scene)
        )
        for cam in cameras:
            write_image(folder / "hdImgs" / cam / f"{cam}_{frame:08d}.jpg", *PANOPTIC_SIZE, frame)
    return {"calibration": calibration, "bodies": bodies}


def write_panoptic(
    root: Path, frames: dict[str, Iterable[int]], cameras: Sequence[str] = ("00_16", "00_30")
) -> dict[str, dict]:
    """CMU Panoptic as ``datasets/panoptic.yaml`` says: one folder per sequence of ``frames``
    ({sequence: frame numbers}; :func:`write_panoptic_sequence`). Returns {sequence: data}."""
    return {
        seq: write_panoptic_sequence(root, seq, k, seq_frames, cameras)
        for k, (seq, seq_frames) in enumerate(frames.items())
    }
