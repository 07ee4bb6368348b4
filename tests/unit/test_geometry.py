import roma
import torch

from instancehmr.geometry import (
    apply_affine,
    invert_affine,
    letterbox,
    normalized_to_pixels,
    pixels_to_normalized,
    procrustes_align,
    weak_perspective_project,
)


def test_procrustes_recovers_rotation_scale_translation():
    torch.manual_seed(0)
    x = torch.randn(8, 24, 3, dtype=torch.float64)
    rot = roma.random_rotmat(8, dtype=torch.float64)
    scale = torch.rand(8, dtype=torch.float64) * 2 + 0.3
    shift = torch.randn(8, 1, 3, dtype=torch.float64)
    y = scale[:, None, None] * x @ rot.transpose(1, 2) + shift
    assert torch.allclose(procrustes_align(x, y), y, atol=1e-10)


def test_procrustes_uses_only_masked_joints():
    torch.manual_seed(1)
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    y = x @ roma.random_rotmat(2, dtype=torch.float64).transpose(1, 2)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, :5] = True
    y_corrupt = y.clone()
    y_corrupt[:, 5:] += 100.0
    aligned = procrustes_align(x, y_corrupt, mask)
    assert torch.allclose(aligned[:, :5], y[:, :5], atol=1e-10)


def test_procrustes_never_reflects():
    x = torch.randn(1, 12, 3, dtype=torch.float64)
    mirrored = x * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    aligned = procrustes_align(x, mirrored)
    # The best proper rotation cannot reproduce a mirror image exactly.
    assert (aligned - mirrored).abs().max() > 1e-3


def test_procrustes_keeps_a_diverged_row_non_finite_instead_of_raising():
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    y = x + 1.0
    x[1, 3] = float("nan")  # a diverged prediction: the SVD alone would raise on it
    aligned = procrustes_align(x, y)
    assert torch.allclose(aligned[0], y[0], atol=1e-10)
    assert not torch.isfinite(aligned[1]).any()


def test_letterbox_round_trip_and_edges():
    affine = letterbox(480, 640, 512)
    corners = torch.tensor([[-0.5, -0.5], [639.5, 479.5]])
    mapped = apply_affine(corners, affine)
    assert torch.allclose(mapped, torch.tensor([[-0.5, 63.5], [511.5, 447.5]]))
    pts = torch.rand(7, 2) * 400
    assert torch.allclose(
        apply_affine(apply_affine(pts, affine), invert_affine(affine)), pts, atol=1e-3
    )


def test_normalized_pixels_and_projection():
    p = torch.tensor([[-1.0, 1.0], [0.0, 0.0]])
    assert torch.allclose(normalized_to_pixels(p, 64), torch.tensor([[-0.5, 63.5], [31.5, 31.5]]))
    assert torch.allclose(pixels_to_normalized(normalized_to_pixels(p, 64), 64), p)
    points = torch.tensor([[[0.5, -0.25, 3.0]]])
    camera = torch.tensor([[2.0, 0.1, -0.1]])
    assert torch.allclose(weak_perspective_project(points, camera), torch.tensor([[[1.1, -0.6]]]))


def test_procrustes_gradient_is_finite_for_people_without_enough_3d_joints():
    """A person whose 3-D joints are all invalid (2-D-only corpora) or degenerate must not put a
    NaN into the gradient of the others: the SVD of a zero covariance has a NaN backward."""
    torch.manual_seed(0)
    pred = torch.randn(4, 17, 3, requires_grad=True)
    target = torch.randn(4, 17, 3)
    mask = torch.zeros(4, 17, dtype=torch.bool)
    mask[0] = True  # a labelled person
    mask[2, :2] = True  # two joints: too few
    mask[3] = True
    target[3] = 0.0  # every joint at one point: zero covariance
    aligned = procrustes_align(pred, target, mask)
    aligned[0].sum().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0].abs().sum() > 0
    assert torch.isfinite(aligned).all()


def test_procrustes_ignores_whatever_masked_joints_hold():
    torch.manual_seed(1)
    pred, target = torch.randn(1, 10, 3), torch.randn(1, 10, 3)
    mask = torch.ones(1, 10, dtype=torch.bool)
    mask[0, 7] = False
    clean = procrustes_align(pred, target, mask)
    target[0, 7], pred[0, 7] = float("nan"), float("inf")
    dirty = procrustes_align(pred, target, mask)
    assert torch.allclose(clean[0, mask[0]], dirty[0, mask[0]])
