import math

import pytest

from instancehmr.sweep.leaderboard import (
    TrialRow,
    ablation_table,
    leaderboard,
    picture,
    ranked,
    row_stats,
)


def trial(i, value, row=None, status="FINISHED", error=None, **params):
    metrics = {} if value is None else {"val/mpjpe": value, "val/center_ap": value / 1000}
    return TrialRow(f"t{i}", f"run{i}", row, params, status, metrics, error=error)


def test_leaderboard_ranks_finished_trials_and_lists_the_rest_with_their_error():
    rows = [
        trial(0, 250.0, lr=1e-3),
        trial(
            1, None, status="FAILED", error="Traceback...\nNonFiniteLossError: 1 in a row", lr=1.0
        ),
        trial(2, 200.0, lr=3e-4),
        trial(3, 180.0, status="KILLED", lr=1e-4),  # interrupted: no rank, whatever its metric
    ]
    assert [r.trial_id for r in ranked(rows, "val/mpjpe", "min")] == ["t2", "t0", "t1", "t3"]
    assert [r.trial_id for r in ranked(rows, "val/mpjpe", "max")][:2] == ["t0", "t2"]
    lines = leaderboard(rows, "val/mpjpe", "min").splitlines()
    assert lines[0] == "| # | trial | lr | status | val/mpjpe |"
    assert lines[2] == "| 1 | t2 | 0.0003 | finished | 200.00 |"
    assert lines[3] == "| 2 | t0 | 0.001 | finished | 250.00 |"
    assert lines[4] == "| - | t1 | 1 | failed: NonFiniteLossError: 1 in a row | - |"
    assert lines[5] == "| - | t3 | 0.0001 | killed | - |"


def test_ablation_table_gives_mean_and_sample_spread_per_row():
    rows = [
        trial(0, 100.0, "default"),
        trial(1, 110.0, "default"),
        trial(2, 120.0, "default"),
        trial(3, 200.0, "baseline"),
        trial(4, None, "baseline", status="FAILED", error="ValueError: x"),
    ]
    stats = row_stats(rows, "val/mpjpe")
    assert stats["default"] == pytest.approx((110.0, 10.0, 3, 3))
    mean, std, done, total = stats["baseline"]
    assert (mean, done, total) == (200.0, 1, 2) and math.isnan(std)
    table = ablation_table(rows, "val/mpjpe").splitlines()
    assert table[0].startswith("| row | trials | val/mpjpe | val/pa_mpjpe |")
    assert table[2].startswith("| default | 3/3 | 110 ± 10 | - | - | 0.11 ± 0.01 |")
    assert table[3].startswith("| baseline | 1/2 | 200 | - | - | 0.2 |")
    assert len(table) == 4  # no trial logged reference values: no reference line
    leaderboard_rows = leaderboard(rows, "val/mpjpe", "min").splitlines()
    assert leaderboard_rows[0] == "| # | trial | row | status | val/mpjpe |"


def test_ablation_table_ends_with_the_reference_predictors():
    rows = [trial(0, 100.0, "default"), trial(1, 120.0, "default"), trial(2, 90.0, "baseline")]
    for row, constant in zip(rows, (300.0, 300.0, 999.0), strict=True):
        row.metrics.update({"val/constant_mpjpe": constant, "val/oracle_mpjpe": 2.0})
    table = ablation_table(rows, "val/mpjpe").splitlines()
    assert table[-2] == "| constant (reference) | - | 300 | - | - | - |"
    assert table[-1] == "| oracle (reference) | - | 2 | - | - | - |"


def test_picture_draws_curves_and_the_ablation_bars():
    rows = [trial(0, 100.0, "default"), trial(1, 150.0, "baseline")]
    histories = {"run0": [(0, 500.0), (8, 100.0)], "run1": [(0, 500.0), (8, 150.0)]}
    fig = picture(rows, histories, "val/mpjpe")
    curves, bars = fig.axes
    assert len(curves.lines) == 2 and curves.lines[0].get_ydata().tolist() == [500.0, 100.0]
    assert [p.get_height() for p in bars.patches] == [100.0, 150.0]
    assert bars.get_ylim()[0] > 0  # fitted to the bars: rows a few mm apart stay apart
    assert len(picture([trial(0, 1.0)], {}, "val/mpjpe").axes) == 1  # no rows: curves only


def test_picture_labels_curves_by_run_name_and_colours_them_by_row():
    rows = [trial(i, 100.0 + i, row) for i, row in enumerate(["default", "default", "dim32"])]
    for i, row in enumerate(rows):
        row.name = f"{row.row} s{i % 2}"
    histories = {f"run{i}": [(0, 500.0), (8, 100.0 + i)] for i in range(3)}
    curves = picture(rows, histories, "val/mpjpe").axes[0]
    assert [line.get_label() for line in curves.lines] == ["default s0", "default s1", "dim32 s0"]
    first, second, third = curves.lines
    assert first.get_color() == second.get_color() != third.get_color()
    assert first.get_linestyle() != second.get_linestyle()
