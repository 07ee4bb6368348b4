"""The reference predictors: the constant body from the training labels (a hand computation on
planted shards) and the oracle that reads the ground truth back through the decoding."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import roma
import torch

from instancehmr.body.joint_sets import COCO17
from instancehmr.data.schema import VIS_VISIBLE, ImageRecord, Person, to_table
from instancehmr.eval.protocols import MeshScorer, merge
from instancehmr.eval.references import (
    STATISTICS_FILE,
    constant_errors,
    constant_pose,
    oracle_errors,
)


def write_corpus(folder, people: list[tuple[np.ndarray | None, np.ndarray | None]]) -> None:
    """A corpus of one image per person: (pose (72,) or None, betas (10,) or None), a manifest."""
    records = []
    for k, (pose, betas) in enumerate(people):
        person = Person.from_joint_set(
            COCO17, np.full((17, 2), 4.0), np.full(17, VIS_VISIBLE),
            smpl_pose=pose, smpl_betas=betas,
            smpl_source="none" if pose is None else ("gt" if betas is not None else "eft"),
        )  # fmt: skip
        records.append(ImageRecord(f"c/train/{k}", "c", "train", b"x", "png", 8, 8, [person]))
    (folder / "train").mkdir(parents=True)
    pq.write_table(to_table(records), folder / "train" / "part-00000.parquet")
    (folder / "manifest.json").write_text(json.dumps({"content_hash": str(len(people))}))


def pose_about_z(degrees: float, body_value: float) -> np.ndarray:
    pose = np.full(72, body_value, np.float32)
    pose[:3] = [0.0, 0.0, math.radians(degrees)]
    return pose


def test_the_constant_is_the_chordal_mean_orientation_and_the_mean_pose_and_betas(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_corpus(a, [
        (pose_about_z(0, 0.1), np.full(10, 1.0, np.float32)),
        (pose_about_z(90, 0.3), None),  # an EFT fit: pose, no betas
        (None, None),  # no SMPL label
    ])  # fmt: skip
    write_corpus(b, [(pose_about_z(90, 0.5), np.full(10, 3.0, np.float32))])
    constant = constant_pose([(a, 1.0)])
    # Two rotations about z, 0 and 90 degrees: their chordal mean is 45 degrees about z.
    expected = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, math.pi / 4], dtype=torch.float64))
    np.testing.assert_allclose(constant.global_orient, expected.numpy(), atol=1e-9)
    np.testing.assert_allclose(constant.body_pose, np.full(69, 0.2), atol=1e-6)
    np.testing.assert_allclose(constant.betas, np.ones(10), atol=1e-6)
    assert (constant.posed, constant.shaped) == (2, 1)
    # Two corpora, weights 1 and 3: each corpus's mean counts with its weight.
    mixed = constant_pose([(a, 1.0), (b, 3.0)])
    np.testing.assert_allclose(mixed.body_pose, np.full(69, (0.2 + 3 * 0.5) / 4), atol=1e-6)
    np.testing.assert_allclose(mixed.betas, np.full(10, (1.0 + 3 * 3.0) / 4), atol=1e-6)
    angle = roma.rotmat_to_rotvec(torch.tensor(mixed.global_orient))[2]
    # corpus a's mean matrix (R(0) + R(90)) / 2 with weight 1, corpus b's R(90) with weight 3:
    # [[c, -s], [s, c]] with c = (0.5 + 3 * 0) / 4, s = (0.5 + 3 * 1) / 4, projected onto SO(3)
    assert float(angle) == pytest.approx(math.atan2((0.5 + 3) / 4, 0.5 / 4), abs=1e-6)
    assert (a / STATISTICS_FILE).is_file()  # cached beside the manifest
    assert constant_pose([(tmp_path / "none", 1.0)] * 0) is None


def test_no_smpl_labels_give_no_constant(tmp_path):
    write_corpus(tmp_path / "c", [(None, None)])
    assert constant_pose([(tmp_path / "c", 1.0)]) is None


def with_eval_keys(batch: dict) -> dict:
    for key in ("pose_mask", "betas_mask"):  # the factory shares person_mask among them
        batch[key] = batch[key].clone()
    batch["occlusion"] = torch.full(batch["person_mask"].shape, float("nan"))
    batch["gender"] = torch.zeros(batch["person_mask"].shape, dtype=torch.long)
    return batch


def test_the_oracle_is_zero_unless_two_people_share_a_center_pixel(body, make_batch):
    batch = with_eval_keys(make_batch(2, 3, 16, seed=3))
    scorer = MeshScorer(body, 128, "axis_angle")
    errors = merge([oracle_errors(scorer, batch, 16)])
    assert np.nanmax(errors.column("mpjpe")) < 0.5 and np.nanmax(errors.column("mpvpe")) < 0.5
    # The second person of image 0 moves onto the first one's center pixel: it overwrites it.
    b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
    first, second = [k for k in range(len(b_idx)) if b_idx[k] == 0][:2]
    batch["centers"][0, n_idx[second]] = batch["centers"][0, n_idx[first]]
    shared = merge([oracle_errors(scorer, batch, 16)]).column("mpjpe")
    assert shared[first] > 10 and shared[second] < 0.5
    batch["pose_mask"][0, n_idx[first]] = False  # without its label a person is not scored
    assert math.isnan(merge([oracle_errors(scorer, batch, 16)]).column("mpjpe")[first])


def test_the_constant_scores_one_body_for_everyone(body, make_batch, tmp_path):
    batch = with_eval_keys(make_batch(2, 3, 16, seed=4))
    b_idx, n_idx = batch["person_mask"].nonzero(as_tuple=True)
    write_corpus(tmp_path / "c", [(batch["pose"][b_idx[0], n_idx[0]].numpy(),
                                   batch["betas"][b_idx[0], n_idx[0]].numpy())])  # fmt: skip
    constant = constant_pose([(tmp_path / "c", 1.0)])
    errors = merge([constant_errors(MeshScorer(body, 128, "axis_angle"), constant, batch)])
    mpjpe = errors.column("mpjpe")
    assert mpjpe[0] < 0.5 and (mpjpe[1:] > 1).all()  # exact for the person it was made from
