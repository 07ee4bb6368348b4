"""Layout of the SMPL parameter map and its conversion to body-model inputs.

Per pixel, ``param_map`` holds (docs/method.md#smpl-parameter-map): camera 3 (s, tx, ty) |
global orientation 6 (6-D rotation) | body pose 21 x 3 axis-angle (or 21 x 6 with ``rot6d``) |
betas 10 = 82 channels by default. SMPL's hand joints 22 and 23 are not predicted (identity
rotation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch

CAMERA_CHANNELS = 3
ORIENT_CHANNELS = 6
BODY_JOINTS = 21  # SMPL joints 1..21; 22, 23 (hands) stay at rest
CAMERA_SCALE_BASE = 1.1  # s = 1.1 ** x keeps the scale positive (release)


def pose_channels(representation: str) -> int:
    """Channels of the 21 body joints: 63 for axis_angle, 126 for rot6d."""
    return BODY_JOINTS * (3 if representation == "axis_angle" else 6)


def param_channels(representation: str, num_betas: int = 10) -> int:
    """All channels of ``param_map``: 82 for the paper's layout."""
    return CAMERA_CHANNELS + ORIENT_CHANNELS + pose_channels(representation) + num_betas


@dataclass
class SMPLParams:
    """Per-person parameters read from the map: camera (N, 3) = (s, tx, ty) with s > 0,
    global_orient (N, 3, 3), body_pose (N, 23, 3, 3), betas (N, num_betas)."""

    camera: torch.Tensor
    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor

    def axis_angle(self) -> torch.Tensor:
        """(N, 72) SMPL pose vector (global orientation first)."""
        rotmats = torch.cat([self.global_orient[:, None], self.body_pose], dim=1)
        return roma.rotmat_to_rotvec(rotmats).flatten(1)


#: Smallest column norm Gram-Schmidt divides by: zero or parallel columns give a finite matrix
#: and gradient instead of NaN.
GRAMSCHMIDT_EPS = 1e-8


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on two columns (Zhou et al. 2019)."""
    return roma.special_gramschmidt(x.unflatten(-1, (3, 2)), epsilon=GRAMSCHMIDT_EPS)


def split_params(params: torch.Tensor, representation: str, num_betas: int = 10) -> SMPLParams:
    """params (N, P) raw channels of ``param_map`` at each person -> :class:`SMPLParams`."""
    expected = param_channels(representation, num_betas)
    if params.shape[-1] != expected:
        raise ValueError(f"parameter vector has {params.shape[-1]} channels, expected {expected}")
    cam, orient, pose, betas = params.split(
        [CAMERA_CHANNELS, ORIENT_CHANNELS, pose_channels(representation), num_betas], dim=-1
    )
    camera = torch.cat([CAMERA_SCALE_BASE ** cam[:, :1], cam[:, 1:]], dim=1)
    if representation == "axis_angle":
        body = roma.rotvec_to_rotmat(pose.unflatten(-1, (BODY_JOINTS, 3)))
    else:
        body = rot6d_to_rotmat(pose.unflatten(-1, (BODY_JOINTS, 6)))
    hands = torch.eye(3, dtype=params.dtype, device=params.device).expand(len(params), 2, 3, 3)
    return SMPLParams(
        camera=camera,
        global_orient=rot6d_to_rotmat(orient),
        body_pose=torch.cat([body, hands], dim=1),
        betas=betas,
    )


def encode_params(params: SMPLParams, representation: str) -> torch.Tensor:
    """The inverse of :func:`split_params`: :class:`SMPLParams` of N people -> (N, P) raw
    channels of ``param_map`` (camera scale as log base 1.1; orientation as the first two
    columns of its matrix; joints 1-21 as axis-angle or 6-D; betas). Hands are not encoded."""
    camera = torch.cat(
        [torch.log(params.camera[:, :1]) / math.log(CAMERA_SCALE_BASE), params.camera[:, 1:]],
        dim=1,
    )
    body = params.body_pose[:, :BODY_JOINTS]
    if representation == "axis_angle":
        pose = roma.rotmat_to_rotvec(body).flatten(1)
    else:
        pose = body[..., :2].flatten(-2).flatten(1)
    orient = params.global_orient[..., :2].flatten(-2)
    return torch.cat([camera, orient, pose, params.betas], dim=1)
