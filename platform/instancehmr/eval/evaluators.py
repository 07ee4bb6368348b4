"""Evaluators behind one interface, after detectron2's ``DatasetEvaluator``:
:meth:`~Evaluator.reset`, :meth:`~Evaluator.process` for every batch of images and the
network's outputs on them, :meth:`~Evaluator.evaluate` for table rows (see
``eval.table.ROW_FIELDS``). :func:`inference_on_dataset` runs a model over batches and feeds
evaluators (:func:`shard_batches` reads a benchmark's shards); :func:`build_evaluator` gives each
benchmark the evaluator its kind names (``mesh``: :class:`MeshEvaluator`, ``keypoints``:
:class:`KeypointEvaluator`). Per-epoch validation (:mod:`instancehmr.eval.validation`) is the
mesh evaluator and the :class:`CenterAPEvaluator` on the validation split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from omegaconf import DictConfig

from instancehmr.body.smpl import BodyModel
from instancehmr.data.pipeline import make_batch
from instancehmr.eval.benchmarks import Benchmark
from instancehmr.eval.keypoint_ap import GroundTruth, keypoint_ap, to_detections
from instancehmr.eval.metrics import center_ap, center_match_radius
from instancehmr.eval.protocols import GroundTruthMeshes, MeshScorer, PersonErrors, merge
from instancehmr.eval.references import ConstantPose, constant_errors, oracle_errors
from instancehmr.geometry import letterbox
from instancehmr.model.decode import decode_people, find_centers
from instancehmr.model.network import to_model_input

# Imported inside the functions that use them, to keep this module light: pyarrow, tqdm.

BATCH_IMAGES = 16
#: Detections down to this score enter center AP (AP integrates over every threshold).
AP_SCORE_FLOOR = 0.05


class Evaluator(Protocol):
    def reset(self) -> None:
        """Forget everything processed so far."""

    def process(self, records, batch: dict[str, torch.Tensor], outputs) -> None:
        """One batch: ``records`` the Arrow records of its images (None where the batches come
        from the training pipeline), ``batch`` their samples as tensors
        (``data.pipeline.make_batch``), ``outputs`` the network's maps on them."""

    def evaluate(self) -> list[dict]:
        """The benchmark's table rows from everything processed since :meth:`reset`."""


class MeshEvaluator:
    """Per-person mesh errors (``eval.protocols.MeshScorer``) under each of ``protocols``, then
    the reference predictors of :mod:`instancehmr.eval.references` as rows of protocol
    ``constant`` (with ``constant``, the model's training data's) and ``oracle`` (when the
    benchmark has SMPL labels): all people, then each subset (groups and their mean, or
    occlusion levels); where the benchmark's protocol averages MPJPE over a full skeleton (its
    joint pairs' ``protocol_joints``), the same rows again as ``labelled:<subset>`` with MPJPE
    over each person's labelled joints."""

    def __init__(
        self,
        bench: Benchmark,
        cfg: DictConfig,
        body: BodyModel,
        protocols: tuple[str, ...],
        meshes: GroundTruthMeshes,
        constant: ConstantPose | None,
    ) -> None:
        self.bench, self.constant = bench, constant
        self.scorer = MeshScorer(
            body, cfg.model.input_size, cfg.model.pose_representation, cfg.decode, bench.joints,
            meshes,
        )  # fmt: skip
        self.protocols = {p: self.scorer.for_protocol(p) for p in protocols}
        self.reset()

    def reset(self) -> None:
        self.parts: dict[str, list[PersonErrors]] = {
            p: [] for p in (*self.protocols, "constant", "oracle")
        }

    def process(self, records, batch, outputs) -> None:
        groups = None
        if self.bench.group is not None:
            ids = records.column("sample_id").to_pylist()
            groups = np.array([self.bench.group(s) for s in ids])
        for p, score in self.protocols.items():
            self.parts[p].append(score(outputs, batch, groups))
        if self.constant is not None:
            self.parts["constant"].append(
                constant_errors(self.scorer, self.constant, batch, groups)
            )
        map_size = outputs["param_map"].shape[-1]
        self.parts["oracle"].append(oracle_errors(self.scorer, batch, map_size, groups))

    def evaluate(self) -> list[dict]:
        rows = []
        for p, batches in self.parts.items():
            if not batches:
                continue
            errors = merge(batches)
            if p == "oracle" and not np.isfinite(errors.column("mpjpe")).any():
                continue  # no SMPL labels: nothing to read back
            subsets = self._subsets(errors)
            if self.bench.joints.protocol_joints is not None:
                labelled = self._subsets(errors.labelled_joints())
                subsets.update({f"labelled:{k}": v for k, v in labelled.items()})
            for name, summary in subsets.items():
                rows.append({"benchmark": self.bench.name, "protocol": p, "subset": name,
                             **summary})  # fmt: skip
        return rows

    def _subsets(self, errors: PersonErrors) -> dict[str, dict[str, float]]:
        """{subset: summary}: ``all`` people, then the benchmark's groups and their mean, or
        its occlusion levels."""
        subsets = {"all": errors.summary()}
        if self.bench.group is not None:
            subsets.update(errors.by_group())
        if self.bench.by_occlusion:
            subsets.update({f"occlusion:{k}": v for k, v in errors.by_occlusion().items()})
        return subsets


class CenterAPEvaluator:
    """Center-detection AP of the model's center heatmap: peaks found with the config's NMS
    (``decode``) down to ``AP_SCORE_FLOOR``, matched to the people's centers within
    :func:`~instancehmr.eval.metrics.center_match_radius`; one row, protocol ``detected``,
    with ``center_ap`` (NaN without images)."""

    def __init__(self, name: str, decode: DictConfig) -> None:
        self.name, self.decode = name, decode
        self.reset()

    def reset(self) -> None:
        self.detections: list[tuple[np.ndarray, np.ndarray]] = []
        self.ground_truth: list[np.ndarray] = []
        self.map_size = 0

    def process(self, records, batch, outputs) -> None:
        heatmap = outputs["center_heatmap"]
        self.map_size = heatmap.shape[-1]
        found_b, found_xy, scores = find_centers(
            heatmap, self.decode.nms_kernel, self.decode.max_people, AP_SCORE_FLOOR
        )
        for i in range(len(heatmap)):
            here = found_b == i
            self.detections.append(
                (found_xy[here].float().cpu().numpy(), scores[here].cpu().numpy())
            )
            self.ground_truth.append(batch["centers"][i][batch["person_mask"][i]].cpu().numpy())

    def evaluate(self) -> list[dict]:
        ap = (
            center_ap(self.detections, self.ground_truth, center_match_radius(self.map_size))
            if self.detections
            else float("nan")
        )
        return [{"benchmark": self.name, "protocol": "detected", "subset": "all",
                 "images": float(len(self.detections)), "center_ap": ap}]  # fmt: skip


class KeypointEvaluator:
    """OKS AP of the model's detections (projected mesh joints mapped to the benchmark's
    keypoints, scored by their center confidence) against the benchmark's annotation file, by
    its AP definition: one row, protocol ``detected`` (AP is a detection metric)."""

    def __init__(
        self, bench: Benchmark, cfg: DictConfig, body: BodyModel, ground_truth: GroundTruth
    ) -> None:
        self.bench, self.cfg, self.body, self.ground_truth = bench, cfg, body, ground_truth
        self.ids = {str(image_id): image_id for image_id in ground_truth.index.imgs}
        self.reset()

    def reset(self) -> None:
        self.detections: list[dict] = []
        self.images = 0

    def process(self, records, batch, outputs) -> None:
        cfg, d = self.cfg, self.cfg.decode
        device = outputs["param_map"].device
        sizes = records.select(["height", "width"]).to_pylist()
        transforms = torch.stack(
            [letterbox(r["height"], r["width"], cfg.model.input_size) for r in sizes]
        )
        people = decode_people(
            outputs, self.body, cfg.model.input_size, transforms.to(device),
            cfg.model.pose_representation, d.nms_kernel, d.max_people, d.center_threshold,
        )  # fmt: skip
        sample_ids = records.column("sample_id").to_pylist()
        image_ids = [
            self.ids[sample_ids[b].rsplit("/", 1)[-1]] for b in people.batch_index.tolist()
        ]
        joints = people.joints_2d[:, self.bench.keypoint_set.canonical_indices].cpu().numpy()
        self.detections += to_detections(
            joints, people.score.cpu().numpy(), image_ids, self.ground_truth.category_id
        )
        self.images += records.num_rows

    def evaluate(self) -> list[dict]:
        gt = self.ground_truth
        people = sum(1 for a in gt.index.anns.values() if not a["iscrowd"])
        return [
            {
                "benchmark": self.bench.name,
                "protocol": "detected",
                "subset": "all",
                "images": float(self.images),
                "people": float(people),
                **keypoint_ap(gt, self.detections, self.bench.sigmas),
            }
        ]


def build_evaluator(
    bench: Benchmark,
    cfg: DictConfig,
    body: BodyModel,
    protocols: tuple[str, ...],
    meshes: Callable[[BodyModel, DictConfig], GroundTruthMeshes],
    constant: ConstantPose | None,
    ground_truth: GroundTruth | None,
) -> Evaluator:
    """The evaluator a benchmark's kind names: ``mesh`` scores meshes under ``protocols`` with
    ground-truth meshes from ``meshes(body, cfg.body)`` and the ``constant`` reference;
    ``keypoints`` scores AP against ``ground_truth``."""
    if bench.kind == "mesh":
        return MeshEvaluator(bench, cfg, body, protocols, meshes(body, cfg.body), constant)
    if bench.kind == "keypoints":
        return KeypointEvaluator(bench, cfg, body, ground_truth)
    raise ValueError(f"benchmark {bench.name}: unknown kind '{bench.kind}'")


def shard_batches(cfg: DictConfig, files: list[Path], title: str) -> Iterator:
    """(Arrow batch of records, samples as arrays) of ``BATCH_IMAGES`` images over the shard
    ``files``, letterboxed to the config's input size, with a progress bar named ``title``."""
    import pyarrow.parquet as pq
    from tqdm import tqdm

    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    with tqdm(total=total, desc=title, unit="img", mininterval=2.0) as bar:
        for file in files:
            for records in pq.ParquetFile(file).iter_batches(batch_size=BATCH_IMAGES):
                yield records, make_batch(records, cfg.model.input_size, cfg.data.max_people, None)
                bar.update(records.num_rows)


@torch.no_grad()
def inference_on_dataset(
    model, batches: Iterable[tuple], evaluators: list[Evaluator], device
) -> list[dict]:
    """Run ``model`` (put in eval mode) over ``batches`` of (records or None, samples as arrays
    or tensors) and return the rows of every evaluator in turn (each reset first)."""
    model.eval()
    for evaluator in evaluators:
        evaluator.reset()
    for records, samples in batches:
        batch = {k: torch.as_tensor(v).to(device) for k, v in samples.items()}
        outputs = model(to_model_input(batch["images"]))
        for evaluator in evaluators:
            evaluator.process(records, batch, outputs)
    return [row for evaluator in evaluators for row in evaluator.evaluate()]
