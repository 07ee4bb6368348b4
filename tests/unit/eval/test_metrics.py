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


def test_masked_joints_never_count_whatever_they_hold():
    """NaN or inf at a joint whose valid flag is False changes nothing (NaN * 0 is NaN)."""
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    pred = gt + 0.05 * torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    valid = torch.tensor([[True] * 5 + [False], [True, True, True, True, False, False]])
    clean = {"mpjpe": mpjpe(pred, gt, valid), "pa_mpjpe": pa_mpjpe(pred, gt, valid)}
    assert all(torch.isfinite(v).all() for v in clean.values())
    dirty_gt, dirty_pred = gt.clone(), pred.clone()
    dirty_gt[0, 5], dirty_pred[0, 5] = float("nan"), float("inf")
    dirty_gt[1, 4:], dirty_pred[1, 4] = float("inf"), float("nan")
    assert torch.allclose(mpjpe(dirty_pred, dirty_gt, valid), clean["mpjpe"])
    assert torch.allclose(pa_mpjpe(dirty_pred, dirty_gt, valid), clean["pa_mpjpe"])
    # Equal to the error over the valid joints alone.
    alone = mpjpe(pred[1:, :4], gt[1:, :4])
    assert torch.allclose(clean["mpjpe"][1:], alone)


def test_no_root_or_no_valid_joint_gives_nan_not_a_number_that_looks_like_data():
    gt = torch.zeros(2, 4, 3)
    pred = torch.ones(2, 4, 3)
    valid = torch.tensor([[False, True, True, True], [False, False, False, False]])
    assert torch.isnan(mpjpe(pred, gt, valid)).all()  # root (joint 0) unlabelled
    assert torch.isnan(pa_mpjpe(pred, gt, valid))[1]
    assert mpjpe(pred, gt, valid, root=(1,))[0].item() == pytest.approx(0.0)


def test_protocol_joint_count_counts_unlabelled_joints_as_zero_error():
    """The CMU Panoptic protocol (CRMH, ROMP) divides each person's summed error by the 17
    Human3.6M joints; the labelled-joints mean divides by the labelled ones (here 14 and 7)."""
    gt = torch.zeros(2, 14, 3, dtype=torch.float64)
    gt[:, :, 0] = torch.arange(14) * 0.1  # distinct joints; joint 0 is the root
    pred = gt.clone()
    pred[0, 5, 1] += 0.17  # person 0: all 14 labelled, one joint 17 cm off
    pred[1, 3, 2] += 0.34  # person 1: root and 6 more labelled, one of them 34 cm off
    valid = torch.ones(2, 14, dtype=torch.bool)
    valid[1, 7:] = False
    gt[1, 7:] = float("nan")  # and what the unlabelled joints hold does not matter
    protocol = mpjpe(pred, gt, valid, num_joints=17)
    labelled = mpjpe(pred, gt, valid)
    assert protocol.tolist() == pytest.approx([170 / 17, 340 / 17])  # 10.0, 20.0
    assert labelled.tolist() == pytest.approx([170 / 14, 340 / 7])  # 12.14, 48.57
    assert protocol.mean().item() == pytest.approx(15.0)
    assert labelled.mean().item() == pytest.approx(30.357, abs=1e-3)
