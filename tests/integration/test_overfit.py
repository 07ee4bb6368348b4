"""A tiny model memorises four labelled synthetic images: every loss term trains together."""

import torch

from instancehmr.body.prior import GaussianMixturePrior
from instancehmr.losses.objective import WeightedObjective
from instancehmr.model import build_model


def test_tiny_model_overfits_four_images(tiny_cfg, body, make_batch):
    torch.manual_seed(0)
    model = build_model(tiny_cfg)
    objective = WeightedObjective(
        tiny_cfg.loss,
        body,
        GaussianMixturePrior.from_joint_limits(),
        tiny_cfg.model.input_size,
        "axis_angle",
    )
    batch = make_batch(4, 3, tiny_cfg.model.map_size, seed=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    projectors = (model.center_projector, model.joint_projector)
    losses = []
    for _ in range(40):
        terms = objective(model(batch["images"]), batch, projectors)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        losses.append(terms["total"].item())
    assert losses[-1] < 0.5 * losses[0], losses
