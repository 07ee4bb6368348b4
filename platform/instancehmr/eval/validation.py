"""Per-epoch validation: the mesh evaluator and the center-AP evaluator of
:mod:`instancehmr.eval.evaluators` on the validation split, as ``val/...`` metrics.

Two readings of the same forward pass: mesh errors at ground-truth centers (the release's
protocol: one prediction per labelled person, SMPL-24 joints, pelvis-aligned, against meshes of
the model's own body) and center-detection AP of the model's own detections, decoded as the
config's ``decode`` section says. Beside the model, the reference predictors of
:mod:`instancehmr.eval.references` are scored on the same people: the oracle always, the
constant predictor when one is given.
"""

from __future__ import annotations

from collections.abc import Iterable

from instancehmr.config import did_you_mean
from instancehmr.eval.benchmarks import SMPL24_PAIRS, Benchmark
from instancehmr.eval.evaluators import CenterAPEvaluator, MeshEvaluator, inference_on_dataset
from instancehmr.eval.protocols import ERRORS, GroundTruthMeshes
from instancehmr.eval.references import ConstantPose

#: The training mix's validation split as a mesh benchmark (its data comes from the pipeline).
VALIDATION = Benchmark("val", "Validation split", None, "val", "mesh", SMPL24_PAIRS)
#: Metric prefix of each row protocol: the model's own (``gt-centers``) and the references'.
PREFIXES = {"gt-centers": "val/", "oracle": "val/oracle_", "constant": "val/constant_"}


def validation_metrics() -> list[str]:
    """The names :func:`validate` reports (``val/mpjpe_vs_constant`` and ``val/constant_*``
    only with a constant predictor), the metrics a run can be judged by."""
    errors = [f"{prefix}{k}" for prefix in PREFIXES.values() for k in ERRORS]
    return [*errors, "val/people", "val/mpjpe_vs_constant", "val/center_ap"]


def check_validation_metric(metric: str) -> None:
    """ValueError, with the closest name, when training reports no validation metric
    ``metric`` (a sweep's or a checkpoint's metric must be one)."""
    names = validation_metrics()
    if metric not in names:
        raise ValueError(
            f"'{metric}' is not a metric validation reports{did_you_mean(metric, names)}; "
            f"it reports {', '.join(names)}"
        )


def validate(
    model, body, batches: Iterable[dict], cfg, device="cpu", constant: ConstantPose | None = None
) -> dict[str, float]:
    """``val/...`` metrics of ``model`` on ``batches`` (the pipeline's samples, arrays or
    tensors): mean MPJPE, PA-MPJPE and MPVPE in mm (``val/mpjpe`` ...) over people with those
    labels and ``val/people``; the same errors of the oracle (``val/oracle_*``, NaN without SMPL
    labels) and, with ``constant``, of the constant predictor (``val/constant_*``) and
    ``val/mpjpe_vs_constant`` (model / constant; below 1 when the model beats it);
    ``val/center_ap`` over all images."""
    evaluators = [
        MeshEvaluator(
            VALIDATION, cfg, body, ("gt-centers",), GroundTruthMeshes({"neutral": body}), constant
        ),
        CenterAPEvaluator(VALIDATION.name, cfg.decode),
    ]
    rows = inference_on_dataset(model, ((None, b) for b in batches), evaluators, device)
    metrics = {f"val/oracle_{k}": float("nan") for k in ERRORS}
    for row in rows:
        if "center_ap" in row:
            metrics["val/center_ap"] = row["center_ap"]
            continue
        prefix = PREFIXES[row["protocol"]]
        metrics.update({f"{prefix}{k}": row[k] for k in ERRORS})
        if row["protocol"] == "gt-centers":
            metrics["val/people"] = row["people"]
    if constant is not None:
        metrics["val/mpjpe_vs_constant"] = metrics["val/mpjpe"] / metrics["val/constant_mpjpe"]
    return metrics
