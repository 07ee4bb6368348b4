import math

import torch

from instancehmr.losses.focal import focal_loss


def test_focal_matches_a_hand_computed_case():
    # One 1x3 channel: a positive (gt 1), a near-positive negative (gt 0.5), a far negative (gt 0).
    probs = torch.tensor([0.8, 0.3, 0.1])
    logits = torch.log(probs / (1 - probs)).view(1, 1, 1, 3)
    gt = torch.tensor([1.0, 0.5, 0.0]).view(1, 1, 1, 3)
    pos = math.log(0.8) * 0.2**2
    neg = math.log(0.7) * 0.3**2 * 0.5**4 + math.log(0.9) * 0.1**2 * 1.0
    expected = -(pos + neg) / 1
    assert torch.isclose(focal_loss(logits, gt), torch.tensor(expected), rtol=1e-4)


def test_masked_channels_are_ignored_and_empty_channels_are_negatives():
    logits = torch.zeros(1, 2, 4, 4)
    gt = torch.zeros(1, 2, 4, 4)
    gt[0, 0, 1, 1] = 1.0
    only_first = focal_loss(logits, gt, torch.tensor([[True, False]]))
    assert torch.isclose(only_first, focal_loss(logits[:, :1], gt[:, :1]))
    # A labelled channel without positives is all negatives, normalised by 1.
    neg_only = focal_loss(logits[:, 1:], gt[:, 1:])
    assert torch.isclose(neg_only, torch.tensor(-16 * math.log(0.5) * 0.5**2))
    assert focal_loss(logits, gt, torch.zeros(1, 2, dtype=torch.bool)) == 0
