"""The SMPL body model through smplx, returning vertices and the canonical joint set.

Skinning is smplx's (``smplx.SMPL``); this module only loads the model file safely (real SMPL or
the embedded synthetic body), adds the Human3.6M regressor and assembles the 48 canonical joints
of :mod:`instancehmr.body.joint_sets`.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from torch import nn

from instancehmr.body.joint_sets import (
    CANONICAL_INDEX,
    FACE_VERTEX_JOINTS,
    JOINT_VERTEX_IDS,
    NUM_CANONICAL,
)
from instancehmr.body.model_file import NUM_VERTICES, read_h36m_regressor, read_smpl_file
from instancehmr.body.synthetic import H36M_REGRESSOR_FILE, ensure_synthetic_body


@dataclass
class BodyOutput:
    """vertices (N, 6890, 3) and canonical joints (N, 48, 3), metres, model frame."""

    vertices: torch.Tensor
    joints: torch.Tensor


class BodyModel(nn.Module):
    """SMPL (neutral) with rotation-matrix inputs and canonical joints."""

    def __init__(
        self, model_path: str | Path, h36m_regressor_path: str | Path, num_betas: int = 10
    ):
        super().__init__()
        data = read_smpl_file(model_path)
        n_vertices = data["v_template"].shape[0]
        if n_vertices != NUM_VERTICES:
            raise ValueError(
                f"{model_path}: SMPL has {NUM_VERTICES} vertices, the file has {n_vertices}"
            )
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
            self.smpl = smplx.SMPL(
                model_path=str(model_path),
                data_struct=Struct(**data),
                num_betas=num_betas,
                create_global_orient=False,
                create_body_pose=False,
                create_betas=False,
                create_transl=False,
            )
        self.num_betas = num_betas
        h36m = read_h36m_regressor(h36m_regressor_path, data["v_template"])
        self.register_buffer("h36m_regressor", torch.from_numpy(h36m).float())
        face_ids = [JOINT_VERTEX_IDS[n] for n in (*FACE_VERTEX_JOINTS, "head_top")]
        self.register_buffer("face_vertex_ids", torch.tensor(face_ids))

    @classmethod
    def from_config(cls, body_cfg, model_path: str | Path | None = None) -> BodyModel:
        """``body`` section of the experiment config; the synthetic body when no file is set.
        ``model_path`` replaces the section's file (e.g. a gendered SMPL for GT meshes)."""
        return cls(*body_files(body_cfg, model_path), body_cfg.num_betas)

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 triangle vertex indices."""
        return self.smpl.faces.astype(np.int64)

    def forward(
        self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor
    ) -> BodyOutput:
        """global_orient (N, 3, 3), body_pose (N, 23, 3, 3) rotation matrices, betas (N, B)."""
        n = betas.shape[0]
        if global_orient.shape != (n, 3, 3) or body_pose.shape != (n, 23, 3, 3):
            raise ValueError(
                f"expected global_orient ({n}, 3, 3) and body_pose ({n}, 23, 3, 3), "
                f"got {tuple(global_orient.shape)} and {tuple(body_pose.shape)}"
            )
        if betas.shape[1] != self.num_betas:
            raise ValueError(f"expected betas ({n}, {self.num_betas}), got {tuple(betas.shape)}")
        if n == 0:  # smplx cannot pose an empty batch (nobody detected in an image batch)
            empty = betas.new_zeros
            return BodyOutput(
                vertices=empty((0, NUM_VERTICES, 3)), joints=empty((0, NUM_CANONICAL, 3))
            )
        out = self.smpl(
            betas=betas,
            global_orient=global_orient[:, None],
            body_pose=body_pose,
            pose2rot=False,
        )
        vertices = out.vertices
        smpl24 = out.joints[:, :24]
        vertex_joints = vertices[:, self.face_vertex_ids]  # nose, eyes, ears, head_top
        neck, head = smpl24[:, CANONICAL_INDEX["neck"]], smpl24[:, CANONICAL_INDEX["head"]]
        upper_neck = ((neck + head) / 2)[:, None]
        h36m = torch.einsum("jv,nvc->njc", self.h36m_regressor, vertices)
        joints = torch.cat([smpl24, vertex_joints, upper_neck, h36m], dim=1)
        return BodyOutput(vertices=vertices, joints=joints)


def body_files(body_cfg, model_path: str | Path | None = None) -> tuple[Path, Path]:
    """The SMPL model file and Human3.6M regressor file the ``body`` section names (the
    synthetic body's, written if needed, when it names no model file); ``model_path`` replaces
    the section's model file. ValueError when a real SMPL file comes without its regressor."""
    model_path = model_path or body_cfg.model_path
    if model_path is None:
        path = ensure_synthetic_body()
        return path, Path(body_cfg.h36m_regressor_path or path.parent / H36M_REGRESSOR_FILE)
    if body_cfg.h36m_regressor_path is None:
        raise ValueError(
            f"body.h36m_regressor_path: the real SMPL model {model_path} needs the "
            "Human3.6M regressor (J_regressor_h36m.npy, 17 x 6890)"
        )
    return Path(model_path), Path(body_cfg.h36m_regressor_path)
