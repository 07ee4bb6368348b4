"""Reference predictors printed beside a model in every mesh table, so a reader sees at once how
far a number is from the trivial and from the best possible one.

* **constant**: one body for everyone, the mean of the training data's SMPL labels: the
  chordal mean on SO(3) of the global orientations (the rotation nearest, in Frobenius norm, to
  the mean rotation matrix: Hartley et al., "Rotation Averaging", IJCV 2013, section 5.3), the
  mean body pose (axis-angle, joints 1-23) and the mean betas. A model that does not beat it
  has learned nothing person-specific.
* **oracle**: the ground-truth parameters written into a parameter map at each person's
  rounded center (in person order: a person sharing a center pixel with an earlier one
  overwrites it) and read back through the model's own decoding at the ground-truth centers.
  Its error is what the map resolution costs: 0 where no two people share a center pixel.

Both are scored at every ground-truth person (the ``gt-centers`` reading) by
:meth:`instancehmr.eval.protocols.MeshScorer.score_params`; only people with the label a metric
needs count.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from instancehmr.atomic import write_text_atomically
from instancehmr.data.cards import load_card
from instancehmr.eval.protocols import SCORED, MeshScorer, PersonErrors
from instancehmr.model.decode import read_params
from instancehmr.model.smpl_params import SMPLParams, encode_params, split_params

# Imported inside the functions that use them, to keep this module light: pyarrow.

#: Cached label sums of one corpus's training shards, beside its manifest.
STATISTICS_FILE = "smpl_label_sums.json"
REFERENCES = ("constant", "oracle")


@dataclass(frozen=True)
class LabelSums:
    """Sums of one corpus's SMPL labels: ``posed`` people with a pose (GT or EFT), the sum of
    their orientation matrices (3, 3) and body poses (69,) axis-angle; ``shaped`` people with
    betas and the sum of their betas (10,)."""

    posed: int
    orientation: list
    body_pose: list
    shaped: int
    betas: list


@dataclass(frozen=True)
class ConstantPose:
    """The constant predictor: global orientation (3, 3), body pose (69,) axis-angle of joints
    1-23 and betas (10,), with the number of labelled people each comes from."""

    global_orient: list
    body_pose: list
    betas: list
    posed: int
    shaped: int

    def params(self, n: int, device=None) -> SMPLParams:
        """The same :class:`SMPLParams` for ``n`` people (camera (1, 0, 0))."""
        orient = torch.tensor(self.global_orient, dtype=torch.float32, device=device)
        body = roma.rotvec_to_rotmat(
            torch.tensor(self.body_pose, dtype=torch.float32, device=device).view(23, 3)
        )
        betas = torch.tensor(self.betas, dtype=torch.float32, device=device)
        camera = torch.tensor([1.0, 0.0, 0.0], device=device)
        return SMPLParams(
            camera=camera.expand(n, 3),
            global_orient=orient.expand(n, 3, 3),
            body_pose=body.expand(n, 23, 3, 3),
            betas=betas.expand(n, -1),
        )


def label_sums(files: list[Path]) -> LabelSums:
    """Sums of the SMPL labels of every person in Parquet shards ``files`` (the image record's
    ``smpl_pose`` (72,) and ``smpl_betas`` (10,), null where a person has none)."""
    import pyarrow.parquet as pq

    posed, shaped = 0, 0
    orientation, body_pose, betas = np.zeros((3, 3)), np.zeros(69), np.zeros(10)
    for file in files:
        table = pq.read_table(file, columns=["smpl_pose", "smpl_betas"])
        for name in ("smpl_pose", "smpl_betas"):
            people = table.column(name).combine_chunks().flatten()  # a list per person or null
            values = people.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
            if name == "smpl_pose":
                pose = values.reshape(-1, 72)
                posed += len(pose)
                rotations = roma.rotvec_to_rotmat(torch.from_numpy(pose[:, :3]))
                orientation += rotations.sum(0).numpy()
                body_pose += pose[:, 3:].sum(0)
            else:
                shape = values.reshape(-1, 10)
                shaped += len(shape)
                betas += shape.sum(0)
    return LabelSums(posed, orientation.tolist(), body_pose.tolist(), shaped, betas.tolist())


def cached_label_sums(corpus_dir: Path, split: str = "train") -> LabelSums:
    """:func:`label_sums` of a corpus's ``split`` shards, cached in ``corpus_dir`` under
    :data:`STATISTICS_FILE` and computed again when the manifest's content hash changes."""
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    key = {"content_hash": manifest["content_hash"], "split": split}
    cache = corpus_dir / STATISTICS_FILE
    try:
        cached = json.loads(cache.read_text())
        if cached["key"] == key:
            return LabelSums(**cached["sums"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    sums = label_sums(sorted((corpus_dir / split).glob("part-*.parquet")))
    write_text_atomically(cache, json.dumps({"key": key, "sums": asdict(sums)}))
    return sums


def constant_pose(corpora: list[tuple[Path, float]]) -> ConstantPose | None:
    """The constant predictor of a training mix: ``corpora`` are (corpus shard folder, mix
    weight); each corpus's mean label counts with its weight, corpora without the label not at
    all. None when no corpus has SMPL pose labels (betas default to 0 when none has betas)."""
    sums = [(cached_label_sums(folder), weight) for folder, weight in corpora]
    posed = [(s, w) for s, w in sums if s.posed]
    if not posed:
        return None
    total = sum(w for _, w in posed)
    mean_rotation = sum(w * np.asarray(s.orientation) / s.posed for s, w in posed) / total
    orient = roma.special_procrustes(torch.from_numpy(mean_rotation)).numpy()  # chordal mean
    body_pose = sum(w * np.asarray(s.body_pose) / s.posed for s, w in posed) / total
    shaped = [(s, w) for s, w in sums if s.shaped]
    betas = (
        sum(w * np.asarray(s.betas) / s.shaped for s, w in shaped) / sum(w for _, w in shaped)
        if shaped
        else np.zeros(10)
    )
    return ConstantPose(
        orient.tolist(),
        body_pose.tolist(),
        betas.tolist(),
        sum(s.posed for s, _ in posed),
        sum(s.shaped for s, _ in shaped),
    )


def training_constant(cfg) -> ConstantPose | None:
    """:func:`constant_pose` of an experiment's ``data.mix`` (its prepared ``train`` shards);
    None when a corpus's shards are missing or no corpus has SMPL labels."""

    corpora = []
    for entry in cfg.data.mix:
        card = load_card(entry.card)
        folder = Path(cfg.data.shards_dir) / card.name
        if not (folder / "manifest.json").is_file():
            return None
        corpora.append(
            (folder, float(entry.weight if entry.weight is not None else card.mix_weight))
        )
    return constant_pose(corpora)


def constant_errors(
    scorer: MeshScorer, constant: ConstantPose, batch: dict, groups=None
) -> PersonErrors:
    """The constant predictor's per-person errors on one batch (every GT person)."""
    n = int(batch["person_mask"].sum())
    return scorer.score_params(constant.params(n, batch["person_mask"].device), batch, groups)


def oracle_errors(scorer: MeshScorer, batch: dict, map_size: int, groups=None) -> PersonErrors:
    """The oracle's per-person errors on one batch: ground-truth parameters through a parameter
    map of ``map_size`` (see the module docstring); people without pose and betas labels get
    NaN errors."""
    b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
    labelled = (batch["pose_mask"] & batch["betas_mask"])[b_idx, n_idx]
    rotmats = roma.rotvec_to_rotmat(batch["pose"][b_idx, n_idx].view(-1, 24, 3).float())
    truth = SMPLParams(
        camera=rotmats.new_tensor([1.0, 0.0, 0.0]).expand(len(b_idx), 3),
        global_orient=rotmats[:, 0],
        body_pose=rotmats[:, 1:],
        betas=batch["betas"][b_idx, n_idx].float(),
    )
    raw = encode_params(truth, scorer.representation)
    centers = batch["centers"][b_idx, n_idx].round().long().clamp(0, map_size - 1)
    param_map = raw.new_zeros(len(batch["person_mask"]), raw.shape[1], map_size, map_size)
    for k in labelled.nonzero(as_tuple=True)[0].tolist():  # in order: later people overwrite
        param_map[b_idx[k], :, centers[k, 1], centers[k, 0]] = raw[k]
    read = split_params(
        read_params(param_map, b_idx, centers), scorer.representation, scorer.body.num_betas
    )
    result = scorer.score_params(read, batch, groups)
    unlabelled = ~labelled.cpu().numpy()
    for name in SCORED:
        getattr(result, name)[0][unlabelled] = np.nan
    return result
