"""Benchmark evaluators behind one interface, after detectron2's ``DatasetEvaluator``:
:meth:`~Evaluator.reset`, :meth:`~Evaluator.process` for every batch of images and the
network's outputs on them, :meth:`~Evaluator.evaluate` for the benchmark's table rows (see
``eval.table.ROW_FIELDS``). :func:`inference_on_dataset` runs a model over a benchmark's shards
and feeds one evaluator; :func:`build_evaluator` gives each benchmark the evaluator its kind
names (``mesh``: :class:`MeshEvaluator`, ``keypoints``: :class:`KeypointEvaluator`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from omegaconf import DictConfig

from instancehmr.body.smpl import BodyModel
from instancehmr.data.pipeline import make_batch
from instancehmr.eval.benchmarks import Benchmark
from instancehmr.eval.keypoint_ap import GroundTruth, keypoint_ap, to_detections
from instancehmr.eval.protocols import GroundTruthMeshes, MeshScorer, PersonErrors, merge
from instancehmr.eval.references import ConstantPose, constant_errors, oracle_errors
from instancehmr.eval.validation import to_model_input
from instancehmr.geometry import letterbox
from instancehmr.model.decode import decode_people

# Imported inside the functions that use them, to keep this module light: pyarrow, tqdm.

BATCH_IMAGES = 16


class Evaluator(Protocol):
    def reset(self) -> None:
        """Forget everything processed so far."""

    def process(self, records, batch: dict[str, torch.Tensor], outputs) -> None:
        """One batch: ``records`` the Arrow records of its images, ``batch`` their samples as
        tensors (``data.pipeline.make_batch``), ``outputs`` the network's maps on them."""

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
        self.bench, self.protocols, self.constant = bench, protocols, constant
        self.scorer = MeshScorer(
            body, cfg.model.input_size, cfg.model.pose_representation, cfg.decode, bench.joints,
            meshes,
        )  # fmt: skip
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
        for p in self.protocols:
            self.parts[p].append(self.scorer(outputs, batch, p, groups))
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


def _batches(model, cfg: DictConfig, files: list[Path], title: str, device) -> Iterator:
    """(Arrow batch of records, samples as tensors, network outputs) over the shards, with a
    progress bar."""
    import pyarrow.parquet as pq
    from tqdm import tqdm

    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    with tqdm(total=total, desc=title, unit="img", mininterval=2.0) as bar:
        for file in files:
            for records in pq.ParquetFile(file).iter_batches(batch_size=BATCH_IMAGES):
                samples = make_batch(records, cfg.model.input_size, cfg.data.max_people, None)
                tensors = {k: torch.as_tensor(v).to(device) for k, v in samples.items()}
                with torch.no_grad():
                    outputs = model(to_model_input(tensors["images"]))
                yield records, tensors, outputs
                bar.update(records.num_rows)


def inference_on_dataset(
    model, cfg: DictConfig, files: list[Path], title: str, evaluator: Evaluator, device
) -> list[dict]:
    """Run ``model`` (eval mode) over the shard ``files`` (``title`` names the progress bar)
    and return ``evaluator``'s rows (reset first)."""
    evaluator.reset()
    for records, batch, outputs in _batches(model, cfg, files, title, device):
        evaluator.process(records, batch, outputs)
    return evaluator.evaluate()
