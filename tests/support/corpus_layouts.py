"""Corpus fixtures laid out exactly as the shipped cards of ``datasets/`` name their files,
under ``$INSTANCEHMR_DATA/data/raw/<corpus>``: copies of the real samples where they exist (COCO,
CrowdPose, Human3.6M, MPI-INF-3DHP, MPII's images and joints), files written in the original
layouts (:mod:`corpus_files`) for the rest and, without the real samples, for those too.

``LAYOUTS[card stem](lay)`` lays out one card's corpus and returns the cards to prepare with what
each must give (:class:`Corpus`: counts per split, labels where the source file puts them). The
prepare test (``tests/integration/test_prepare_cli.py``) and the training test on the real mix
use them.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from corpus_files import (
    PW3D_INTRINSICS,
    SPIN_FROM_COCO,
    SPIN_FROM_LSP,
    SPIN_FROM_MPII,
    eft_fit,
    eft_pose,
    lsp_joints,
    spin49,
    write_coco,
    write_crowdpose,
    write_eft,
    write_h36m,
    write_lsp,
    write_lspet,
    write_mpi_inf_3dhp,
    write_mpii,
    write_mpii_json,
    write_muco,
    write_ochuman,
    write_panoptic,
    write_pw3d,
)
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.data.schema import (
    VIS_OCCLUDED,
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
)

REPO = Path(__file__).resolve().parents[2]
CARDS = sorted((REPO / "datasets").glob("*.yaml"))


@dataclass
class Label:
    """What the source file says about one person of one image (a joint by canonical name)."""

    sample_id: str
    person: int = 0
    joint: str | None = None
    xy: Sequence[float] | None = None
    vis: int | None = None
    xyz: Sequence[float] | None = None
    people: int | None = None  # persons of the image
    smpl_source: str | None = None
    smpl_pose: np.ndarray | None = None
    gender: str | None = None
    intrinsics: np.ndarray | None = None


@dataclass
class Corpus:
    """A card to prepare and what it must give."""

    card: Path
    name: str
    source: str  # "real samples" or "written"
    splits: dict[str, tuple[int, int]]  # split -> (images, persons)
    labels: list[Label] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # sample ids that must not be there
    #: sample id -> person -> smpl_source; every other person of the corpus has none
    smpl: dict[str, list[str]] | None = None


@dataclass
class Lay:
    """Where fixtures go: ``data`` is $INSTANCEHMR_DATA, ``cards`` holds variant cards."""

    data: Path
    cards: Path
    body: object
    real: bool

    def root(self, corpus: str) -> Path:
        return self.data / "data" / "raw" / corpus

    def variant(self, stem: str, **fields) -> Path:
        """A copy of datasets/<stem>.yaml with ``fields`` replaced (its name included)."""
        raw = yaml.safe_load((REPO / "datasets" / f"{stem}.yaml").read_text())
        raw.update(fields)
        path = self.cards / f"{raw['name']}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path


def shipped(stem: str) -> Path:
    return REPO / "datasets" / f"{stem}.yaml"


def copy(source: Path, target: Path) -> None:
    """A writable copy of a read-only real sample (a file or a folder)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, copy_function=shutil.copyfile)
    else:
        shutil.copyfile(source, target)


# -- COCO-style JSON: COCO, CrowdPose, OCHuman -------------------------------------------------

COCO_CODES = {0: VIS_UNLABELLED, 1: VIS_OCCLUDED, 2: VIS_VISIBLE}
LABELLED_CODES = {0: VIS_UNLABELLED, 1: VIS_VISIBLE, 2: VIS_VISIBLE}
#: File keypoint names that are not canonical names (CrowdPose's head and neck).
CANONICAL_NAME = {"head": "head_top", "neck": "upper_neck"}


def people_of(data: dict) -> dict[int, list[dict]]:
    """image id -> its non-crowd annotations in file order (the record's people)."""
    out: dict[int, list[dict]] = {image["id"]: [] for image in data["images"]}
    for ann in data["annotations"]:
        if not ann.get("iscrowd"):
            out[ann["image_id"]].append(ann)
    return out


def coco_counts(data: dict) -> tuple[int, int]:
    return len(data["images"]), sum(map(len, people_of(data).values()))


def coco_labels(corpus: str, split: str, data: dict, codes: dict[int, int]) -> list[Label]:
    """Per image: its number of people and two labelled joints of its first labelled person."""
    names = [CANONICAL_NAME.get(n, n) for n in data["categories"][0]["keypoints"]]
    labels = []
    for image_id, anns in people_of(data).items():
        sample = f"{corpus}/{split}/{image_id}"
        labels.append(Label(sample, people=len(anns)))
        for k, ann in enumerate(anns):
            kp = np.asarray(ann["keypoints"], float).reshape(-1, 3)
            joints = np.flatnonzero(kp[:, 2] > 0)
            for j in joints[[0, -1]] if len(joints) else []:
                labels.append(Label(sample, k, names[j], kp[j, :2], codes[int(kp[j, 2])]))
            if len(joints):
                break
    return labels


def lay_coco(lay: Lay) -> list[Corpus]:
    root = lay.root("coco")
    if lay.real:
        data = json.loads((REAL / "coco" / "test_coco.json").read_text())
        for split in ("train", "val"):
            copy(
                REAL / "coco" / "test_coco.json",
                root / f"annotations/person_keypoints_{split}2017.json",
            )
            for image in data["images"]:
                copy(REAL / "coco" / image["file_name"], root / f"{split}2017" / image["file_name"])
        written = {"train": data, "val": data}
    else:
        written = write_coco(root)
    # EFT fits of train people: one found by its annotation id (COCO-2014 file name, no
    # keypoints), one by its keypoints (no id), in another image.
    people = people_of(written["train"])
    by_id_image = next(i for i, anns in people.items() if anns)
    by_id = people[by_id_image][0]
    by_kp_image, k = next(
        (i, k)
        for i, anns in people.items()
        if i != by_id_image
        for k, a in enumerate(anns)
        if a["num_keypoints"] >= 6
    )
    kp = np.asarray(people[by_kp_image][k]["keypoints"], float).reshape(17, 3)
    write_eft(
        root / "eft_fit" / "COCO2014-All-ver01.json",
        [
            eft_fit(f"COCO_train2014_{by_id_image:012d}.jpg", np.zeros((49, 3)).tolist(), 10, by_id["id"]),
            eft_fit(f"COCO_train2014_{by_kp_image:012d}.jpg", spin49(kp[:, :2], SPIN_FROM_COCO, kp[:, 2] > 0), 11),
        ],
    )  # fmt: skip
    eft = [
        Label(f"coco/train/{by_id_image}", 0, smpl_source="eft", smpl_pose=eft_pose(10)),
        Label(f"coco/train/{by_kp_image}", k, smpl_source="eft", smpl_pose=eft_pose(11)),
    ]
    return [
        Corpus(
            shipped("coco"),
            "coco",
            "real samples" if lay.real else "written",
            {split: coco_counts(data) for split, data in written.items()},
            [
                *(lb for s, d in written.items() for lb in coco_labels("coco", s, d, COCO_CODES)),
                *eft,
            ],
            smpl={lb.sample_id: {lb.person: "eft"} for lb in eft},
        )
    ]


def lay_crowdpose(lay: Lay) -> list[Corpus]:
    root = lay.root("crowdpose")
    if lay.real:
        data = json.loads((REAL / "crowdpose" / "test_crowdpose.json").read_text())
        for name in ("crowdpose_trainval.json", "crowdpose_test.json"):
            copy(REAL / "crowdpose" / "test_crowdpose.json", root / "json" / name)
        for image in data["images"]:
            copy(REAL / "crowdpose" / image["file_name"], root / "images" / image["file_name"])
        written = {"trainval": data, "test": data}
    else:
        written = write_crowdpose(root)
    splits = {"train": written["trainval"], "test": written["test"]}
    return [
        Corpus(
            shipped("crowdpose"),
            "crowdpose",
            "real samples" if lay.real else "written",
            {split: coco_counts(data) for split, data in splits.items()},
            [
                lb
                for s, d in splits.items()
                for lb in coco_labels("crowdpose", s, d, LABELLED_CODES)
            ],
        )
    ]


def lay_ochuman(lay: Lay) -> list[Corpus]:
    written = write_ochuman(lay.root("ochuman"))
    return [
        Corpus(
            shipped("ochuman"),
            "ochuman",
            "written",
            {split: coco_counts(data) for split, data in written.items()},
            [lb for s, d in written.items() for lb in coco_labels("ochuman", s, d, LABELLED_CODES)],
        )
    ]


# -- SPIN / mmpose npz: Human3.6M, MPI-INF-3DHP --------------------------------------------------

H36M17 = tuple(
    f"h36m_{n}"
    for n in (
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
    )
)  # fmt: skip
#: MPI-INF-3DHP's 17 test joints: Human3.6M's joints in another order.
MPI17 = tuple(
    f"h36m_{n}"
    for n in (
        "head_top", "thorax", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "pelvis", "spine", "neck_nose",
    )
)  # fmt: skip


def spin_labels(
    corpus: str, split: str, arrays: dict, rows: list[int], names: Sequence[str], K: Callable
) -> list[Label]:
    """Labels of the kept npz rows (one person per image): part -> 2-D (flag 0 with mmpose's
    in-frame flags: out of frame), S -> 3-D, the image's camera -> intrinsics."""
    labels = []
    for row in rows:
        imgname = str(arrays["imgname"][row])
        sample = f"{corpus}/{split}/{imgname}"
        labels.append(Label(sample, people=1, intrinsics=K(imgname)))
        joints = sorted({0, 4, 7, 14})
        for j in joints:
            part, S = arrays["part"][row, j], arrays["S"][row, j]
            vis = VIS_VISIBLE if part[2] > 0 else VIS_OUT_OF_FRAME
            labels.append(Label(sample, 0, names[j], part[:2], vis, S[:3]))
    return labels


def intrinsics(cameras: dict, key: Callable[[str], object]) -> Callable[[str], np.ndarray]:
    def K(imgname: str) -> np.ndarray:
        cam = cameras[key(imgname)]
        (fx, fy), (cx, cy) = np.ravel(cam["f"]), np.ravel(cam["c"])
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])

    return K


def lay_h36m(lay: Lay) -> list[Corpus]:
    root = lay.root("h36m")
    if lay.real:
        copy(
            REAL / "h36m" / "test_h36m_body3d.npz", root / "annotation_body3d/fps50/h36m_train.npz"
        )
        copy(REAL / "h36m" / "cameras.pkl", root / "annotation_body3d" / "cameras.pkl")
        for subject in REAL.joinpath("h36m").glob("S*"):
            copy(subject, root / "images" / subject.name)
        with np.load(REAL / "h36m" / "test_h36m_body3d.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        cameras = load_pickle(REAL / "h36m" / "cameras.pkl")
    else:
        written = write_h36m(root)
        arrays, cameras = written["npz"], written["cameras"]
    K = intrinsics(cameras, lambda name: tuple(re.match(r"^(S\d+)/[^/]+\.(\d+)/", name).groups()))
    n = len(arrays["imgname"])
    assert n == (4 if lay.real else 6)  # the real sample: 4 frames -> 4 images, 4 people
    kept = list(range(0, n, 5))  # the shipped card keeps one frame in five
    source = "real samples" if lay.real else "written"
    every = lay.variant("h36m", name="h36m_every_frame", keep_every=1)
    return [
        Corpus(shipped("h36m"), "h36m", source, {"train": (len(kept), len(kept))},
               spin_labels("h36m", "train", arrays, kept, H36M17, K)),
        Corpus(every, "h36m_every_frame", source, {"train": (n, n)},
               spin_labels("h36m_every_frame", "train", arrays, list(range(n)), H36M17, K)),
    ]  # fmt: skip


def lay_mpi_inf_3dhp(lay: Lay) -> list[Corpus]:
    root = lay.root("mpi_inf_3dhp")
    files = {"train": "mpi_inf_3dhp_train.npz", "test": "mpi_inf_3dhp_test_valid.npz"}
    if lay.real:
        data = {}
        for split, target in files.items():
            copy(REAL / "mpi_inf_3dhp" / f"test_3dhp_{split}.npz", root / "annotations" / target)
            copy(
                REAL / "mpi_inf_3dhp" / f"cameras_{split}.pkl",
                root / "annotations" / f"cameras_{split}.pkl",
            )
            with np.load(REAL / "mpi_inf_3dhp" / f"test_3dhp_{split}.npz") as npz:
                data[split] = {
                    "npz": {k: npz[k] for k in npz.files},
                    "cameras": load_pickle(REAL / "mpi_inf_3dhp" / f"cameras_{split}.pkl"),
                }
        for image in REAL.joinpath("mpi_inf_3dhp").glob("*.jpg"):
            copy(image, root / "images" / image.name)
    else:
        data = write_mpi_inf_3dhp(root)
    splits, labels = {}, []
    for split, source in data.items():
        n = len(source["npz"]["imgname"])
        rows = list(range(0, n, 5)) if split == "train" else list(range(n))  # keep_every: train
        splits[split] = (len(rows), len(rows))
        K = intrinsics(source["cameras"], lambda name: re.match(r"^(.+)_\d+\.jpg$", name)[1])
        labels += spin_labels("mpi_inf_3dhp", split, source["npz"], rows, MPI17, K)
    source = "real samples" if lay.real else "written"
    return [Corpus(shipped("mpi_inf_3dhp"), "mpi_inf_3dhp", source, splits, labels)]


# -- MPII: the official .mat (shipped card) and mmpose's JSON (variant) --------------------------

MPII16 = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "pelvis",
    "neck",
    "upper_neck",
    "head_top",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
)  # fmt: skip  (the canonical names of MPII's joints 0-15; its thorax is SMPL's neck)


def lay_mpii(lay: Lay) -> list[Corpus]:
    root = lay.root("mpii")
    if lay.real:
        entries = json.loads((REAL / "mpii" / "test_mpii.json").read_text())
        for image in {e["image"] for e in entries}:
            copy(REAL / "mpii" / image, root / "images" / image)
        copy(REAL / "mpii" / "test_mpii.json", root / "mpii_train.json")
        # The release's layout of the same people: labelled joints as points, visible
        people: dict[str, list[dict]] = {}
        for e in entries:
            points = [
                (k, float(x), float(y), 1)
                for k, ((x, y), v) in enumerate(zip(e["joints"], e["joints_vis"], strict=True))
                if v
            ]
            person = {"points": points, "objpos": tuple(e["center"]), "scale": e["scale"]}
            people.setdefault(e["image"], []).append(person)
        written = write_mpii(root, people, size=None)
    else:
        written = write_mpii(root)
        entries = write_mpii_json(root / "mpii_train.json", root / "images")
    # .mat: per image its people; two points of its first person with points; one EFT fit
    labels, fits = [], []
    for name, persons in written["train"].items():
        sample = f"mpii/train/{Path(name).stem}"
        labels.append(Label(sample, people=len(persons)))
        k = next((k for k, p in enumerate(persons) if len(p["points"]) >= 6), None)
        if k is None:
            continue
        for pid, x, y, visible in persons[k]["points"][:2]:
            vis = VIS_OCCLUDED if visible == 0 else VIS_VISIBLE
            labels.append(Label(sample, k, MPII16[pid], (x - 1, y - 1), vis))
        if not fits:
            joints, labelled = np.zeros((16, 2)), np.zeros(16, bool)
            for pid, x, y, _ in persons[k]["points"]:
                joints[pid], labelled[pid] = (x, y), True
            fits.append(eft_fit(name, spin49(joints, SPIN_FROM_MPII, labelled), 20))
            eft = Label(sample, k, smpl_source="eft", smpl_pose=eft_pose(20))
    assert fits, "no MPII person with 6 points for an EFT fit"
    write_eft(root / "eft_fit" / "MPII_ver01.json", fits)
    images = len(written["train"])
    persons = sum(map(len, written["train"].values()))
    # mmpose JSON: entries of one image are its people, (-1, -1) / joints_vis 0 unlabelled
    json_labels, by_image = [], {}
    for e in entries:
        by_image.setdefault(e["image"], []).append(e)
    for name, image_entries in by_image.items():
        sample = f"mpii_json/train/{Path(name).stem}"
        json_labels.append(Label(sample, people=len(image_entries)))
        e = image_entries[0]
        for pid in (0, 9):
            if e["joints_vis"][pid]:
                x, y = e["joints"][pid]
                json_labels.append(Label(sample, 0, MPII16[pid], (x - 1, y - 1), VIS_VISIBLE))
            else:
                json_labels.append(Label(sample, 0, MPII16[pid], (0, 0), VIS_UNLABELLED))
    variant = lay.variant(
        "mpii",
        name="mpii_json",
        splits={"train": {"annotations": "mpii_train.json", "images": "images"}},
        labels=["keypoints_2d"],
    )
    source = "real samples" if lay.real else "written"
    return [
        Corpus(shipped("mpii"), "mpii", source, {"train": (images, persons)}, [*labels, eft],
               smpl={eft.sample_id: {eft.person: "eft"}}),
        Corpus(variant, "mpii_json", source, {"train": (len(by_image), len(entries))}, json_labels),
    ]  # fmt: skip


# -- written only: LSP, MuCo-3DHP, 3DPW, Panoptic, synthetic ------------------------------------


def lay_lsp(lay: Lay) -> list[Corpus]:
    """The shipped card converts LSP's 1000 training images (image_range [1, 1000]): all of them
    are written (small), with LSPet's high-resolution PNGs and an EFT fit."""
    root = lay.root("lsp")
    size = (60, 80)
    lsp = write_lsp(root, joints=lsp_joints(1000, np.random.default_rng(0), size), size=size)
    lspet = write_lspet(root, 3)
    fit = eft_fit("im00002.png", spin49(lspet[1, :, :2], SPIN_FROM_LSP), 30)
    write_eft(root / "eft_fit" / "LSPet_ver01.json", [fit])
    labels = []
    for split, joints, stem, occluded_flag in (
        ("train", lsp, "im{:04d}", 1),  # LSP: 1 = occluded
        ("lspet", lspet, "im{:05d}", 0),  # LSPet: 1 = visible
    ):
        for n in (1, 2):
            sample = f"lsp/{split}/{stem.format(n)}"
            for j, name in ((0, "right_ankle"), (13, "head_top"), (12, "upper_neck")):
                x, y, flag = joints[n - 1, j]
                vis = VIS_OCCLUDED if flag == occluded_flag else VIS_VISIBLE
                labels.append(Label(sample, 0, name, (x - 1, y - 1), vis, people=1))
    eft = Label("lsp/lspet/im00002", 0, smpl_source="eft", smpl_pose=eft_pose(30))
    return [
        Corpus(shipped("lsp"), "lsp", "written", {"train": (1000, 1000), "lspet": (3, 3)},
               [*labels, eft], smpl={eft.sample_id: {0: "eft"}}),
    ]  # fmt: skip


def lay_muco(lay: Lay) -> list[Corpus]:
    """Six composites of 2, 1, 0, 2, 1, 0 people; keep_every 5 keeps ranks 0 and 5."""
    data = write_muco(lay.root("muco_3dhp"), n_images=6)
    ann = data["annotations"][0]  # first person of the first image
    kp2d, kp3d = np.asarray(ann["keypoints_img"]), np.asarray(ann["keypoints_cam"]) / 1000
    K = np.array([[data["images"][0]["f"][0], 0, data["images"][0]["c"][0]],
                  [0, data["images"][0]["f"][1], data["images"][0]["c"][1]], [0, 0, 1]])  # fmt: skip
    first = "muco_3dhp/train/augmented_set/000000.jpg"
    labels = [
        Label(first, people=2, intrinsics=K),
        Label(first, 0, "h36m_pelvis", kp2d[14], VIS_VISIBLE, kp3d[14]),
        Label(first, 0, "h36m_right_elbow", kp2d[3], VIS_OCCLUDED, kp3d[3]),  # vis 0: hidden
        Label(first, 0, "left_foot", kp2d[20], VIS_OUT_OF_FRAME, kp3d[20]),  # left of the image
        Label("muco_3dhp/train/augmented_set/000005.jpg", people=0),
    ]
    return [Corpus(shipped("muco_3dhp"), "muco_3dhp", "written", {"train": (2, 2)}, labels)]


#: 3DPW sequences: split, frames, the frames where person 0 / person 1 are valid. PC frames:
#: basketball_00 200, dancing_00 61, bus_00 1620 (each sequence of 3DPW-PC must exist).
PW3D = {
    "courtyard_basketball_00": ("train", 205, [0, 200], [200]),
    "courtyard_captureSelfies_00": ("train", 4, [3], [3]),
    "courtyard_dancing_01": ("train", 2, [1], []),
    "courtyard_dancing_00": ("validation", 62, [61], [61]),
    "courtyard_hug_00": ("validation", 3, [0], [0]),
    "downtown_bus_00": ("test", 1621, [1620], [1620]),
}


def lay_3dpw(lay: Lay) -> list[Corpus]:
    written = write_pw3d(
        lay.root("3dpw"),
        lay.body,
        {name: (split, n) for name, (split, n, _, _) in PW3D.items()},
        valid={name: (p0, p1) for name, (_, _, p0, p1) in PW3D.items()},
    )
    seq = written["courtyard_basketball_00"]
    cam = seq["cam_poses"][200]
    labels = [
        Label("3dpw/train/courtyard_basketball_00/00000", people=1, gender="male"),
        Label("3dpw/train/courtyard_dancing_01/00001", people=1, gender="male"),
        Label("3dpw/validation/courtyard_hug_00/00000", people=2, intrinsics=PW3D_INTRINSICS),
    ]
    for split in ("train", "pc"):
        sample = f"3dpw/{split}/courtyard_basketball_00/00200"
        labels.append(Label(sample, people=2, intrinsics=PW3D_INTRINSICS))
        for p, gender in ((0, "male"), (1, "female")):
            joints = seq["jointPositions"][p][200].reshape(24, 3) @ cam[:3, :3].T + cam[:3, 3]
            uv = joints @ PW3D_INTRINSICS.T
            for j, name in ((0, "pelvis"), (15, "head")):
                labels.append(
                    Label(sample, p, name, uv[j, :2] / uv[j, 2], VIS_VISIBLE, joints[j],
                          smpl_source="gt", gender=gender)
                )  # fmt: skip
    return [
        Corpus(
            shipped("3dpw"),
            "3dpw",
            "written",
            {"train": (4, 6), "validation": (2, 4), "test": (1, 2), "pc": (3, 6)},
            labels,
            smpl=None,
        )
    ]


def lay_panoptic(lay: Lay) -> list[Corpus]:
    """Frame 0 of the four sequences from both cameras, and haggling1's frame 1402, which the
    card excludes for camera 00_30 (a broken video frame): 9 images of 2 people in view."""
    frames = {"160422_haggling1": [0, 1402], "160422_mafia2": [0], "160422_ultimatum1": [0],
              "160906_pizza1": [0]}  # fmt: skip
    written = write_panoptic(lay.root("panoptic"), frames)
    labels = []
    for seq, cam_name, frame in (
        ("160422_haggling1", "00_16", 1402),
        ("160906_pizza1", "00_30", 0),
    ):
        cam = next(c for c in written[seq]["calibration"]["cameras"] if c["name"] == cam_name)
        R, t = np.asarray(cam["R"]), np.asarray(cam["t"]).reshape(3)
        sample = f"panoptic/test/{seq}/{cam_name}/{frame:08d}"
        labels.append(Label(sample, people=2, intrinsics=np.asarray(cam["K"])))
        for body in (0, 1):
            joints = np.asarray(written[seq]["bodies"][frame][body]["joints19"]).reshape(19, 4)
            camera = (joints[:, :3] @ R.T + t) / 100
            for j, name in ((0, "neck"), (2, "pelvis")):
                labels.append(Label(sample, body, name, xyz=camera[j]))
    return [
        Corpus(shipped("panoptic"), "panoptic", "written", {"test": (9, 18)}, labels,
               absent=["panoptic/test/160422_haggling1/00_30/00001402"]),
    ]  # fmt: skip


SYNTHETIC_SIZES = {"train": 3, "val": 1, "test": 1}


def lay_synthetic(lay: Lay) -> list[Corpus]:
    """The synthetic card at 64 px, 5 images of up to 3 people; what the CLI's Ray workers
    render must be what this process renders (same people, same 2-D joints)."""
    from instancehmr.data.cards import load_card
    from instancehmr.data.corpora.synthetic import SyntheticCrowd

    raw = yaml.safe_load(shipped("synthetic").read_text())
    options = {**raw["options"], "image_size": 64, "max_people": 3, "sizes": SYNTHETIC_SIZES}
    card = lay.variant("synthetic", options=options)
    converter, loaded = SyntheticCrowd(), load_card(card)
    splits, labels = {}, []
    for split, n in SYNTHETIC_SIZES.items():
        records = [converter.convert(loaded, split, {"index": i}) for i in range(n)]
        splits[split] = (n, sum(len(r.persons) for r in records))
        for r in records:
            labels.append(Label(r.sample_id, people=len(r.persons), intrinsics=r.intrinsics))
            p = r.persons[0]
            j = int(np.flatnonzero(p.keypoints_2d_vis != VIS_UNLABELLED)[0])
            name = next(n for n, i in CANONICAL_INDEX.items() if i == j)
            labels.append(Label(r.sample_id, 0, name, p.keypoints_2d[j], int(p.keypoints_2d_vis[j]),
                                p.keypoints_3d[j], smpl_source="gt", smpl_pose=p.smpl_pose))  # fmt: skip
    return [Corpus(card, "synthetic", "written", splits, labels)]


#: Card file stem -> the fixture laid out for it. A new card needs an entry here.
LAYOUTS: dict[str, Callable[[Lay], list[Corpus]]] = {
    "3dpw": lay_3dpw,
    "coco": lay_coco,
    "crowdpose": lay_crowdpose,
    "h36m": lay_h36m,
    "lsp": lay_lsp,
    "mpi_inf_3dhp": lay_mpi_inf_3dhp,
    "mpii": lay_mpii,
    "muco_3dhp": lay_muco,
    "ochuman": lay_ochuman,
    "panoptic": lay_panoptic,
    "synthetic": lay_synthetic,
}
