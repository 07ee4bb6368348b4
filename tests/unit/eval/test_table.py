from instancehmr.eval.table import ROW_FIELDS, format_tables, full_table, headline

NAN = float("nan")
ROWS = [
    {"benchmark": "3dpw-pc", "protocol": "gt-centers", "subset": "all", "people": 10.0,
     "recall": 1.0, "mpjpe": 101.04, "pa_mpjpe": 70.0, "mpvpe": NAN},
    {"benchmark": "3dpw-pc", "protocol": "detected", "subset": "all", "people": 10.0,
     "recall": 0.8, "mpjpe": 95.0, "pa_mpjpe": 66.0, "mpvpe": 120.0},
    {"benchmark": "ochuman", "protocol": "detected", "subset": "all", "images": 4.0,
     "people": 12.0, "ap": 0.3456, "ap50": 0.5, "ap75": 0.25, "apm": NAN, "apl": 0.4},
]  # fmt: skip
CROWDPOSE = {"benchmark": "crowdpose", "protocol": "detected", "subset": "all", "images": 2.0,
             "people": 5.0, "ap": 0.5, "ap50": 0.75, "ap75": 0.25, "ap_easy": NAN,
             "ap_medium": 0.5, "ap_hard": NAN}  # fmt: skip


def test_headline_has_one_line_per_protocol_in_the_papers_column_order():
    lines = headline(ROWS).splitlines()
    assert lines[0] == (
        "| protocol | 3DPW-PC MPJPE | 3DPW-PC PA-MPJPE | 3DPW-PC MPVPE | OCHuman AP | 3dpw-pc recall |"
    )
    # Errors in mm, AP and recall in percent; what a protocol does not report is a dash, what
    # is undefined (NaN) is n/a.
    assert lines[2] == "| gt-centers | 101.0 | 70.0 | n/a | – | 100.0 |"
    assert lines[3] == "| detected | 95.0 | 66.0 | 120.0 | 34.6 | 80.0 |"
    assert lines[4] == "| paper (ResNet-50, gt-centers) | 102.0 | 77.2 | 131.0 | 34.9 |  |"


def test_crowdpose_reports_its_own_metrics_and_an_undefined_ap_is_never_a_number():
    lines = headline([CROWDPOSE]).splitlines()
    assert lines[0] == (
        "| protocol | CrowdPose AP | CrowdPose AP50 | CrowdPose AP75 | CrowdPose AP easy "
        "| CrowdPose AP medium | CrowdPose AP hard |"
    )
    assert lines[2] == "| detected | 50.0 | 75.0 | 25.0 | n/a | 50.0 | n/a |"
    assert lines[3] == "| paper (ResNet-50, gt-centers) | 31.6 | 65.7 | 26.7 |  |  |  |"
    assert ROW_FIELDS[-8:] == [
        "ap",
        "ap50",
        "ap75",
        "apm",
        "apl",
        "ap_easy",
        "ap_medium",
        "ap_hard",
    ]


def test_full_table_lists_every_row_and_notes_follow():
    table = full_table([*ROWS, CROWDPOSE])
    assert table.splitlines()[0] == (
        "| benchmark | protocol | subset | images | people | recall | MPJPE | PA-MPJPE | MPVPE "
        "| AP | AP50 | AP75 | APM | APL | AP easy | AP medium | AP hard |"
    )
    lines = table.splitlines()
    assert lines[4] == (
        "| ochuman | detected | all | 4 | 12 | – | – | – | – | 34.6 | 50.0 | 25.0 | n/a | 40.0 "
        "| – | – | – |"
    )
    assert lines[5] == (
        "| crowdpose | detected | all | 2 | 5 | – | – | – | – | 50.0 | 75.0 | 25.0 | – | – "
        "| n/a | 50.0 | n/a |"
    )
    assert format_tables(ROWS, ["panoptic: no data (skipped)"]).endswith(
        "- panoptic: no data (skipped)"
    )


def test_panoptic_headline_shows_the_protocols_mpjpe_and_says_it_is_the_comparable_one():
    groups = ("Haggling", "Mafia", "Ultimatum", "Pizza", "mean")
    rows = [
        {"benchmark": "panoptic", "protocol": "gt-centers", "subset": f"{prefix}{g}",
         "people": 4.0, "recall": 1.0, "mpjpe": value + i}
        for prefix, value in (("", 100.0), ("labelled:", 120.0))
        for i, g in enumerate(groups)
    ]  # fmt: skip
    lines = headline(rows).splitlines()
    assert lines[0].startswith("| protocol | CMU Haggling | CMU Mafia |")
    assert lines[2] == "| gt-centers | 100.0 | 101.0 | 102.0 | 103.0 | 104.0 | – |"
    assert lines[3].startswith("| paper (ResNet-50, gt-centers) |  |  |  |  | 126.1 |")
    assert "17 Human3.6M joints" in lines[5] and "comparable with them" in lines[5]
    assert "`labelled:` rows" in lines[5]
    assert "| panoptic | gt-centers | labelled:mean | 4 | 100.0 | 124.0 |" in full_table(rows)
