"""Center detection in validation is capped by the model, not by the decoding: a perfect center
heatmap finds every person at every map size, with the NMS window and the match radius in
image terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instancehmr.data.targets import draw_gaussian
from instancehmr.eval.metrics import center_ap, center_match_radius, match_centers
from instancehmr.model.decode import find_centers, nms_window


def test_the_nms_window_covers_the_papers_share_of_the_image():
    assert [nms_window(5, m) for m in (8, 16, 32, 64, 128)] == [3, 3, 3, 5, 9]
    assert nms_window(9, 32) == 5 and nms_window(3, 64) == 3


def crowd(map_size: int, images: int, rng: np.random.Generator):
    """Planted crowds: 2-6 people per image, centers anywhere (not on pixel centres) but on
    distinct pixels at least 2 apart (Chebyshev; closer peaks cannot both be local maxima at
    any window), and a perfect heatmap: each person's Gaussian, peak = its confidence."""
    heat = np.zeros((images, 1, map_size, map_size), np.float32)
    centers = []
    for i in range(images):
        placed = []
        while len(placed) < rng.integers(2, 7):
            c = rng.uniform(0, map_size - 1, 2)
            if all(np.abs(np.round(c) - np.round(p)).max() >= 2 for p in placed):
                placed.append(c)
        for c in placed:
            one = np.zeros((map_size, map_size), np.float32)
            draw_gaussian(one, c, 1.0, 3)
            heat[i, 0] = np.maximum(heat[i, 0], one * rng.uniform(0.8, 1.0))
        centers.append(np.array(placed))
    probability = torch.from_numpy(heat).clamp(1e-6, 1 - 1e-6)
    return torch.log(probability / (1 - probability)), centers


@pytest.mark.parametrize("map_size", [16, 32, 64])
def test_a_perfect_heatmap_gives_center_ap_and_recall_of_one(map_size):
    logits, centers = crowd(map_size, 60, np.random.default_rng(map_size))
    batch, xy, score = find_centers(logits, kernel=5, max_people=64, threshold=0.05)
    radius = center_match_radius(map_size)
    detections = [(xy[batch == i].float().numpy(), score[batch == i].numpy()) for i in range(60)]
    found = sum(
        int(match_centers(*d, c, radius).sum()) for d, c in zip(detections, centers, strict=True)
    )
    people = sum(len(c) for c in centers)
    assert found / people >= 0.99 and center_ap(detections, centers, radius) >= 0.99


def test_the_match_radius_covers_the_rounding_of_an_integer_peak():
    for map_size in (8, 16, 32, 64):
        assert center_match_radius(map_size) >= np.sqrt(2) / 2
    assert center_match_radius(64) == pytest.approx(0.04 * 64)
