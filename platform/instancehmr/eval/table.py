"""Evaluation tables: the headline table in the layout of the paper's Tables 1 and 2 (one line
per protocol, the paper's own numbers beside them) and the full table of every row.

A row is a dict with ``ROW_FIELDS`` keys (those a benchmark does not report are absent):
errors in mm, recall and AP in [0, 1] (AP printed in percent, as the paper does). COCO-style
benchmarks report AP, AP50, AP75, APM, APL; CrowdPose AP, AP50, AP75 and AP easy / medium /
hard (:mod:`instancehmr.eval.keypoint_ap`). A metric that is absent prints as "–"; one that is
undefined (NaN: an AP over no ground-truth person) as "n/a", never as a number.
"""

from __future__ import annotations

import math

from instancehmr.eval.keypoint_ap import AP_METRICS

#: The AP metrics of every definition, in order: ap, ap50, ap75, apm, apl, ap_easy, ...
AP_FIELDS = list(dict.fromkeys(m for metrics in AP_METRICS.values() for m in metrics))
ROW_FIELDS = [
    "benchmark", "protocol", "subset", "images", "people", "recall", "mpjpe", "pa_mpjpe",
    "mpvpe", *AP_FIELDS,
]  # fmt: skip
LABELS = {
    "recall": "recall", "mpjpe": "MPJPE", "pa_mpjpe": "PA-MPJPE", "mpvpe": "MPVPE",
    "ap": "AP", "ap50": "AP50", "ap75": "AP75", "apm": "APM", "apl": "APL",
    "ap_easy": "AP easy", "ap_medium": "AP medium", "ap_hard": "AP hard",
}  # fmt: skip
#: Headline columns per benchmark, in the paper's order: (benchmark, subset, metric, title).
HEADLINE = {
    "3dpw-pc": [("all", m, f"3DPW-PC {LABELS[m]}") for m in ("mpjpe", "pa_mpjpe", "mpvpe")],
    "ochuman": [("all", "ap", "OCHuman AP")],
    # CrowdPose's own table (its paper and evaluation tools): AP, AP50, AP75, AP easy/medium/hard
    "crowdpose": [("all", m, f"CrowdPose {LABELS[m]}") for m in AP_METRICS["crowdpose"]],
    "panoptic": [
        (g, "mpjpe", f"CMU {g}") for g in ("Haggling", "Mafia", "Ultimatum", "Pizza", "mean")
    ],
    "3dpw": [("all", m, f"3DPW {LABELS[m]}") for m in ("mpjpe", "pa_mpjpe", "mpvpe")],
    "synthetic": [("all", m, f"Synthetic {LABELS[m]}") for m in ("mpjpe", "pa_mpjpe", "mpvpe")]
    + [(f"occlusion:{k}", "mpjpe", f"Synthetic {k} MPJPE") for k in ("none", "partial", "heavy")],
}
#: The paper's ResNet-50 numbers (docs/method.md#reported-numbers, CrowdPose AP50 / AP75 from the
#: paper's Table 1; AP in percent), printed under the headline.
PAPER = {
    ("3dpw-pc", "all", "mpjpe"): 102.0, ("3dpw-pc", "all", "pa_mpjpe"): 77.2,
    ("3dpw-pc", "all", "mpvpe"): 131.0, ("ochuman", "all", "ap"): 34.9,
    ("crowdpose", "all", "ap"): 31.6, ("crowdpose", "all", "ap50"): 65.7,
    ("crowdpose", "all", "ap75"): 26.7, ("panoptic", "mean", "mpjpe"): 126.1,
    ("3dpw", "all", "mpjpe"): 78.0, ("3dpw", "all", "pa_mpjpe"): 47.8,
    ("3dpw", "all", "mpvpe"): 85.6,
}  # fmt: skip
PERCENT = {"recall", *AP_FIELDS}
#: What a benchmark's headline columns report, printed under the paper's numbers.
HEADLINE_NOTES = {
    "panoptic": (
        "CMU columns: MPJPE over the 17 Human3.6M joints, the ones Panoptic lacks or leaves "
        "unlabelled counting as zero error (CRMH's protocol, which the paper's CMU numbers "
        "follow: comparable with them); the full table's `labelled:` rows average over each "
        "person's labelled joints instead (not comparable)."
    ),
}


def _cell(metric: str, value) -> str:
    """A metric's cell: "–" when absent, "n/a" when undefined (not finite), else its value."""
    if value is None:
        return "–"
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.1f}" if metric in PERCENT else f"{value:.1f}"


def headline(rows: list[dict]) -> str:
    """One line per protocol, the headline columns of every benchmark in ``rows``; a
    ``detected`` line adds each mesh benchmark's recall; the paper's numbers below, then what
    the columns of benchmarks with a ``HEADLINE_NOTES`` entry report."""
    present = [b for b in HEADLINE if any(r["benchmark"] == b for r in rows)]
    index = {(r["benchmark"], r["protocol"], r["subset"]): r for r in rows}
    columns = [(b, *c) for b in present for c in HEADLINE[b]]
    columns += [
        (b, "all", "recall", f"{b} recall")
        for b in present
        if any(r["benchmark"] == b and "recall" in r for r in rows)
    ]
    lines = [
        "| protocol | " + " | ".join(c[3] for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        cells = [
            _cell(metric, index.get((b, protocol, subset), {}).get(metric))
            for b, subset, metric, _ in columns
        ]
        lines.append(f"| {protocol} | " + " | ".join(cells) + " |")
    if any((b, s, m) in PAPER for b, s, m, _ in columns):
        cells = [f"{PAPER[(b, s, m)]:.1f}" if (b, s, m) in PAPER else "" for b, s, m, _ in columns]
        lines.append("| paper (ResNet-50, gt-centers) | " + " | ".join(cells) + " |")
    notes = [HEADLINE_NOTES[b] for b in present if b in HEADLINE_NOTES]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines)


def full_table(rows: list[dict]) -> str:
    """Every row with every metric it has (AP and recall in percent, errors in mm)."""
    metrics = [f for f in ROW_FIELDS[3:] if any(f in r for r in rows)]
    lines = [
        "| benchmark | protocol | subset | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |",
        "|---|---|---|" + "---|" * len(metrics),
    ]
    for r in rows:
        cells = [
            f"{r[m]:.0f}" if m in ("images", "people") and m in r else _cell(m, r.get(m))
            for m in metrics
        ]
        lines.append(
            f"| {r['benchmark']} | {r['protocol']} | {r['subset']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def format_tables(rows: list[dict], notes: list[str] = ()) -> str:
    """Headline table, full table and notes, as Markdown."""
    parts = ["## Headline (paper layout; errors mm, AP and recall %)", headline(rows), "",
             "## All rows", full_table(rows)]  # fmt: skip
    if notes:
        parts += ["", *(f"- {n}" for n in notes)]
    return "\n".join(parts)
