"""Gaussian-mixture pose prior (L_prior of docs/method.md#mesh-terms).

The paper uses SMPLify's 8-component mixture over the 69 body-pose components (``gmm_08.pkl``,
keys ``means`` (K, 69), ``covars`` (K, 69, 69), ``weights`` (K,)); it is loaded when configured.
Without that licensed file, the embedded default is a single Gaussian centred in the joint
limits of :mod:`instancehmr.body.pose`, with a standard deviation of a quarter of each range.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from instancehmr.body.pose import JOINT_LIMITS
from instancehmr.body.safe_pickle import load_pickle

POSE_DIM = 69


class PriorFileError(ValueError):
    """A pose-prior file that cannot be used; the message names the file and key."""


class GaussianMixturePrior(nn.Module):
    """Negative log-likelihood of body poses under a Gaussian mixture, shifted to be >= 0."""

    def __init__(self, means: np.ndarray, covars: np.ndarray, weights: np.ndarray) -> None:
        super().__init__()
        means = torch.as_tensor(np.asarray(means, dtype=np.float64))
        covars = torch.as_tensor(np.asarray(covars, dtype=np.float64))
        weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        precisions = torch.linalg.inv(covars)
        # log w_k - 0.5 log det(2 pi Sigma_k): the component's log-density at its own mean.
        log_norm = torch.log(weights) - 0.5 * torch.logdet(2 * math.pi * covars)
        self.register_buffer("means", means.float())
        self.register_buffer("precisions", precisions.float())
        self.register_buffer("log_norm", log_norm.float())

    @classmethod
    def from_file(cls, path: str | Path) -> GaussianMixturePrior:
        """Load SMPLify's ``gmm_08.pkl`` (or an ``.npz`` with the same keys)."""
        path = Path(path)
        if not path.is_file():
            raise PriorFileError(f"{path}: pose-prior file not found")
        data = (
            load_pickle(path) if path.suffix == ".pkl" else dict(np.load(path, allow_pickle=False))
        )
        for key in ("means", "covars", "weights"):
            if key not in data:
                raise PriorFileError(f"{path}: missing key '{key}'")
        means, covars, weights = (np.asarray(data[k]) for k in ("means", "covars", "weights"))
        k = len(weights)
        if means.shape != (k, POSE_DIM) or covars.shape != (k, POSE_DIM, POSE_DIM):
            raise PriorFileError(
                f"{path}: expected means ({k}, {POSE_DIM}) and covars ({k}, {POSE_DIM}, {POSE_DIM}), "
                f"got {means.shape} and {covars.shape}"
            )
        return cls(means, covars, weights)

    @classmethod
    def from_joint_limits(cls) -> GaussianMixturePrior:
        """Single Gaussian: mean mid-range, std a quarter of the range, per component."""
        lo, hi = JOINT_LIMITS[1:, :, 0].reshape(-1), JOINT_LIMITS[1:, :, 1].reshape(-1)
        std = (hi - lo) / 4
        return cls(((lo + hi) / 2)[None], np.diag(std**2)[None], np.ones(1))

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        """body_pose (N, 69) axis-angle (joints 1-23) -> (N,) NLL minus its minimum over poses."""
        diff = body_pose[:, None, :] - self.means[None]  # (N, K, 69)
        maha = torch.einsum("nki,kij,nkj->nk", diff, self.precisions, diff)
        log_lik = self.log_norm[None] - 0.5 * maha
        return self.log_norm.max() - torch.logsumexp(log_lik, dim=1).clamp(max=self.log_norm.max())
