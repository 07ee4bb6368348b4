import itertools

import pytest
import torch
import torch.nn.functional as F

from instancehmr.losses.contrastive import contrastive_loss, sample_features


def reference(u, v, v_mask, person_mask):
    """Eq. 2 computed literally, one image and one pair at a time."""
    terms = []
    for b in range(u.shape[0]):
        people = [i for i in range(u.shape[1]) if person_mask[b, i]]
        n = len(people)
        term, has = 0.0, False
        if n >= 2:
            pairs = list(itertools.combinations(people, 2))
            term += (
                sum(1 + F.cosine_similarity(u[b, i], u[b, j], dim=0) for i, j in pairs)
                * 2
                / (n * (n - 1))
            )
            has = True
        pulls = []
        for i in people:
            ks = [k for k in range(v.shape[2]) if v_mask[b, i, k]]
            if ks:
                pulls.append(
                    sum(1 - F.cosine_similarity(u[b, i], v[b, i, k], dim=0) for k in ks) / len(ks)
                )
        if pulls:
            term += sum(pulls) / len(pulls)
            has = True
        if has:
            terms.append(term)
    return sum(terms) / len(terms) if terms else torch.tensor(0.0)


@pytest.mark.parametrize("seed", range(5))
def test_matches_per_pair_reference(seed):
    g = torch.Generator().manual_seed(seed)
    b, n, k, d = 4, 5, 24, 8
    u, v = torch.randn(b, n, d, generator=g), torch.randn(b, n, k, d, generator=g)
    person_mask = torch.rand(b, n, generator=g) > 0.3
    v_mask = torch.rand(b, n, k, generator=g) > 0.5
    person_mask[0] = False  # N = 0
    person_mask[1] = False
    person_mask[1, 2] = True  # N = 1: pull only
    v_mask[2, 1] = False  # a person without visible joints
    assert torch.isclose(
        contrastive_loss(u, v, v_mask, person_mask), reference(u, v, v_mask, person_mask), atol=1e-5
    )


def test_edge_cases():
    u, v = torch.randn(2, 3, 4), torch.randn(2, 3, 5, 4)
    none = torch.zeros(2, 3, dtype=torch.bool)
    assert contrastive_loss(u, v, torch.ones(2, 3, 5, dtype=torch.bool), none) == 0
    one = none.clone()
    one[0, 0] = True
    # One person without visible joints: no term at all.
    assert contrastive_loss(u, v, torch.zeros(2, 3, 5, dtype=torch.bool), one) == 0
    # Identical center and joint features: pull is 0; opposite centers: push is 0.
    u2 = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    v2 = u2[:, :, None, :].expand(1, 2, 3, 2)
    assert torch.isclose(
        contrastive_loss(
            u2, v2, torch.ones(1, 2, 3, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)
        ),
        torch.tensor(0.0),
        atol=1e-6,
    )


def test_sample_features_reads_row_y_col_x():
    fmap = torch.zeros(1, 2, 8, 8)
    fmap[0, :, 2, 6] = torch.tensor([1.0, 2.0])  # row 2 (y), col 6 (x)
    out = sample_features(fmap, torch.tensor([[[6.0, 2.0], [2.0, 6.0]]]))
    assert torch.equal(out[0, 0], torch.tensor([1.0, 2.0])) and torch.equal(
        out[0, 1], torch.zeros(2)
    )
    nested = sample_features(fmap, torch.tensor([[[[6.2, 1.8], [100.0, -3.0]]]]))  # (B, N, K, 2)
    assert nested.shape == (1, 1, 2, 2) and torch.equal(nested[0, 0, 0], torch.tensor([1.0, 2.0]))
