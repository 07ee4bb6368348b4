import pytest
import roma
import torch

from instancehmr.model.smpl_params import (
    encode_params,
    param_channels,
    rot6d_to_rotmat,
    split_params,
)


def test_layout_sizes():
    assert param_channels("axis_angle") == 82 and param_channels("rot6d") == 145


def test_split_reads_camera_orientation_pose_betas():
    rotvec = torch.randn(2, 21, 3) * 0.3
    orient = roma.random_rotmat(2)
    orient6d = orient[..., :2].flatten(-2)  # first two columns
    raw = torch.cat(
        [
            torch.tensor([[0.0, 0.1, -0.2], [1.0, 0.0, 0.0]]),
            orient6d,
            rotvec.flatten(1),
            torch.ones(2, 10),
        ],
        1,
    )
    p = split_params(raw, "axis_angle")
    assert torch.allclose(p.camera[:, 0], torch.tensor([1.0, 1.1]))
    assert torch.allclose(p.global_orient, orient, atol=1e-5)
    assert torch.allclose(p.body_pose[:, :21], roma.rotvec_to_rotmat(rotvec), atol=1e-5)
    assert torch.allclose(p.body_pose[:, 21:], torch.eye(3).expand(2, 2, 3, 3))
    assert p.axis_angle().shape == (2, 72)
    with pytest.raises(ValueError, match="has 81 channels, expected 82"):
        split_params(raw[:, :81], "axis_angle")


def test_rot6d_gives_rotations():
    r = rot6d_to_rotmat(torch.randn(5, 6))
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3).expand(5, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(5), atol=1e-5)


@pytest.mark.parametrize("representation", ["axis_angle", "rot6d"])
def test_encode_params_inverts_split_params(representation):
    torch.manual_seed(0)
    raw = torch.randn(5, param_channels(representation)) * 0.5
    params = split_params(raw, representation)
    again = split_params(encode_params(params, representation), representation)
    for name in ("camera", "global_orient", "body_pose", "betas"):
        assert torch.allclose(getattr(again, name), getattr(params, name), atol=1e-5), name
