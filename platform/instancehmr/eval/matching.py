"""Matching predicted people to ground-truth people (Hungarian assignment, scipy).

The cost of a pair is the mean 2-D distance over the ground-truth person's labelled joints,
relative to that person's size (box diagonal), so one threshold fits small and large people.
Unmatched ground truth are misses, unmatched predictions false positives; both are returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

#: A pair farther apart than this (mean joint distance / GT box diagonal) is not a match.
MAX_RELATIVE_DISTANCE = 0.5


@dataclass
class Matching:
    """pairs (M, 2) of (prediction, ground truth) indices; misses (ground truth without a
    prediction) and false_positives (predictions without a person), as index arrays."""

    pairs: np.ndarray
    misses: np.ndarray
    false_positives: np.ndarray


def pair_costs(pred: np.ndarray, gt: np.ndarray, gt_valid: np.ndarray) -> np.ndarray:
    """(P, G) mean distance over each GT person's labelled joints / its box diagonal.
    pred (P, J, 2), gt (G, J, 2), gt_valid (G, J); a GT person without joints costs inf."""
    dist = np.linalg.norm(pred[:, None] - gt[None], axis=-1)  # (P, G, J)
    w = gt_valid[None].astype(np.float64)
    mean = (dist * w).sum(-1) / np.maximum(w.sum(-1), 1)
    span = np.array(
        [
            np.ptp(g[v], axis=0) if v.any() else np.zeros(2)
            for g, v in zip(gt, gt_valid, strict=True)
        ]
    )
    diagonal = np.maximum(np.linalg.norm(span, axis=-1), 1.0)
    costs = mean / diagonal[None]
    costs[:, ~gt_valid.any(1)] = np.inf
    return costs


def match_people(
    pred: np.ndarray, gt: np.ndarray, gt_valid: np.ndarray, max_cost: float = MAX_RELATIVE_DISTANCE
) -> Matching:
    """Optimal one-to-one assignment of predictions to people, pairs above ``max_cost`` cut."""
    if len(pred) == 0 or len(gt) == 0:
        return Matching(np.zeros((0, 2), int), np.arange(len(gt)), np.arange(len(pred)))
    costs = pair_costs(pred, gt, gt_valid)
    # Every pair beyond the threshold costs the same, so the assignment never trades a good
    # pair for two bad ones; those are cut below.
    rows, cols = linear_sum_assignment(np.minimum(costs, 2 * max_cost))
    keep = costs[rows, cols] <= max_cost
    pairs = np.stack([rows[keep], cols[keep]], axis=1)
    return Matching(
        pairs=pairs,
        misses=np.setdiff1d(np.arange(len(gt)), pairs[:, 1]),
        false_positives=np.setdiff1d(np.arange(len(pred)), pairs[:, 0]),
    )
