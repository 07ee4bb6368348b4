"""Validation of a model on letterboxed samples (the training pipeline's batch layout).

Two readings of the same forward pass: mesh errors at ground-truth centers (the release's
protocol: one prediction per labelled person) and center-detection AP of the model's own
detections, decoded as the config's ``decode`` section says. Beside the model, the reference
predictors of :mod:`instancehmr.eval.references` are scored on the same people: the oracle
always, the constant predictor when one is given. Used every epoch by training and by
evaluation of the synthetic split.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from instancehmr.eval.metrics import center_ap
from instancehmr.eval.protocols import MeshScorer, merge
from instancehmr.eval.references import ConstantPose, constant_errors, oracle_errors
from instancehmr.model.decode import find_centers

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
#: A detected center within this share of the map side from a GT center is a true positive ...
CENTER_MATCH_FRACTION = 0.04
#: ... and never nearer than this many map pixels: a perfect integer peak lies up to
#: sqrt(2) / 2 pixels from a center that falls between pixels.
MIN_CENTER_MATCH_PIXELS = 1.0
#: Detections down to this score enter center AP (AP integrates over every threshold).
AP_SCORE_FLOOR = 0.05


def center_match_radius(map_size: int) -> float:
    """Center-AP match radius in map pixels at a map of side ``map_size``."""
    return max(CENTER_MATCH_FRACTION * map_size, MIN_CENTER_MATCH_PIXELS)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float, ImageNet-normalised."""
    x = images.permute(0, 3, 1, 2).float() / 255
    return (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)


@torch.no_grad()
def validate(
    model, body, batches: Iterable[dict], cfg, device="cpu", constant: ConstantPose | None = None
) -> dict[str, float]:
    """``val/...`` metrics of ``model`` on ``batches``: mean MPJPE, PA-MPJPE (SMPL-24 joints,
    pelvis-aligned) and MPVPE in mm over people with those labels, read at GT centers; center AP
    over all images with the config's NMS (``cfg.decode``); the same errors of the oracle
    (``val/oracle_*``) and, with ``constant``, of the constant predictor (``val/constant_*``) and
    ``val/mpjpe_vs_constant`` (model / constant; below 1 when the model beats it)."""
    model.eval()
    scorer = MeshScorer(body, model.input_size, cfg.model.pose_representation)
    parts = {"model": [], "oracle": [], "constant": []}
    detections, ground_truth = [], []
    for batch in batches:
        batch = {k: torch.as_tensor(v).to(device) for k, v in batch.items()}
        out = model(to_model_input(batch["images"]))
        map_size = out["center_heatmap"].shape[-1]
        parts["model"].append(scorer(out, batch, "gt-centers"))
        parts["oracle"].append(oracle_errors(scorer, batch, map_size))
        if constant is not None:
            parts["constant"].append(constant_errors(scorer, constant, batch))
        found_b, found_xy, scores = find_centers(
            out["center_heatmap"], cfg.decode.nms_kernel, cfg.decode.max_people, AP_SCORE_FLOOR
        )
        for i in range(len(batch["images"])):
            here = found_b == i
            detections.append((found_xy[here].float().cpu().numpy(), scores[here].cpu().numpy()))
            ground_truth.append(batch["centers"][i][batch["person_mask"][i]].cpu().numpy())
    metrics = {}
    for name, batches_errors in parts.items():
        if not batches_errors:
            continue
        summary = merge(batches_errors).summary()
        prefix = "val/" if name == "model" else f"val/{name}_"
        metrics.update({f"{prefix}{k}": summary[k] for k in ("mpjpe", "pa_mpjpe", "mpvpe")})
        if name == "model":
            metrics["val/people"] = summary["people"]
    if constant is not None:
        metrics["val/mpjpe_vs_constant"] = metrics["val/mpjpe"] / metrics["val/constant_mpjpe"]
    metrics["val/center_ap"] = (
        center_ap(detections, ground_truth, center_match_radius(map_size))
        if detections
        else float("nan")
    )
    return metrics
