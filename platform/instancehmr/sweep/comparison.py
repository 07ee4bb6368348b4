"""The seeded comparison of an ablation on a benchmark (the paper's Table 4, with its spread):
per protocol and metric, each row's mean ± sample standard deviation over its seeds in every
subset (all people, then the occlusion levels), and the difference to the ``default`` row with
its 95 % confidence interval.

The interval is Welch's (unequal variances; ``scipy.stats.ttest_ind(equal_var=False)`` and its
``confidence_interval``): trials of different rows share no pairing, since each row's network is
initialised and fed differently. A difference whose interval contains 0 is reported as *not
separated*, never ranked; a row with fewer than two finished seeds (or a default row with fewer
than two) has no spread and no interval, and the table says so.
"""

from __future__ import annotations

import math

import numpy as np

from instancehmr.eval.protocols import OCCLUSION_BINS
from instancehmr.eval.run import metric_key
from instancehmr.eval.table import LABELS
from instancehmr.sweep.leaderboard import TrialRow
from instancehmr.sweep.spec import DEFAULT_ROW

# Imported inside the functions that use them, to keep this module light: SciPy.

CONFIDENCE = 0.95
#: (protocol, metric) pairs compared: errors at ground-truth centers, errors and recall of the
#: model's own detections.
COMPARED = (
    ("gt-centers", "mpjpe"), ("gt-centers", "pa_mpjpe"), ("gt-centers", "mpvpe"),
    ("detected", "mpjpe"), ("detected", "recall"),
)  # fmt: skip
SUBSETS = ("all", *(f"occlusion:{level}" for level in OCCLUSION_BINS))


def values(rows: list[TrialRow], row: str, key: str) -> np.ndarray:
    """The finite values of ``key`` over the finished trials of ablation row ``row``."""
    out = [
        r.metrics[key]
        for r in rows
        if r.row == row and r.status == "FINISHED" and math.isfinite(r.metrics.get(key, math.nan))
    ]
    return np.array(out, dtype=np.float64)


def difference(row: np.ndarray, default: np.ndarray) -> tuple[float, float, float] | None:
    """(mean(row) - mean(default), low, high of its ``CONFIDENCE`` interval) by Welch's t, or None
    without two values on each side (no spread, no interval)."""
    if len(row) < 2 or len(default) < 2:
        return None
    from scipy.stats import ttest_ind

    delta = float(row.mean() - default.mean())
    if np.ptp(row) == 0 and np.ptp(default) == 0:  # no spread at all: the interval is the point
        return delta, delta, delta
    interval = ttest_ind(row, default, equal_var=False).confidence_interval(CONFIDENCE)
    return delta, float(interval.low), float(interval.high)


def _number(value: float) -> str:
    """A logged value as the tables print it (recall and AP are logged in percent already)."""
    return f"{value:.1f}"


def _cell(row: np.ndarray, default: np.ndarray | None) -> str:
    """``mean ± std`` over the seeds and, beside the default, the difference with its interval
    and whether it separates (the interval excludes 0)."""
    if not len(row):
        return "–"
    text = _number(row.mean())
    if len(row) > 1:
        text += f" ± {_number(row.std(ddof=1))}"
    if default is None:
        return text
    found = difference(row, default)
    if found is None:
        return text + " (no interval: < 2 seeds)"
    delta, low, high = found
    sign = "+" if delta >= 0 else "-"
    verdict = "not separated" if low <= 0 <= high else ("higher" if low > 0 else "lower")
    span = f"[{_number(low)}, {_number(high)}]"
    return f"{text}; Δ {sign}{_number(abs(delta))} {span} {verdict}"


def comparison_tables(rows: list[TrialRow], benchmark: str) -> str:
    """Markdown: one table per compared (protocol, metric) of ``benchmark``, a line per ablation
    row, a column per subset; the rows' values come from the trials' ``eval/...`` metrics.
    Empty when no trial has them."""
    labels = list(dict.fromkeys(r.row for r in rows if r.row))
    if DEFAULT_ROW in labels:
        labels.remove(DEFAULT_ROW)
        labels.insert(0, DEFAULT_ROW)
    seeds = {label: len(values(rows, label, metric_key(benchmark, "gt-centers", "all", "mpjpe")))
             for label in labels}  # fmt: skip
    if not any(seeds.values()):
        return ""
    parts = [
        f"Seeded comparison on `{benchmark}` (mean ± sample std over each row's seeds; Δ = row "
        f"- {DEFAULT_ROW} with its {CONFIDENCE:.0%} Welch interval; an interval containing 0 is "
        "not separated). Errors in mm, recall in %."
    ]
    if min(seeds.values()) < 2:
        parts.append(
            "Fewer than 2 seeds in some row: those rows show means without spread and no "
            "interval; run `instancehmr ablate --seeds 3` (or more) to compare them."
        )
    for protocol, metric in COMPARED:
        keys = {s: metric_key(benchmark, protocol, s, metric) for s in SUBSETS}
        present = [s for s in SUBSETS if any(len(values(rows, lb, keys[s])) for lb in labels)]
        if not present:
            continue
        lines = [
            f"### {LABELS.get(metric, metric)}, {protocol}",
            "",
            "| row | seeds | " + " | ".join(present) + " |",
            "|---|---|" + "---|" * len(present),
        ]
        for label in labels:
            cells = []
            for s in present:
                default = None if label == DEFAULT_ROW else values(rows, DEFAULT_ROW, keys[s])
                cells.append(_cell(values(rows, label, keys[s]), default))
            lines.append(f"| {label} | {seeds[label]} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
