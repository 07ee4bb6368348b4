"""Shared fixtures: an isolated cache for the synthetic body, a body model, a tiny config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures" / "real"


def pytest_configure(config: pytest.Config) -> None:
    # Keep the synthetic body out of the user's home cache unless CI/the user chose a place.
    if "INSTANCEHMR_CACHE" not in os.environ:
        os.environ["INSTANCEHMR_CACHE"] = str(REPO / ".cache" / "instancehmr-tests")
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def body():
    from instancehmr.body.smpl import BodyModel
    from instancehmr.config import load_config

    return BodyModel.from_config(load_config(REPO / "experiments" / "base.yaml").body)


@pytest.fixture
def tiny_cfg():
    """A CPU-sized config: resnet18 at 64 px input (8 x 8 maps), embedding 16."""
    from instancehmr.config import load_config

    return load_config(
        REPO / "experiments" / "quickstart.yaml",
        ["model.input_size=64", "model.map_size=8", "model.head_channels=16", "model.embedding_dim=16"],
    )
