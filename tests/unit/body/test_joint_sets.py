import numpy as np
import pytest
import torch

from instancehmr.body.joint_sets import (
    CANONICAL,
    CANONICAL_INDEX,
    COCO17,
    H36M,
    JOINT_SETS,
    MPII16,
    NUM_CANONICAL,
    flip_permutation,
    joint_set,
    smpl24_from_canonical,
)


def test_every_named_set_maps_onto_distinct_canonical_joints():
    assert {
        "smpl24",
        "coco17",
        "crowdpose14",
        "mpii16",
        "lsp14",
        "h36m17",
        "panoptic19",
        "canonical",
    } <= set(JOINT_SETS)
    for s in JOINT_SETS.values():
        assert len(set(s.canonical)) == len(s.canonical), s.name
    assert NUM_CANONICAL == 48 and len(set(CANONICAL)) == 48


def test_to_canonical_and_back():
    values = np.arange(17 * 2, dtype=np.float32).reshape(1, 17, 2)
    valid = np.ones((1, 17), bool)
    valid[0, 3] = False
    out, mask = COCO17.to_canonical(values, valid)
    assert out.shape == (1, 48, 2) and mask.sum() == 16
    left_shoulder = CANONICAL_INDEX["left_shoulder"]
    assert np.array_equal(out[0, left_shoulder], values[0, 5]) and mask[0, left_shoulder]
    assert np.array_equal(COCO17.from_canonical(out), values)
    with pytest.raises(ValueError, match="coco17 has 17 joints"):
        COCO17.to_canonical(np.zeros((1, 16, 2)), np.ones((1, 16), bool))
    with pytest.raises(KeyError, match="unknown joint set 'coco18'"):
        joint_set("coco18")


def test_flip_swaps_left_and_right_only():
    perm = flip_permutation()
    assert CANONICAL[perm[CANONICAL_INDEX["left_wrist"]]] == "right_wrist"
    assert CANONICAL[perm[CANONICAL_INDEX["h36m_right_knee"]]] == "h36m_left_knee"
    assert CANONICAL[perm[CANONICAL_INDEX["nose"]]] == "nose"
    assert np.array_equal(perm[perm], np.arange(NUM_CANONICAL))
    mpii_perm = flip_permutation(MPII16.joints)
    assert MPII16.joints[mpii_perm[0]] == "left_ankle"


def test_smpl24_falls_back_to_h36m_joints():
    h36m = np.random.default_rng(0).normal(size=(1, 17, 2)).astype(np.float32)
    values, valid = H36M.to_canonical(h36m, np.ones((1, 17), bool))
    out, mask = smpl24_from_canonical(torch.from_numpy(values), torch.from_numpy(valid))
    assert mask[0, CANONICAL_INDEX["left_knee"]] and not mask[0, CANONICAL_INDEX["left_collar"]]
    assert torch.equal(out[0, CANONICAL_INDEX["left_knee"]], torch.from_numpy(h36m[0, 5]))
