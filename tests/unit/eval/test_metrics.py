import numpy as np
import pytest
import roma
import torch

from instancehmr.eval.metrics import (
    average_precision,
    center_ap,
    match_centers,
    mpjpe,
    mpvpe,
    pa_mpjpe,
)


def test_identity_gives_zero_and_a_known_offset_gives_its_size():
    gt = torch.randn(3, 24, 3, dtype=torch.float64)
    assert torch.allclose(mpjpe(gt, gt), torch.zeros(3, dtype=torch.float64))
    moved = gt.clone()
    moved[:, 5] += torch.tensor([0.03, 0.04, 0.0], dtype=torch.float64)  # one joint by 5 cm
    assert torch.allclose(mpjpe(moved, gt), torch.full((3,), 50.0 / 24, dtype=torch.float64))
    # A global translation disappears after root alignment.
    assert torch.allclose(mpjpe(gt + 1.0, gt), torch.zeros(3, dtype=torch.float64), atol=1e-9)


def test_rigid_transform_and_scale():
    gt = torch.randn(4, 17, 3, dtype=torch.float64)
    rot = roma.random_rotmat(4, dtype=torch.float64)
    pred = 1.3 * gt @ rot.transpose(1, 2) + 0.5
    assert torch.allclose(pa_mpjpe(pred, gt), torch.zeros(4, dtype=torch.float64), atol=1e-8)
    expected = 1000 * ((1.3 * (gt - gt[:, :1]) @ rot.transpose(1, 2)) - (gt - gt[:, :1])).norm(
        dim=-1
    ).mean(-1)
    assert torch.allclose(mpjpe(pred, gt), expected)


def test_valid_mask_and_mpvpe():
    gt = torch.zeros(1, 4, 3)
    pred = torch.zeros(1, 4, 3)
    pred[0, 3] = torch.tensor([1.0, 0.0, 0.0])
    valid = torch.tensor([[True, True, True, False]])
    assert mpjpe(pred, gt, valid).item() == 0.0
    verts = torch.zeros(1, 10, 3)
    shifted = verts + torch.tensor([0.01, 0.0, 0.0])
    assert mpvpe(shifted, verts, gt[:, :1], gt[:, :1]).item() == pytest.approx(10.0)


def test_average_precision_known_cases():
    assert average_precision(np.array([0.9, 0.8]), np.array([True, True]), 2) == pytest.approx(1.0)
    # A false positive ranked below every true positive does not lower AP.
    assert average_precision(
        np.array([0.9, 0.8, 0.1]), np.array([True, True, False]), 2
    ) == pytest.approx(1.0)
    # FP first, then TP: precision 0.5 at recall 1 for one GT.
    assert average_precision(np.array([0.9, 0.8]), np.array([False, True]), 1) == pytest.approx(0.5)
    # Half the people missed entirely.
    assert average_precision(np.array([0.9]), np.array([True]), 2) == pytest.approx(0.5)


def test_center_matching_counts_misses_and_extras():
    gt = np.array([[10.0, 10.0], [30.0, 30.0]])
    pred = np.array([[11.0, 10.0], [50.0, 50.0], [10.5, 10.0]])
    scores = np.array([0.9, 0.8, 0.7])
    assert match_centers(pred, scores, gt, 2.0).tolist() == [
        True,
        False,
        False,
    ]  # duplicate is an FP
    ap = center_ap([(pred, scores)], [gt], 2.0)
    assert ap == pytest.approx(0.5)  # one of two people found, at precision 1
