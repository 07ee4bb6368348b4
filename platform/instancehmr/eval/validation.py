"""Validation of a model on letterboxed samples (the training pipeline's batch layout).

Two readings of the same forward pass: mesh errors at ground-truth centers (the release's
protocol: one prediction per labelled person) and center-detection AP of the model's own
detections. Used every epoch by training and by evaluation of the synthetic split.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from instancehmr.eval.metrics import center_ap
from instancehmr.eval.protocols import MeshScorer, merge
from instancehmr.model.decode import find_centers

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
#: A detected center within this share of the map side from a GT center is a true positive.
CENTER_MATCH_FRACTION = 0.04


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float, ImageNet-normalised."""
    x = images.permute(0, 3, 1, 2).float() / 255
    return (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)


@torch.no_grad()
def validate(
    model, body, batches: Iterable[dict], pose_representation: str, device="cpu"
) -> dict[str, float]:
    """Mean MPJPE, PA-MPJPE (SMPL-24 joints, pelvis-aligned) and MPVPE in mm over people with
    those labels, read at GT centers, and center AP over all images, as ``val/...`` metrics."""
    model.eval()
    scorer = MeshScorer(body, model.input_size, pose_representation)
    parts, detections, ground_truth = [], [], []
    for batch in batches:
        batch = {k: torch.as_tensor(v).to(device) for k, v in batch.items()}
        out = model(to_model_input(batch["images"]))
        map_size = out["center_map"].shape[-1]
        parts.append(scorer(out, batch, "gt-centers"))
        found_b, found_xy, scores = find_centers(out["center_map"], threshold=0.05)
        for i in range(len(batch["images"])):
            here = found_b == i
            detections.append((found_xy[here].float().cpu().numpy(), scores[here].cpu().numpy()))
            ground_truth.append(batch["centers"][i][batch["person_mask"][i]].cpu().numpy())
    summary = merge(parts).summary()
    metrics = {f"val/{k}": summary[k] for k in ("mpjpe", "pa_mpjpe", "mpvpe")}
    ap = (
        center_ap(detections, ground_truth, CENTER_MATCH_FRACTION * map_size)
        if detections
        else float("nan")
    )
    metrics["val/center_ap"] = ap
    metrics["val/people"] = summary["people"]
    return metrics
