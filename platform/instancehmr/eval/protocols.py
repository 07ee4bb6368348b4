"""The two evaluation protocols, per ground-truth person, on batches in the pipeline's layout.

* ``gt-centers`` (the release's protocol, comparable with the paper): parameters are read at
  each ground-truth person's center, one prediction per person.
* ``detected`` (the honest one): the model's own detections (center NMS, threshold) are
  matched to people by their projected 2-D joints (Hungarian); an unmatched person is a miss,
  reported as recall, and errors are over matched people.

Errors: MPJPE and PA-MPJPE on a benchmark's joint pairs (:class:`JointPairs`, aligned on the
root pair; MPJPE averaged as the benchmark's protocol averages it, and over each person's
labelled joints), MPVPE against the mesh of the person's SMPL label (of the person's gender
where gendered body models are given), both meshes aligned on their pelvis; millimetres; NaN
where the person lacks the label. Joints without a 3-D label never count, whatever they hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import roma
import torch

from instancehmr.body.joint_sets import CANONICAL_INDEX, smpl24_from_canonical
from instancehmr.data.schema import GENDERS
from instancehmr.eval.benchmarks import PROTOCOLS, SMPL24_PAIRS, JointPairs
from instancehmr.eval.matching import match_people
from instancehmr.eval.metrics import mpjpe, mpvpe, pa_mpjpe
from instancehmr.geometry import normalized_to_pixels
from instancehmr.model.decode import decode_people, people_from_params, read_params
from instancehmr.model.smpl_params import SMPLParams, split_params

SMPL_JOINTS = 24
PELVIS = CANONICAL_INDEX["pelvis"]
#: Occlusion-fraction bins of the synthetic benchmark: [low, high).
OCCLUSION_BINS = {"none": (0.0, 0.1), "partial": (0.1, 0.5), "heavy": (0.5, 1.01)}
ERRORS = ("mpjpe", "pa_mpjpe", "mpvpe")
#: What the scorer fills per person: ERRORS, then MPJPE over each person's labelled joints
#: (equal to ``mpjpe`` unless the joint pairs set ``protocol_joints``).
SCORED = (*ERRORS, "mpjpe_labelled")


@dataclass
class PersonErrors:
    """One entry per ground-truth person: found (matched or read), errors in mm (NaN if not
    found or unlabelled; ``mpjpe`` as the benchmark's protocol averages it, ``mpjpe_labelled``
    over the person's labelled joints), the person's occlusion fraction (NaN if unknown) and
    subset name."""

    found: list[np.ndarray] = field(default_factory=list)
    mpjpe: list[np.ndarray] = field(default_factory=list)
    pa_mpjpe: list[np.ndarray] = field(default_factory=list)
    mpvpe: list[np.ndarray] = field(default_factory=list)
    mpjpe_labelled: list[np.ndarray] = field(default_factory=list)
    occlusion: list[np.ndarray] = field(default_factory=list)
    group: list[np.ndarray] = field(default_factory=list)

    def column(self, name: str) -> np.ndarray:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.zeros(0)

    def summary(self, select: np.ndarray | None = None) -> dict[str, float]:
        """Mean errors over found people, recall, and the person count."""
        found = self.column("found").astype(bool)
        keep = np.ones_like(found) if select is None else select
        out = {
            "people": float(keep.sum()),
            "recall": float(found[keep].mean()) if keep.any() else float("nan"),
        }
        for name in ERRORS:
            values = self.column(name)[keep & found]
            values = values[np.isfinite(values)]
            out[name] = float(values.mean()) if len(values) else float("nan")
        return out

    def labelled_joints(self) -> PersonErrors:
        """The same people with MPJPE averaged over each person's labelled joints in place of
        the protocol's MPJPE."""
        return replace(self, mpjpe=self.mpjpe_labelled)

    def by_occlusion(self) -> dict[str, dict[str, float]]:
        """:meth:`summary` per ``OCCLUSION_BINS`` bin (people with a known occlusion)."""
        occ = self.column("occlusion")
        return {
            level: self.summary((occ >= lo) & (occ < hi))
            for level, (lo, hi) in OCCLUSION_BINS.items()
        }

    def by_group(self) -> dict[str, dict[str, float]]:
        """:meth:`summary` per group, in name order, and ``mean``: the unweighted mean of the
        groups' values (the CMU Panoptic convention); people is their sum."""
        groups = self.column("group")
        out = {g: self.summary(groups == g) for g in sorted(set(groups.tolist()))}
        if out:
            out["mean"] = {
                key: float(np.sum([s[key] for s in out.values()]))
                if key == "people"
                else float(np.mean([s[key] for s in out.values()]))
                for key in ("people", "recall", *ERRORS)
            }
        return out


class GroundTruthMeshes:
    """Meshes of SMPL labels: ``bodies`` maps a gender of ``schema.GENDERS`` to its body
    model; ``neutral`` (required) serves people of other genders when theirs is not given."""

    def __init__(self, bodies: dict):
        if "neutral" not in bodies:
            raise ValueError("GroundTruthMeshes needs a neutral body model")
        self.bodies = bodies

    def __call__(
        self, pose: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """pose (N, 72) axis-angle, betas (N, 10), gender (N,) GENDERS indices -> pelvis-centred
        vertices (N, 6890, 3) and canonical joints (N, 48, 3)."""
        rotmats = roma.rotvec_to_rotmat(pose.view(-1, 24, 3))
        vertices = joints = None
        for code, name in enumerate(GENDERS):
            rows = (gender == code).nonzero(as_tuple=True)[0]
            if not len(rows):
                continue
            out = self.bodies.get(name, self.bodies["neutral"])(
                rotmats[rows, 0], rotmats[rows, 1:], betas[rows]
            )
            if vertices is None:
                vertices = out.vertices.new_zeros((len(pose), *out.vertices.shape[1:]))
                joints = out.joints.new_zeros((len(pose), *out.joints.shape[1:]))
            vertices[rows], joints[rows] = out.vertices, out.joints
        root = joints[:, PELVIS : PELVIS + 1]
        return vertices - root, joints - root


def _nan(n: int) -> torch.Tensor:
    return torch.full((n,), float("nan"))


@dataclass
class MeshScorer:
    """Scores network outputs against a batch: ``body`` turns predicted parameters into
    meshes, ``meshes`` builds the GT meshes (default: ``body`` for everyone), ``pairs`` are
    the 3-D joints compared; ``decode`` (the config's ``decode`` section) serves ``detected``."""

    body: torch.nn.Module
    input_size: int
    representation: str
    decode: object = None
    pairs: JointPairs = SMPL24_PAIRS
    meshes: GroundTruthMeshes | None = None

    def __post_init__(self) -> None:
        if self.meshes is None:
            self.meshes = GroundTruthMeshes({"neutral": self.body})

    def for_protocol(self, name: str) -> Callable[..., PersonErrors]:
        """The scoring method of protocol ``name`` (one of ``PROTOCOLS``): :meth:`at_gt_centers`
        or :meth:`detected`. Raises ValueError naming the known protocols for any other."""
        methods = {"gt-centers": self.at_gt_centers, "detected": self.detected}
        if name not in methods:
            raise ValueError(f"unknown protocol '{name}'; known: {PROTOCOLS}")
        return methods[name]

    @torch.no_grad()
    def at_gt_centers(
        self, outputs: dict, batch: dict, groups: np.ndarray | None = None
    ) -> PersonErrors:
        """Per-person errors of one batch under the ``gt-centers`` protocol: parameters read at
        each ground-truth person's center; ``groups`` (B,) names each image's subset."""
        b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
        raw = read_params(
            outputs["param_map"], b_idx, batch["centers"][b_idx, n_idx].round().long()
        )
        return self.score_params(
            split_params(raw, self.representation, self.body.num_betas), batch, groups
        )

    @torch.no_grad()
    def detected(
        self, outputs: dict, batch: dict, groups: np.ndarray | None = None
    ) -> PersonErrors:
        """Per-person errors of one batch under the ``detected`` protocol: the model's own
        detections matched to the people; an unmatched person is not found (NaN errors)."""
        b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
        found, chosen, people = self._detect(outputs, batch, b_idx, n_idx)
        errors = {name: _nan(len(b_idx)) for name in SCORED}
        if found.any():
            take = torch.from_numpy(chosen[found])
            sub = self._errors(
                people.joints[take], people.vertices[take], batch, b_idx[found], n_idx[found]
            )
            for name, part in sub.items():
                errors[name][torch.from_numpy(found)] = part
        return self._result(batch, groups, found, errors)

    @torch.no_grad()
    def score_params(
        self, params: SMPLParams, batch: dict, groups: np.ndarray | None = None
    ) -> PersonErrors:
        """Per-person errors of one prediction per ground-truth person: ``params`` holds N
        people in the order of ``batch["person_mask"].nonzero()``; everyone counts as found.
        The ``gt-centers`` protocol and the reference predictors
        (:mod:`instancehmr.eval.references`) score through here."""
        b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
        vertices, joints, _ = people_from_params(params, self.body, self.input_size)
        errors = self._errors(joints, vertices, batch, b_idx, n_idx)
        return self._result(batch, groups, np.ones(len(b_idx), bool), errors)

    def _result(self, batch, groups, found: np.ndarray, errors: dict) -> PersonErrors:
        """PersonErrors of one batch: ``found`` and ``errors`` per person, with each person's
        occlusion and (``groups`` (B,) per image) subset."""
        b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
        result = PersonErrors(found=[found])
        result.occlusion.append(batch["occlusion"][b_idx, n_idx].cpu().numpy())
        if groups is not None:
            result.group.append(np.asarray(groups)[b_idx.cpu().numpy()])
        for name, values in errors.items():
            getattr(result, name).append(values.numpy())
        return result

    def _detect(self, outputs, batch, b_idx, n_idx):
        """Decode the model's own people and match them to the batch's people by their 2-D
        SMPL-24 joints: found (P,), index of the chosen detection (P,), the detections."""
        d = self.decode
        people = decode_people(
            outputs, self.body, self.input_size, None, self.representation,
            d.nms_kernel, d.max_people, d.center_threshold,
        )  # fmt: skip
        found = np.zeros(len(b_idx), bool)
        chosen = np.full(len(b_idx), -1)
        gt2d = normalized_to_pixels(batch["keypoints_2d"], self.input_size)
        gt24, valid24 = smpl24_from_canonical(gt2d, batch["keypoints_2d_mask"])
        for b in range(len(batch["images"])):
            rows = np.flatnonzero((b_idx == b).cpu().numpy())
            preds = np.flatnonzero((people.batch_index == b).cpu().numpy())
            pred24 = people.joints_2d[preds][:, :SMPL_JOINTS].cpu().numpy()
            m = match_people(
                pred24, gt24[b, n_idx[rows]].cpu().numpy(), valid24[b, n_idx[rows]].cpu().numpy()
            )
            found[rows[m.pairs[:, 1]]] = True
            chosen[rows[m.pairs[:, 1]]] = preds[m.pairs[:, 0]]
        return found, chosen, people

    def _errors(self, joints, vertices, batch, b_idx, n_idx) -> dict[str, torch.Tensor]:
        """{name of SCORED: (N,) error in mm} of predictions (joints (N, 48, 3), vertices
        (N, 6890, 3)) for the people (b_idx, n_idx) of ``batch``."""
        errors = {name: _nan(len(b_idx)) for name in SCORED}
        gt3d = batch["keypoints_3d"][b_idx, n_idx][:, self.pairs.gt_indices]
        valid = batch["keypoints_3d_mask"][b_idx, n_idx][:, self.pairs.gt_indices]
        has3d = valid[:, 0] & (valid.sum(1) >= 4)
        if has3d.any():
            p, g, v = joints[has3d][:, self.pairs.pred_indices], gt3d[has3d], valid[has3d]
            rows = has3d.cpu()
            protocol = mpjpe(p, g, v, num_joints=self.pairs.protocol_joints)
            errors["mpjpe"][rows] = protocol.float().cpu()
            errors["mpjpe_labelled"][rows] = mpjpe(p, g, v).float().cpu()
            errors["pa_mpjpe"][rows] = pa_mpjpe(p, g, v).float().cpu()
        has_mesh = batch["betas_mask"][b_idx, n_idx] & batch["pose_mask"][b_idx, n_idx]
        if has_mesh.any():
            who = (b_idx[has_mesh], n_idx[has_mesh])
            gv, gj = self.meshes(batch["pose"][who], batch["betas"][who], batch["gender"][who])
            errors["mpvpe"][has_mesh.cpu()] = (
                mpvpe(vertices[has_mesh], gv, joints[has_mesh], gj, (PELVIS,)).float().cpu()
            )
        return errors


def merge(parts: list[PersonErrors]) -> PersonErrors:
    """Concatenate per-batch results."""
    merged = PersonErrors()
    for part in parts:
        for name in ("found", *SCORED, "occlusion", "group"):
            getattr(merged, name).extend(getattr(part, name))
    return merged
