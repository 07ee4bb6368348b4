import numpy as np

from instancehmr.eval.matching import match_people


def people(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 17, 2)) * 50 + np.arange(n)[:, None, None] * 200


def test_a_missing_and_an_extra_person_are_both_counted():
    gt = people(3)
    valid = np.ones((3, 17), bool)
    extra = people(1, seed=5) + 1000  # far from everyone
    pred = np.concatenate([gt[[2, 0]] + 1.0, extra])  # person 1 missed, order shuffled
    m = match_people(pred, gt, valid)
    assert sorted(map(tuple, m.pairs.tolist())) == [(0, 2), (1, 0)]
    assert m.misses.tolist() == [1] and m.false_positives.tolist() == [2]


def test_unlabelled_joints_do_not_count_and_empty_inputs():
    gt = people(1)
    valid = np.zeros((1, 17), bool)
    valid[0, :5] = True
    pred = gt.copy()
    pred[0, 5:] += 500  # wrong only where the person is unlabelled
    assert match_people(pred, gt, valid).pairs.tolist() == [[0, 0]]
    empty = match_people(np.zeros((0, 17, 2)), gt, valid)
    assert empty.misses.tolist() == [0] and len(empty.pairs) == 0
