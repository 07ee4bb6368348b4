"""The weighted objective of Eq. 5: every term, masked by the labels each sample carries.

The batch (made by the data pipeline; h = w = map size, S = input size, N people per image,
padded) holds:

=====================  =================  ==================================================
key                    shape              meaning
=====================  =================  ==================================================
center_heatmap         (B, 1, h, w)       GT center heatmap, 1 at each person's center
joint_heatmap          (B, 24, h, w)      GT SMPL-24 joint heatmaps
joint_heatmap_mask     (B, 24)            channels this image labels
person_mask            (B, N)             real people (False = padding)
centers                (B, N, 2)          body centers, (x, y) map pixels
keypoints_2d           (B, N, 48, 2)      canonical 2-D joints, normalised input coords
keypoints_2d_mask      (B, N, 48)         labelled and inside the image
                                          (docs/method.md#visible-joints)
keypoints_3d           (B, N, 48, 3)      canonical 3-D joints, camera frame, metres
keypoints_3d_mask      (B, N, 48)         labelled 3-D joints
pose                   (B, N, 72)         SMPL pose, axis-angle (GT or EFT pseudo-GT)
pose_mask              (B, N)             pose label present
betas                  (B, N, 10)         SMPL betas
betas_mask             (B, N)             betas label present
occlusion              (B, N)             occluded fraction (synthetic test), NaN unknown
gender                 (B, N)             index into schema.GENDERS (evaluation meshes)
=====================  =================  ==================================================

Parameters are read at each GT center; features for L_cont are sampled at GT centers and at
the visible SMPL-24 joints (docs/method.md#contrastive-loss, Fig. 2).
"""

from __future__ import annotations

import torch
from torch import nn

from instancehmr.body.joint_sets import smpl24_from_canonical
from instancehmr.geometry import normalized_to_pixels
from instancehmr.losses.contrastive import contrastive_loss, sample_features
from instancehmr.losses.focal import focal_loss
from instancehmr.losses.mesh import j2d_loss, j3d_loss, pa3d_loss, pose_loss, prior_loss, shape_loss
from instancehmr.model.decode import people_from_params, read_params
from instancehmr.model.smpl_params import split_params

TERMS = ("cont", "center", "joint", "pose", "shape", "prior", "j3d", "pa3d", "j2d")


class WeightedObjective(nn.Module):
    """L_total = sum of lambda_t * L_t (Eq. 5); returns every term and the total."""

    def __init__(
        self, loss_cfg, body: nn.Module, prior: nn.Module, input_size: int, pose_representation: str
    ):
        super().__init__()
        self.weights = {t: float(loss_cfg.weights[t]) for t in TERMS}
        self.contrastive = bool(loss_cfg.contrastive)
        self.focal = (float(loss_cfg.focal_alpha), float(loss_cfg.focal_beta))
        self.shape_regularizer = float(loss_cfg.shape_regularizer)
        self.body = body
        self.prior = prior
        self.input_size = input_size
        self.pose_representation = pose_representation

    def forward(
        self,
        outputs: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        projectors: tuple[nn.Module, nn.Module] | None = None,
    ) -> dict[str, torch.Tensor]:
        """outputs of :class:`~instancehmr.model.InstanceHMR`, the batch above and (P_C, P_J)
        when L_cont is on. Returns {term: scalar} for the nine terms plus ``total``."""
        alpha, beta = self.focal
        terms = {
            "center": focal_loss(
                outputs["center_heatmap"], batch["center_heatmap"], None, alpha, beta
            ),
            "joint": focal_loss(
                outputs["joint_heatmap"],
                batch["joint_heatmap"],
                batch["joint_heatmap_mask"],
                alpha,
                beta,
            ),
        }
        terms.update(self._mesh_terms(outputs, batch))
        if self.contrastive:
            if projectors is None:
                raise ValueError("loss.contrastive is on: pass the model's (P_C, P_J) projectors")
            terms["cont"] = self._contrastive(outputs, batch, projectors)
        else:
            terms["cont"] = torch.zeros((), device=outputs["center_heatmap"].device)
        terms["total"] = sum(self.weights[t] * terms[t] for t in TERMS)
        return terms

    def _mesh_terms(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]):
        b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
        raw = read_params(
            outputs["param_map"], b_idx, batch["centers"][b_idx, n_idx].round().long()
        )
        params = split_params(raw, self.pose_representation, self.body.num_betas)
        _, joints, joints_2d = people_from_params(params, self.body, self.input_size)
        target_2d = normalized_to_pixels(batch["keypoints_2d"][b_idx, n_idx], self.input_size)
        scale = 2 / self.input_size  # compare in normalised coordinates
        rotmats = torch.cat([params.global_orient[:, None], params.body_pose], dim=1)
        kp3d, kp3d_mask = (
            batch["keypoints_3d"][b_idx, n_idx],
            batch["keypoints_3d_mask"][b_idx, n_idx],
        )
        return {
            "pose": pose_loss(
                rotmats, batch["pose"][b_idx, n_idx], batch["pose_mask"][b_idx, n_idx]
            ),
            "shape": shape_loss(
                params.betas,
                batch["betas"][b_idx, n_idx],
                batch["betas_mask"][b_idx, n_idx],
                self.shape_regularizer,
            ),
            "prior": prior_loss(self.prior, params.body_pose[:, :23]),
            "j3d": j3d_loss(joints, kp3d, kp3d_mask),
            "pa3d": pa3d_loss(joints, kp3d, kp3d_mask),
            "j2d": j2d_loss(
                joints_2d * scale, target_2d * scale, batch["keypoints_2d_mask"][b_idx, n_idx]
            ),
        }

    def _contrastive(self, outputs, batch, projectors) -> torch.Tensor:
        center_projector, joint_projector = projectors
        map_size = outputs["center_heatmap"].shape[-1]
        joints_2d, visible = smpl24_from_canonical(
            batch["keypoints_2d"], batch["keypoints_2d_mask"]
        )
        joint_positions = normalized_to_pixels(joints_2d, map_size)  # (B, N, 24, 2) map pixels
        u = center_projector(sample_features(outputs["center_instance_map"], batch["centers"]))
        v = joint_projector(sample_features(outputs["joint_instance_map"], joint_positions))
        return contrastive_loss(u, v, visible, batch["person_mask"])
