"""The seeded comparison: means with their spread, Welch intervals of the difference to the
default row, and no ranking of rows whose interval contains 0."""

from __future__ import annotations

import pytest
from scipy.stats import ttest_ind

from instancehmr.sweep.comparison import comparison_tables, difference, metric_key
from instancehmr.sweep.leaderboard import TrialRow


def trial(i: int, row: str, mpjpe: float, heavy: float, status: str = "FINISHED") -> TrialRow:
    metrics = {
        metric_key("synthetic", "gt-centers", "all", "mpjpe"): mpjpe,
        metric_key("synthetic", "gt-centers", "occlusion:heavy", "mpjpe"): heavy,
    }
    return TrialRow(f"t{i}", f"run{i}", row, {"train.seed": i % 3}, status, metrics)


ROWS = [
    trial(0, "default", 100.0, 150.0), trial(1, "default", 102.0, 160.0),
    trial(2, "default", 101.0, 155.0),
    trial(3, "baseline", 120.0, 150.0), trial(4, "baseline", 122.0, 170.0),
    trial(5, "baseline", 121.0, 140.0),
    trial(6, "dim32", 99.0, 150.0), trial(7, "dim32", 105.0, 160.0, status="FAILED"),
]  # fmt: skip


def test_the_difference_is_welchs_interval():
    import numpy as np

    row, default = np.array([120.0, 122.0, 121.0]), np.array([100.0, 102.0, 101.0])
    delta, low, high = difference(row, default)
    expected = ttest_ind(row, default, equal_var=False).confidence_interval(0.95)
    assert delta == pytest.approx(20.0) and (low, high) == pytest.approx(
        (expected.low, expected.high)
    )
    assert difference(row[:1], default) is None and difference(row, default[:1]) is None


def test_rows_separate_only_when_the_interval_excludes_zero():
    text = comparison_tables(ROWS, "synthetic")
    lines = {
        line.split(" | ")[0].strip("| "): line
        for line in text.splitlines()
        if line.startswith("| ")
    }
    assert "### MPJPE, gt-centers" in text and "| row | seeds | all | occlusion:heavy |" in text
    assert lines["default"].startswith("| default | 3 | 101.0 ± 1.0 | 155.0 ± 5.0 |")
    assert "; Δ +20.0 [" in lines["baseline"] and "] higher |" in lines["baseline"]
    assert lines["baseline"].endswith("not separated |")  # heavy: 150 ± 15 vs 155 ± 5
    # One finished seed of dim32 (the other failed): a mean, no spread, no interval, no verdict.
    assert "| dim32 | 1 | 99.0 (no interval: < 2 seeds) |" in lines["dim32"]
    assert "Fewer than 2 seeds in some row" in text


def test_no_evaluated_trial_gives_no_table():
    assert comparison_tables([TrialRow("t", "r", "default", {}, "FINISHED", {})], "synthetic") == ""
