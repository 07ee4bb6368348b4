"""What a sweep produced, read back from its MLflow child runs: the leaderboard (trial, row,
changed params, status, metric), the ablation table (each row's mean and spread over its
trials, like the paper's Tables 4 and 5) and a picture of both."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from instancehmr.eval.references import REFERENCES
from instancehmr.eval.run import EVAL_OF_TAG, EVAL_ROLE
from instancehmr.track.runs import error_message
from instancehmr.track.sweeps import PARAMS_TAG, ROLE_TAG, ROW_PARAM, TRIAL_TAG, child_runs

# Imported inside the functions that use them, to keep this module light: matplotlib.

ABLATION_METRICS = ("val/mpjpe", "val/pa_mpjpe", "val/mpvpe", "val/center_ap")


@dataclass
class TrialRow:
    trial_id: str
    run_id: str
    row: str | None
    params: dict
    status: str  # MLflow run status: FINISHED, FAILED, RUNNING, KILLED
    metrics: dict[str, float] = field(default_factory=dict)  # final value of each metric
    stopped_early: bool = False
    error: str | None = None
    name: str = ""  # the MLflow run name (``dim32 s1``)


def evaluations(client, experiment_id: str) -> dict[str, dict[str, float]]:
    """{model run id: the ``eval/...`` metrics of its evaluation runs} in an experiment."""
    found: dict[str, dict[str, float]] = {}
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{ROLE_TAG}` = '{EVAL_ROLE}'", max_results=50000
    )
    for run in runs:
        of = run.data.tags.get(EVAL_OF_TAG)
        if of:
            found.setdefault(of, {}).update(run.data.metrics)
    return found


def trial_rows(client, parent) -> list[TrialRow]:
    """One TrialRow per child run of the sweep's ``parent`` run, with the metrics of its
    evaluation runs (``instancehmr eval``) beside its own."""
    evaluated = evaluations(client, parent.info.experiment_id)
    return [
        TrialRow(
            trial_id=run.data.tags.get(TRIAL_TAG, run.info.run_id),
            run_id=run.info.run_id,
            row=run.data.params.get(ROW_PARAM),
            params=json.loads(run.data.tags.get(PARAMS_TAG, "{}")),
            status=run.info.status,
            metrics={**run.data.metrics, **evaluated.get(run.info.run_id, {})},
            stopped_early=run.data.tags.get("stopped_early") == "true",
            error=run.data.tags.get("error"),
            name=run.info.run_name or "",
        )
        for run in child_runs(client, parent)
    ]


def _value(row: TrialRow, metric: str) -> float:
    return row.metrics.get(metric, math.nan) if row.status == "FINISHED" else math.nan


def ranked(rows: list[TrialRow], metric: str, mode: str) -> list[TrialRow]:
    """Finished trials best first by ``metric``, then the rest (failed, unfinished)."""
    sign = 1 if mode == "min" else -1

    def key(row: TrialRow):
        value = _value(row, metric)
        return (math.isnan(value), sign * value if not math.isnan(value) else 0.0)

    return sorted(rows, key=key)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def leaderboard(rows: list[TrialRow], metric: str, mode: str) -> str:
    """Markdown leaderboard: rank, trial, row (ablations), each swept key, status, metric."""
    keys = sorted({k for r in rows for k in r.params})
    with_rows = any(r.row for r in rows)
    header = ["#", "trial", *(["row"] if with_rows else []), *keys, "status", metric]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, row in enumerate(ranked(rows, metric, mode), start=1):
        value = _value(row, metric)
        status = row.status.lower() + (" (stopped early)" if row.stopped_early else "")
        if row.error:
            status += f": {error_message(row.error)}"
        cells = [
            str(rank) if not math.isnan(value) else "-",
            row.trial_id,
            *([row.row or ""] if with_rows else []),
            *(_fmt(row.params.get(k, "")) for k in keys),
            status,
            f"{value:.2f}" if not math.isnan(value) else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def row_stats(rows: list[TrialRow], metric: str) -> dict[str, tuple[float, float, int, int]]:
    """Per ablation row (in first-seen order): mean, sample std, finished and total trials."""
    out = {}
    for label in dict.fromkeys(r.row for r in rows if r.row):
        members = [r for r in rows if r.row == label]
        values = np.array([v for r in members if not math.isnan(v := _value(r, metric))])
        mean = float(values.mean()) if len(values) else math.nan
        std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        out[label] = (mean, std, len(values), len(members))
    return out


def reference_value(rows: list[TrialRow], reference: str, metric: str) -> float:
    """A reference predictor's value of a ``val/`` metric (``val/<reference>_<name>``, logged by
    validation beside the model), from the finished trials of the first row: it depends on the
    data, not on the trial's model. NaN when no trial logged it."""
    name = f"val/{reference}_{metric.removeprefix('val/')}"
    first = next((r.row for r in rows if r.row), None)
    values = [v for r in rows if r.row == first and not math.isnan(v := _value(r, name))]
    return float(np.mean(values)) if values else math.nan


def ablation_table(rows: list[TrialRow], metric: str) -> str:
    """Markdown table of an ablation: a line per row, each metric as mean ± spread (sample
    standard deviation over the row's finished trials, e.g. seeds), then the reference
    predictors (:mod:`instancehmr.eval.references`) on the same validation data."""
    metrics = [metric, *(m for m in ABLATION_METRICS if m != metric)]
    stats = {m: row_stats(rows, m) for m in metrics}
    header = ["row", "trials", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, (_, _, done, total) in stats[metric].items():
        cells = [label, f"{done}/{total}"]
        for m in metrics:
            mean, std, _, _ = stats[m][label]
            cells.append(
                "-"
                if math.isnan(mean)
                else f"{mean:.3g}" + ("" if math.isnan(std) else f" ± {std:.2g}")
            )
        lines.append("| " + " | ".join(cells) + " |")
    for reference in REFERENCES:
        values = [reference_value(rows, reference, m) for m in metrics]
        if not all(math.isnan(v) for v in values):
            cells = ["-" if math.isnan(v) else f"{v:.3g}" for v in values]
            lines.append(f"| {reference} (reference) | - | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def picture(rows: list[TrialRow], histories: dict[str, list[tuple[int, float]]], metric: str):
    """A figure: ``metric`` over training steps per trial (``histories``: run id -> (step,
    value)), labelled by run name, one colour per ablation row (one per trial otherwise), a
    line style per seed; and, for an ablation, each row's mean with its spread, the axis fitted
    to the bars (not from 0, where rows a few mm apart look alike)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = row_stats(rows, metric)
    fig, axes = plt.subplots(1, 2 if stats else 1, figsize=(12 if stats else 7, 4.5), squeeze=False)
    curves = axes[0][0]
    groups = list(dict.fromkeys(r.row if r.row else r.trial_id for r in rows))
    palette = plt.get_cmap("tab20" if len(groups) > 10 else "tab10")
    seen: dict[str, int] = {}
    for row in rows:
        points = histories.get(row.run_id, [])
        if points:
            steps, values = zip(*points, strict=True)
            group = row.row if row.row else row.trial_id
            style = ("-", "--", ":", "-.")[seen.get(group, 0) % 4]
            seen[group] = seen.get(group, 0) + 1
            color = palette(groups.index(group) % palette.N)
            label = row.name or row.trial_id + (f" [{row.row}]" if row.row else "")
            curves.plot(steps, values, marker="o", linestyle=style, color=color, label=label)
    curves.set(xlabel="step", ylabel=metric, title=f"{metric} per trial")
    if curves.lines and len(rows) <= 12:
        curves.legend(fontsize=7)
    if stats:
        bars = axes[0][1]
        labels = list(stats)
        means = [stats[k][0] for k in labels]
        spreads = [0.0 if math.isnan(stats[k][1]) else stats[k][1] for k in labels]
        bars.bar(
            labels,
            means,
            yerr=spreads,
            capsize=4,
            color=[
                palette(groups.index(k) % palette.N) if k in groups else "tab:blue" for k in labels
            ],
        )
        finite = [(m - e, m + e) for m, e in zip(means, spreads, strict=True) if math.isfinite(m)]
        if finite:
            low, high = min(lo for lo, _ in finite), max(hi for _, hi in finite)
            pad = max(high - low, abs(high) * 1e-3, 1e-9) * 0.5
            bars.set_ylim(low - pad, high + pad)
        bars.set(ylabel=metric, title=f"{metric} by ablation row (mean ± std)")
        bars.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
