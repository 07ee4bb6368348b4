"""The two evaluation protocols, per ground-truth person, on batches in the pipeline's layout.

* ``gt-centers`` (the release's protocol, comparable with the paper): parameters are read at
  each ground-truth person's center, one prediction per person.
* ``detected`` (the honest one): the model's own detections (center NMS, threshold) are
  matched to people by their projected 2-D joints (Hungarian); an unmatched person is a miss,
  reported as recall, and errors are over matched people.

Errors: MPJPE and PA-MPJPE on SMPL-24 joints (pelvis-aligned), MPVPE against the mesh of the
person's SMPL label; millimetres; NaN where the person lacks the label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import roma
import torch

from instancehmr.body.joint_sets import CANONICAL_INDEX, smpl24_from_canonical
from instancehmr.eval.matching import match_people
from instancehmr.eval.metrics import mpjpe, mpvpe, pa_mpjpe
from instancehmr.geometry import normalized_to_pixels
from instancehmr.model.decode import decode_people, people_from_params, read_params
from instancehmr.model.smpl_params import split_params

PROTOCOLS = ("gt-centers", "detected")
SMPL_JOINTS = 24
PELVIS = CANONICAL_INDEX["pelvis"]
#: Occlusion-fraction bins of the synthetic benchmark: [low, high).
OCCLUSION_LEVELS = {"none": (0.0, 0.1), "partial": (0.1, 0.5), "heavy": (0.5, 1.01)}


@dataclass
class PersonErrors:
    """One entry per ground-truth person: found (matched or read), errors in mm (NaN if not
    found or unlabelled) and the person's occlusion fraction (NaN if unknown)."""

    found: list[np.ndarray] = field(default_factory=list)
    mpjpe: list[np.ndarray] = field(default_factory=list)
    pa_mpjpe: list[np.ndarray] = field(default_factory=list)
    mpvpe: list[np.ndarray] = field(default_factory=list)
    occlusion: list[np.ndarray] = field(default_factory=list)

    def column(self, name: str) -> np.ndarray:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.zeros(0)

    def summary(self, select: np.ndarray | None = None) -> dict[str, float]:
        """Mean errors over found people, recall, and the person count."""
        found = self.column("found").astype(bool)
        keep = np.ones_like(found) if select is None else select
        out = {
            "people": float(keep.sum()),
            "recall": float(found[keep].mean()) if keep.any() else float("nan"),
        }
        for name in ("mpjpe", "pa_mpjpe", "mpvpe"):
            values = self.column(name)[keep & found]
            values = values[np.isfinite(values)]
            out[name] = float(values.mean()) if len(values) else float("nan")
        return out

    def by_occlusion(self) -> dict[str, dict[str, float]]:
        """:meth:`summary` per ``OCCLUSION_LEVELS`` bin (people with a known occlusion)."""
        occ = self.column("occlusion")
        return {
            level: self.summary((occ >= lo) & (occ < hi))
            for level, (lo, hi) in OCCLUSION_LEVELS.items()
        }


def _gt_meshes(body, pose: torch.Tensor, betas: torch.Tensor):
    rotmats = roma.rotvec_to_rotmat(pose.view(-1, 24, 3))
    out = body(rotmats[:, 0], rotmats[:, 1:], betas)
    root = out.joints[:, PELVIS : PELVIS + 1]
    return out.vertices - root, out.joints - root


def _nan(n: int) -> torch.Tensor:
    return torch.full((n,), float("nan"))


def mesh_errors(body, joints, vertices, batch, b_idx, n_idx) -> tuple[torch.Tensor, ...]:
    """(N,) MPJPE, PA-MPJPE, MPVPE in mm of predictions for the people (b_idx, n_idx)."""
    n = len(b_idx)
    errors = [_nan(n), _nan(n), _nan(n)]
    gt3d = batch["keypoints_3d"][b_idx, n_idx][:, :SMPL_JOINTS]
    valid = batch["keypoints_3d_mask"][b_idx, n_idx][:, :SMPL_JOINTS]
    has3d = valid[:, PELVIS] & (valid.sum(1) >= 4)
    if has3d.any():
        p, g, v = joints[has3d, :SMPL_JOINTS], gt3d[has3d], valid[has3d]
        errors[0][has3d.cpu()] = mpjpe(p, g, v).float().cpu()
        errors[1][has3d.cpu()] = pa_mpjpe(p, g, v).float().cpu()
    has_mesh = batch["betas_mask"][b_idx, n_idx] & batch["pose_mask"][b_idx, n_idx]
    if has_mesh.any():
        gv, gj = _gt_meshes(
            body, batch["pose"][b_idx, n_idx][has_mesh], batch["betas"][b_idx, n_idx][has_mesh]
        )
        errors[2][has_mesh.cpu()] = (
            mpvpe(vertices[has_mesh], gv, joints[has_mesh], gj, (PELVIS,)).float().cpu()
        )
    return tuple(errors)


@torch.no_grad()
def evaluate_batch(
    outputs: dict,
    batch: dict,
    body,
    input_size: int,
    representation: str,
    protocol: str,
    decode_cfg=None,
) -> PersonErrors:
    """Per-person errors of one batch under ``protocol``."""
    b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
    result = PersonErrors()
    result.occlusion.append(batch["occlusion"][b_idx, n_idx].cpu().numpy())
    if protocol == "gt-centers":
        raw = read_params(
            outputs["param_map"], b_idx, batch["centers"][b_idx, n_idx].round().long()
        )
        params = split_params(raw, representation, body.num_betas)
        vertices, joints, _ = people_from_params(params, body, input_size)
        errors = mesh_errors(body, joints, vertices, batch, b_idx, n_idx)
        result.found.append(np.ones(len(b_idx), bool))
    else:
        people = decode_people(
            outputs, body, input_size, None, representation,
            decode_cfg.nms_kernel, decode_cfg.max_people, decode_cfg.center_threshold,
        )  # fmt: skip
        found = np.zeros(len(b_idx), bool)
        chosen = np.full(len(b_idx), -1)
        gt2d = normalized_to_pixels(batch["keypoints_2d"], input_size)
        gt24, valid24 = smpl24_from_canonical(gt2d, batch["keypoints_2d_mask"])
        for b in range(len(batch["images"])):
            rows = np.flatnonzero((b_idx == b).cpu().numpy())
            preds = np.flatnonzero((people.batch_index == b).cpu().numpy())
            pred24 = people.joints_2d[preds][:, :SMPL_JOINTS].cpu().numpy()
            m = match_people(
                pred24, gt24[b, n_idx[rows]].cpu().numpy(), valid24[b, n_idx[rows]].cpu().numpy()
            )
            found[rows[m.pairs[:, 1]]] = True
            chosen[rows[m.pairs[:, 1]]] = preds[m.pairs[:, 0]]
        errors = [_nan(len(b_idx)) for _ in range(3)]
        if found.any():
            take = torch.from_numpy(chosen[found])
            sub = mesh_errors(
                body, people.joints[take], people.vertices[take], batch, b_idx[found], n_idx[found]
            )
            for full, part in zip(errors, sub, strict=True):
                full[torch.from_numpy(found)] = part
        result.found.append(found)
    result.mpjpe.append(errors[0].numpy())
    result.pa_mpjpe.append(errors[1].numpy())
    result.mpvpe.append(errors[2].numpy())
    return result


def merge(parts: list[PersonErrors]) -> PersonErrors:
    """Concatenate per-batch results."""
    merged = PersonErrors()
    for part in parts:
        for name in ("found", "mpjpe", "pa_mpjpe", "mpvpe", "occlusion"):
            getattr(merged, name).extend(getattr(part, name))
    return merged
