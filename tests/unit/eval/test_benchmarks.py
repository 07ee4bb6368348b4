import pytest

from instancehmr.body.joint_sets import CANONICAL
from instancehmr.data.cards import load_card
from instancehmr.eval.benchmarks import BENCHMARKS, H36M_PAIRS, get_benchmark, panoptic_group
from instancehmr.eval.keypoint_ap import AP_DEFINITIONS


def test_every_benchmark_names_a_split_of_its_card():
    for bench in BENCHMARKS.values():
        card = load_card(bench.card)
        assert bench.split in card.splits, bench.name
        assert (bench.kind == "mesh") == (bench.joints is not None)
        assert (bench.kind == "keypoints") == (bench.keypoint_set is not None)
        if bench.sigmas is not None:
            assert len(bench.sigmas) == len(bench.keypoint_set.joints)
        assert (bench.kind == "keypoints") == (bench.ap_definition in AP_DEFINITIONS)


def test_each_keypoint_benchmark_uses_its_own_ap_definition():
    assert BENCHMARKS["ochuman"].ap_definition == "coco"
    assert BENCHMARKS["crowdpose"].ap_definition == "crowdpose"


def test_panoptic_pairs_root_first_and_the_sequence_groups():
    assert H36M_PAIRS.pred[0] == "h36m_pelvis" and H36M_PAIRS.gt[0] == "pelvis"
    assert len(H36M_PAIRS.pred_indices) == len(H36M_PAIRS.gt_indices) == 14
    assert all(CANONICAL[i].startswith("h36m_") for i in H36M_PAIRS.pred_indices)
    assert panoptic_group("panoptic/test/160422_ultimatum1/00_16/00000010") == "Ultimatum"


def test_unknown_benchmark_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown benchmark 'ochumans'; known: .*'ochuman'"):
        get_benchmark("ochumans")
