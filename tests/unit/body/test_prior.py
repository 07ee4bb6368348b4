import pickle

import numpy as np
import pytest
import torch

from instancehmr.body.pose import JOINT_LIMITS
from instancehmr.body.prior import GaussianMixturePrior, PriorFileError


def test_default_prior_prefers_poses_inside_the_limits():
    prior = GaussianMixturePrior.from_joint_limits()
    middle = torch.from_numpy(JOINT_LIMITS[1:].mean(-1).reshape(1, 69)).float()
    extreme = torch.from_numpy(JOINT_LIMITS[1:, :, 1].reshape(1, 69) * 2).float()
    assert prior(middle).item() == pytest.approx(0.0, abs=1e-4)
    assert prior(extreme).item() > prior(middle).item() + 10


def test_mixture_matches_direct_density(tmp_path):
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 69)) * 0.1
    covars = np.stack([np.eye(69) * s for s in (0.1, 0.2, 0.3)])
    weights = np.array([0.5, 0.3, 0.2])
    path = tmp_path / "gmm_03.pkl"
    path.write_bytes(
        pickle.dumps({"means": means, "covars": covars, "weights": weights}, protocol=2)
    )
    prior = GaussianMixturePrior.from_file(path)
    x = torch.from_numpy(rng.normal(size=(4, 69)) * 0.3).float()
    from scipy.stats import multivariate_normal

    density = sum(
        w * multivariate_normal(m, c).pdf(x.double().numpy())
        for m, c, w in zip(means, covars, weights, strict=False)
    )
    log_norm = np.log(weights) - 0.5 * np.linalg.slogdet(2 * np.pi * covars)[1]
    expected = log_norm.max() - np.log(density)
    assert np.allclose(prior(x).numpy(), expected, rtol=1e-4)


def test_bad_prior_file(tmp_path):
    path = tmp_path / "gmm.pkl"
    path.write_bytes(pickle.dumps({"means": np.zeros((2, 69))}, protocol=2))
    with pytest.raises(PriorFileError, match=r"gmm\.pkl: missing key .covars."):
        GaussianMixturePrior.from_file(path)
    with pytest.raises(PriorFileError, match="not found"):
        GaussianMixturePrior.from_file(tmp_path / "none.pkl")
