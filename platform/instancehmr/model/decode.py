"""Decoding people from the network's maps (docs/method.md#decoding).

Center peaks: sigmoid(H_C), max-pool NMS over a window that covers the same share of the image
at every map size (the paper's 5 x 5 on 64 x 64 maps), top-k per image, score threshold. The
parameter map is read at each peak, the body model runs once for all people of all images,
joints are projected with the weak-perspective camera and mapped back to each original image
through the inverse of its resize/padding transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.geometry import (
    apply_affine,
    invert_affine,
    normalized_to_pixels,
    weak_perspective_project,
)
from instancehmr.model.smpl_params import SMPLParams, split_params

if TYPE_CHECKING:
    from instancehmr.body.smpl import BodyModel


@dataclass
class People:
    """All people found in a batch, flattened; ``batch_index`` (N,) says whose image.

    score (N,), center (N, 2) map pixels (x, y), camera (N, 3), pose (N, 72) axis-angle,
    betas (N, B), vertices (N, 6890, 3) and joints (N, 48, 3) pelvis-centred, metres,
    joints_2d (N, 48, 2) pixels of the original image.
    """

    batch_index: torch.Tensor
    score: torch.Tensor
    center: torch.Tensor
    camera: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    vertices: torch.Tensor
    joints: torch.Tensor
    joints_2d: torch.Tensor

    def __len__(self) -> int:
        return len(self.batch_index)


#: Map side at which ``decode.nms_kernel`` is given: the paper's 64 x 64 maps (512 px input).
NMS_REFERENCE_MAP_SIZE = 64


def nms_window(kernel: int, map_size: int) -> int:
    """The odd max-pool window at ``map_size`` covering the share of the image that ``kernel``
    covers on 64 x 64 maps, at least 3 (a window of 1 suppresses nothing): the paper's 5 is 3 at
    16 and 32, 5 at 64, 9 at 128."""
    half = round((kernel - 1) / 2 * map_size / NMS_REFERENCE_MAP_SIZE)
    return 2 * max(half, 1) + 1


def find_centers(
    center_heatmap: torch.Tensor, kernel: int = 5, max_people: int = 64, threshold: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """center_heatmap (B, 1, h, w) logits -> batch_index (N,), center (N, 2) as (x, y), score (N,).

    ``kernel`` is the NMS window on 64 x 64 maps (``decode.nms_kernel``), scaled to ``w`` by
    :func:`nms_window`. People are ordered by image, then by descending score.
    """
    heat = center_heatmap.sigmoid()
    window = nms_window(kernel, center_heatmap.shape[-1])
    peaks = heat == F.max_pool2d(heat, window, stride=1, padding=window // 2)
    scores = (heat * peaks).flatten(1)  # (B, h*w)
    k = min(max_people, scores.shape[1])
    top, index = scores.topk(k, dim=1)
    keep = top > threshold
    batch_index = torch.arange(len(scores), device=scores.device)[:, None].expand(-1, k)[keep]
    flat = index[keep]
    width = center_heatmap.shape[-1]
    center = torch.stack([flat % width, flat // width], dim=1)
    return batch_index, center, top[keep]


def read_params(
    param_map: torch.Tensor, batch_index: torch.Tensor, center: torch.Tensor
) -> torch.Tensor:
    """param_map (B, P, h, w) at integer map pixels (x, y) of each person -> (N, P)."""
    return param_map[batch_index, :, center[:, 1].long(), center[:, 0].long()]


def people_from_params(
    params: SMPLParams, body: BodyModel, input_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SMPL forward for (N,) people -> pelvis-centred vertices (N, V, 3), joints (N, 48, 3) and
    projected joints (N, 48, 2) in network-input pixels."""
    out = body(params.global_orient, params.body_pose, params.betas)
    root = out.joints[:, CANONICAL_INDEX["pelvis"]][:, None]
    joints, vertices = out.joints - root, out.vertices - root
    joints_2d = normalized_to_pixels(weak_perspective_project(joints, params.camera), input_size)
    return vertices, joints, joints_2d


@torch.no_grad()
def decode_people(
    outputs: dict[str, torch.Tensor],
    body: BodyModel,
    input_size: int,
    transforms: torch.Tensor | None = None,
    pose_representation: str = "axis_angle",
    kernel: int = 5,
    max_people: int = 64,
    threshold: float = 0.2,
) -> People:
    """Every person in a batch of network outputs, in one batched body-model call.

    ``transforms`` (B, 2, 3) maps each original image to the network input (see
    :func:`instancehmr.geometry.letterbox`); without it 2-D joints stay in input pixels.
    """
    batch_index, center, score = find_centers(
        outputs["center_heatmap"], kernel, max_people, threshold
    )
    raw = read_params(outputs["param_map"], batch_index, center)
    params = split_params(raw, pose_representation, body.num_betas)
    vertices, joints, joints_2d = people_from_params(params, body, input_size)
    if transforms is not None:
        joints_2d = apply_affine(joints_2d, invert_affine(transforms)[batch_index])
    return People(
        batch_index=batch_index,
        score=score,
        center=center,
        camera=params.camera,
        pose=params.axis_angle(),
        betas=params.betas,
        vertices=vertices,
        joints=joints,
        joints_2d=joints_2d,
    )
