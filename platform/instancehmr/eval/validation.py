"""Validation of a model on letterboxed samples (the training pipeline's batch layout).

Two readings of the same forward pass: mesh errors at ground-truth centers (the release's
protocol: one prediction per labelled person) and center-detection AP of the model's own
detections. Used every epoch by training and by evaluation of the synthetic split.
"""

from __future__ import annotations

from collections.abc import Iterable

import roma
import torch

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.eval.metrics import center_ap, mpjpe, mpvpe, pa_mpjpe
from instancehmr.model.decode import find_centers, people_from_params, read_params
from instancehmr.model.smpl_params import split_params

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
#: A detected center within this share of the map side from a GT center is a true positive.
CENTER_MATCH_FRACTION = 0.04
SMPL_JOINTS = 24
PELVIS = CANONICAL_INDEX["pelvis"]


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float, ImageNet-normalised."""
    x = images.permute(0, 3, 1, 2).float() / 255
    return (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)


@torch.no_grad()
def gt_vertices(body, pose: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth meshes (N, V, 3) and joints (N, 48, 3), pelvis-centred, from SMPL labels."""
    rotmats = roma.rotvec_to_rotmat(pose.view(-1, 24, 3))
    out = body(rotmats[:, 0], rotmats[:, 1:], betas)
    root = out.joints[:, PELVIS : PELVIS + 1]
    return out.vertices - root, out.joints - root


@torch.no_grad()
def validate(
    model, body, batches: Iterable[dict], pose_representation: str, device="cpu"
) -> dict[str, float]:
    """Mean MPJPE, PA-MPJPE (SMPL-24 joints, pelvis-aligned) and MPVPE in mm over people with
    those labels, read at GT centers, and center AP over all images, as ``val/...`` metrics."""
    model.eval()
    errors: dict[str, list[torch.Tensor]] = {"mpjpe": [], "pa_mpjpe": [], "mpvpe": []}
    detections, ground_truth = [], []
    for batch in batches:
        batch = {k: torch.as_tensor(v).to(device) for k, v in batch.items()}
        out = model(to_model_input(batch["images"]))
        map_size = out["center_map"].shape[-1]
        b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
        raw = read_params(out["param_map"], b_idx, batch["centers"][b_idx, n_idx].round().long())
        params = split_params(raw, pose_representation, body.num_betas)
        vertices, joints, _ = people_from_params(params, body, model.input_size)
        gt3d = batch["keypoints_3d"][b_idx, n_idx][:, :SMPL_JOINTS]
        valid = batch["keypoints_3d_mask"][b_idx, n_idx][:, :SMPL_JOINTS]
        has3d = valid[:, PELVIS] & (valid.sum(1) >= 4)
        if has3d.any():
            p, g, v = joints[has3d, :SMPL_JOINTS], gt3d[has3d], valid[has3d]
            errors["mpjpe"].append(mpjpe(p, g, v))
            errors["pa_mpjpe"].append(pa_mpjpe(p, g, v))
        has_mesh = batch["betas_mask"][b_idx, n_idx] & batch["pose_mask"][b_idx, n_idx]
        if has_mesh.any():
            gv, gj = gt_vertices(
                body, batch["pose"][b_idx, n_idx][has_mesh], batch["betas"][b_idx, n_idx][has_mesh]
            )
            errors["mpvpe"].append(mpvpe(vertices[has_mesh], gv, joints[has_mesh], gj, (PELVIS,)))
        found_b, found_xy, scores = find_centers(out["center_map"], threshold=0.05)
        for i in range(len(batch["images"])):
            here = found_b == i
            detections.append((found_xy[here].float().cpu().numpy(), scores[here].cpu().numpy()))
            ground_truth.append(batch["centers"][i][batch["person_mask"][i]].cpu().numpy())
    metrics = {
        f"val/{k}": float(torch.cat(v).mean()) if v else float("nan") for k, v in errors.items()
    }
    metrics["val/center_ap"] = (
        center_ap(detections, ground_truth, CENTER_MATCH_FRACTION * map_size)
        if detections
        else float("nan")
    )
    metrics["val/people"] = float(sum(len(g) for g in ground_truth))
    return metrics
