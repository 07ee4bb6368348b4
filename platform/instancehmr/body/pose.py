"""SMPL body pose: anatomical joint limits and the left/right mirror of a pose.

Poses are SMPL axis-angle vectors (..., 24, 3) in each joint's parent frame, rest pose a T-pose,
y up, the body facing +z, the person's left at +x. The limits are per axis-angle component, in
degrees, wide enough for everyday and sports poses; the synthetic crowd corpus samples inside
them and the default pose prior is derived from them.
"""

from __future__ import annotations

import numpy as np
import torch

from instancehmr.body.joint_sets import SMPL24, flip_permutation

#: (x, y, z) component ranges in degrees for the LEFT side and the spine, head and neck.
_LIMITS_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "pelvis": ((-180, 180), (-180, 180), (-180, 180)),
    "left_hip": ((-120, 30), (-40, 40), (-20, 45)),
    "spine1": ((-20, 40), (-25, 25), (-20, 20)),
    "left_knee": ((0, 140), (-5, 5), (-5, 5)),
    "spine2": ((-15, 30), (-20, 20), (-15, 15)),
    "left_ankle": ((-30, 45), (-15, 15), (-20, 20)),
    "spine3": ((-15, 30), (-20, 20), (-15, 15)),
    "left_foot": ((-20, 20), (-5, 5), (-5, 5)),
    "neck": ((-30, 45), (-40, 40), (-25, 25)),
    "left_collar": ((-10, 10), (-15, 15), (-10, 25)),
    "head": ((-30, 40), (-50, 50), (-30, 30)),
    "left_shoulder": ((-60, 60), (-110, 40), (-90, 60)),
    "left_elbow": ((-60, 60), (-150, 0), (-5, 5)),
    "left_wrist": ((-30, 30), (-30, 30), (-60, 60)),
    "left_hand": ((-10, 10), (-10, 10), (-10, 10)),
}


def _joint_limits() -> np.ndarray:
    """(24, 3, 2) radians; the right side mirrors the left (y and z components negate)."""
    limits = np.zeros((24, 3, 2))
    for j, name in enumerate(SMPL24):
        mirrored = name.startswith("right_")
        (x, y, z) = _LIMITS_DEG[name.replace("right_", "left_")]
        if mirrored:
            y, z = (-y[1], -y[0]), (-z[1], -z[0])
        limits[j] = np.deg2rad([x, y, z])
    return limits


#: (24, 3, 2) lower/upper bound in radians of each axis-angle component, SMPL joint order.
JOINT_LIMITS = _joint_limits()
_FLIP = torch.from_numpy(flip_permutation(SMPL24))
#: A rotation vector (a, b, c) mirrored across the body's sagittal plane (x -> -x) is (a, -b, -c).
MIRROR_SIGN = np.array([1.0, -1.0, -1.0])


def flip_pose(pose: torch.Tensor) -> torch.Tensor:
    """Mirror axis-angle poses (..., 24, 3) across the body's sagittal plane (x -> -x).

    Left and right joints swap and each rotation vector (a, b, c) becomes (a, -b, -c).
    """
    return pose[..., _FLIP, :] * torch.as_tensor(MIRROR_SIGN).to(pose)
