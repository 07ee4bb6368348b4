import torch

from instancehmr.body.prior import GaussianMixturePrior
from instancehmr.losses.objective import TERMS, WeightedObjective
from instancehmr.model import build_model


def objective_for(cfg, body):
    return WeightedObjective(
        cfg.loss,
        body,
        GaussianMixturePrior.from_joint_limits(),
        cfg.model.input_size,
        cfg.model.pose_representation,
    )


def test_every_term_is_finite_and_weighted(tiny_cfg, body, make_batch):
    torch.manual_seed(0)
    model = build_model(tiny_cfg)
    batch = make_batch(3, 3, tiny_cfg.model.map_size)
    out = model(batch["images"])
    terms = objective_for(tiny_cfg, body)(
        out, batch, (model.center_projector, model.joint_projector)
    )
    assert set(terms) == {*TERMS, "total"}
    assert all(torch.isfinite(v) and v.ndim == 0 for v in terms.values())
    weights = tiny_cfg.loss.weights
    assert torch.isclose(terms["total"], sum(weights[t] * terms[t] for t in TERMS))
    assert all(terms[t] > 0 for t in TERMS)


def test_gradients_reach_both_instance_maps_and_projectors(tiny_cfg, body, make_batch):
    model = build_model(tiny_cfg)
    batch = make_batch(2, 3, tiny_cfg.model.map_size, seed=1)
    out = model(batch["images"])
    for key in ("center_instance_map", "joint_instance_map"):
        out[key].retain_grad()
    terms = objective_for(tiny_cfg, body)(
        out, batch, (model.center_projector, model.joint_projector)
    )
    terms["cont"].backward()
    for key in ("center_instance_map", "joint_instance_map"):
        assert out[key].grad.abs().sum() > 0, key
    for proj in (model.center_projector, model.joint_projector):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in proj.parameters())


def test_missing_labels_switch_terms_off(tiny_cfg, body, make_batch):
    model = build_model(tiny_cfg)
    batch = make_batch(2, 2, tiny_cfg.model.map_size, seed=2)
    for key in ("keypoints_3d_mask", "pose_mask", "joint_heatmap_mask"):
        batch[key] = torch.zeros_like(batch[key])
    terms = objective_for(tiny_cfg, body)(
        model(batch["images"]), batch, (model.center_projector, model.joint_projector)
    )
    assert terms["j3d"] == 0 and terms["pa3d"] == 0 and terms["pose"] == 0 and terms["joint"] == 0
    assert terms["j2d"] > 0 and terms["cont"] > 0


def test_baseline_has_no_contrastive_term(tiny_cfg, body, make_batch):
    from instancehmr.config import load_config

    cfg = load_config(
        "experiments/quickstart.yaml",
        [
            "model.input_size=64",
            "model.map_size=8",
            "model.instance_maps=false",
            "loss.contrastive=false",
        ],
    )
    model = build_model(cfg)
    batch = make_batch(2, 2, 8)
    terms = objective_for(cfg, body)(model(batch["images"]), batch)
    assert terms["cont"] == 0 and torch.isfinite(terms["total"])


def test_steps_on_two_d_only_people_keep_every_weight_finite(tiny_cfg, body, make_batch):
    """The paper's mix is mostly 2-D-only corpora (COCO, MPII, LSP, CrowdPose): people without
    3-D joints, pose or betas, and some without any visible joint, must train without NaN."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg)
    objective = objective_for(tiny_cfg, body)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(3):
        batch = make_batch(2, 3, tiny_cfg.model.map_size, seed=10 + step)
        for key in ("keypoints_3d_mask", "pose_mask", "betas_mask"):
            batch[key] = torch.zeros_like(batch[key])
        batch["keypoints_3d"] = torch.full_like(batch["keypoints_3d"], float("nan"))
        batch["keypoints_2d_mask"][0, 0] = False  # a person without a single labelled joint
        terms = objective(
            model(batch["images"]), batch, (model.center_projector, model.joint_projector)
        )
        assert terms["j3d"] == 0 and terms["pa3d"] == 0 and torch.isfinite(terms["total"])
        optimizer.zero_grad()
        terms["total"].backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert all(torch.isfinite(g).all() for g in grads), f"non-finite gradient at step {step}"
        optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
