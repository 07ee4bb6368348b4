import torch

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.body.pose import JOINT_LIMITS, flip_pose


def test_limits_are_ordered_and_mirrored():
    assert JOINT_LIMITS.shape == (24, 3, 2)
    assert (JOINT_LIMITS[..., 0] <= JOINT_LIMITS[..., 1]).all()
    left, right = CANONICAL_INDEX["left_elbow"], CANONICAL_INDEX["right_elbow"]
    assert JOINT_LIMITS[left, 1, 0] == -JOINT_LIMITS[right, 1, 1]  # elbow flexion mirrors in y
    assert JOINT_LIMITS[CANONICAL_INDEX["left_knee"], 0, 0] == 0  # knees do not hyperextend


def test_flip_pose_is_an_involution_that_swaps_sides():
    pose = torch.randn(3, 24, 3)
    flipped = flip_pose(pose)
    assert torch.allclose(flip_pose(flipped), pose)
    left, right = CANONICAL_INDEX["left_shoulder"], CANONICAL_INDEX["right_shoulder"]
    assert torch.allclose(flipped[:, right], pose[:, left] * torch.tensor([1.0, -1.0, -1.0]))
