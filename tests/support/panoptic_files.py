"""CMU Panoptic files in the Panoptic toolbox's layout, written by the tests: per sequence
``calibration_<seq>.json``, ``hdPose3d_stage1_coco19/body3DScene_%08d.json`` and
``hdImgs/<cam>/<cam>_%08d.jpg`` for HD cameras 00_16 and 00_30."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import roma
import torch

WIDTH, HEIGHT = 320, 180
CAMERAS = ("00_16", "00_30")
N_FRAMES = 4


def camera(name: str, yaw: float) -> dict:
    """An HD camera 3 m from the origin looking at it (Panoptic: y down, centimetres)."""
    R = roma.rotvec_to_rotmat(torch.tensor([0.0, yaw, 0.0], dtype=torch.float64)).numpy()
    return {
        "name": name,
        "type": "hd",
        "resolution": [WIDTH, HEIGHT],
        "K": [[260.0, 0.0, 158.0], [0.0, 258.0, 91.0], [0.0, 0.0, 1.0]],
        "distCoef": [-0.21, 0.15, 0.001, -0.0008, -0.03],
        "R": R.tolist(),
        "t": [[0.0], [-100.0], [300.0]],
    }


def body(rng: np.random.Generator, center: np.ndarray, body_id: int) -> dict:
    joints = np.concatenate(
        [center + rng.normal(scale=25.0, size=(19, 3)), rng.uniform(0.3, 1, (19, 1))], 1
    )
    return {"id": body_id, "joints19": joints.reshape(-1).tolist()}


def write_sequence(root: Path, seq: str, seed: int, n_frames: int = N_FRAMES) -> dict:
    """Per frame two people in both cameras' view (every joint labelled but person 0's left
    knee), one behind both cameras and one beside or behind them."""
    rng = np.random.default_rng(seed)
    folder = root / seq
    calibration = {"calibDataSource": seq, "cameras": [
        camera("00_16", 0.3), {**camera("01_01", 0.0), "type": "vga"}, camera("00_30", -0.4)
    ]}  # fmt: skip
    folder.mkdir(parents=True)
    (folder / f"calibration_{seq}.json").write_text(json.dumps(calibration))
    (folder / "hdPose3d_stage1_coco19").mkdir()
    bodies = {}
    for frame in range(n_frames):
        people = [
            body(rng, np.array([-40.0, 100.0, 0.0]), 0),
            body(rng, np.array([50.0, 110.0, 20.0]), 1),
        ]
        people.append(body(rng, np.array([0.0, 100.0, -1000.0]), 2))  # behind both cameras
        people.append(body(rng, np.array([3000.0, 100.0, 0.0]), 3))  # beside or behind them
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
        for cam in CAMERAS:
            image = folder / "hdImgs" / cam / f"{cam}_{frame:08d}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(image), np.full((HEIGHT, WIDTH, 3), 30 * frame, np.uint8))
    return {"calibration": calibration, "bodies": bodies}
