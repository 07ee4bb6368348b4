"""3DPW files in their original layout, written by the tests: sequence pickles
(``sequenceFiles/<split>/<sequence>.pkl``) and frames (``imageFiles/<sequence>/image_%05d.jpg``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import roma
import torch

WIDTH, HEIGHT = 192, 256
K = np.array([[220.0, 0.0, 96.0], [0.0, 225.0, 128.0], [0.0, 0.0, 1.0]])
N_POSES = 3  # distinct poses per person; frame f uses pose f % N_POSES


def rotation(rotvec) -> np.ndarray:
    return roma.rotvec_to_rotmat(torch.tensor(rotvec, dtype=torch.float64)).numpy()


def write_sequence(path: Path, name: str, n_frames: int, body, seed: int) -> dict:
    """A 3DPW sequence pickle: world-frame SMPL fits of 2 people seen by a moving camera, every
    person-frame valid (``campose_valid`` set, ``poses2d`` not all zero)."""
    g = torch.Generator().manual_seed(seed)
    poses, joints, betas = [], [], []
    for offset in (-0.5, 0.5):
        rotvec = torch.randn(N_POSES, 24, 3, generator=g, dtype=torch.float64) * 0.2
        rotvec[:, 0] = torch.tensor([np.pi / 2, 0.3, 0.0], dtype=torch.float64)  # z-up world
        beta = torch.randn(16, generator=g, dtype=torch.float64)
        mats = roma.rotvec_to_rotmat(rotvec).float()
        with torch.no_grad():
            out = body(mats[:, 0], mats[:, 1:], beta[None, :10].float().expand(N_POSES, 10))
        trans = np.array([offset, 0.1 * seed, 0.9])
        frames = np.arange(n_frames) % N_POSES
        poses.append(rotvec.reshape(N_POSES, 72).numpy()[frames])
        joints.append((out.joints[:, :24].double().numpy() + trans).reshape(N_POSES, 72)[frames])
        betas.append(beta.numpy())
    cams = np.zeros((N_POSES, 4, 4))
    for i in range(N_POSES):
        # World z-up -> camera y-down, looking along world y.
        cams[i, :3, :3] = rotation([np.pi / 2 + 0.05 * i, 0.1 * i, 0.0])
        cams[i, :3, 3] = [0.0, 0.9, 4.0 + 0.2 * i]
        cams[i, 3, 3] = 1.0
    data = {
        "sequence": name,
        "genders": ["m", "f"],
        "poses": poses,
        "trans": [np.zeros((n_frames, 3))] * 2,
        "betas": betas,
        "jointPositions": joints,
        "cam_poses": cams[np.arange(n_frames) % N_POSES],
        "cam_intrinsics": K,
        "campose_valid": [np.ones(n_frames, bool), np.ones(n_frames, bool)],
        "poses2d": [np.full((n_frames, 3, 18), 0.5) for _ in range(2)],
        "img_frame_ids": np.arange(n_frames) * 2,
    }
    write_pickle(path, data)
    return data


def write_pickle(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(data, fh, protocol=2)  # the Python-2 protocol of the released files


def write_image(root: Path, name: str, frame: int) -> None:
    path = root / "imageFiles" / name / f"image_{frame:05d}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((HEIGHT, WIDTH, 3), frame % 255, np.uint8))
