"""``instancehmr data prepare`` on EVERY card of ``datasets/``, run as users run it: one CLI
process (Ray and all) for all cards, on fixtures in each corpus's original file layout.

Each shipped card is used as it is: its fixture lies under ``$INSTANCEHMR_DATA/data/raw/<corpus>``
exactly as the card's splits name the files (docs/design.md#how-a-piece-is-proven). The fixtures are
copies of the real samples where they exist (COCO, CrowdPose, Human3.6M, MPI-INF-3DHP, MPII's images
and joints) and files written in the original layouts (``tests/support/corpus_files.py``) for the
rest, and for those too on a clone without the real samples. Two variant cards run beside them:
Human3.6M keeping every frame (the shipped card keeps one in five) and MPII from mmpose's JSON (the
shipped card reads the official .mat). The synthetic card runs as a copy at a tiny size.

Per card: images and people per split, 0 failed, the printed summary line, labels read back from
the Parquet shards where the source file puts them, the card's ``labels`` being those the shards
carry; a second run converts no shard. A card without a fixture in
``tests/support/corpus_layouts.py`` fails the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml
from corpus_layouts import CARDS, LAYOUTS, Corpus, Lay
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.data.prepare import COVERAGE
from instancehmr.data.schema import persons_from_row

SUMMARY = re.compile(
    r"^(?P<corpus>\S+): (?P<images>\d+) images, (?P<persons>\d+) persons, (?P<failed>\d+) failed, "
    r"(?P<converted>\d+) shard\(s\) converted in (?P<seconds>[\d.]+) s -> (?P<out>.+)$"
)


def prepare(cards: list[Path], out: Path, data: Path, cwd: Path) -> tuple[str, float]:
    """``instancehmr data prepare CARDS --out OUT`` in a subprocess, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["INSTANCEHMR_DATA"] = str(data)
    command = [sys.executable, "-m", "instancehmr.cli", "data", "prepare", *map(str, cards)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=480,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert done.returncode == 0, f"prepare failed ({done.returncode}):\n{done.stderr[-6000:]}"
    return done.stdout, seconds


def summaries(stdout: str) -> dict[str, re.Match]:
    return {m["corpus"]: m for line in stdout.splitlines() if (m := SUMMARY.match(line.strip()))}


def check_labels(rows: dict[str, dict], corpus: Corpus) -> None:
    for label in corpus.labels:
        where = f"{label.sample_id} person {label.person} {label.joint or ''}"
        assert label.sample_id in rows, f"{corpus.name}: no record {label.sample_id}"
        row = rows[label.sample_id]
        persons = persons_from_row(row)
        if label.people is not None:
            assert len(persons) == label.people, where
        if label.intrinsics is not None:
            K = np.asarray(row["intrinsics"]).reshape(3, 3)
            np.testing.assert_allclose(K, label.intrinsics, rtol=1e-5, err_msg=where)
        if label.joint is None and label.smpl_source is None and label.gender is None:
            continue
        person = persons[label.person]
        if label.joint is not None:
            j = CANONICAL_INDEX[label.joint]
            if label.xy is not None:
                np.testing.assert_allclose(person.keypoints_2d[j], label.xy, rtol=1e-5, atol=1e-3, err_msg=where)  # fmt: skip
            if label.vis is not None:
                assert person.keypoints_2d_vis[j] == label.vis, where
            if label.xyz is not None:
                assert person.keypoints_3d_valid[j], where
                np.testing.assert_allclose(person.keypoints_3d[j], label.xyz, rtol=1e-5, atol=1e-5, err_msg=where)  # fmt: skip
        if label.smpl_source is not None:
            assert person.smpl_source == label.smpl_source, where
        if label.smpl_pose is not None:
            np.testing.assert_allclose(person.smpl_pose, label.smpl_pose, atol=1e-5, err_msg=where)
        if label.gender is not None:
            assert person.gender == label.gender, where


def test_every_card_prepares_from_its_original_layout(tmp_path, body):
    missing = [card.stem for card in CARDS if card.stem not in LAYOUTS]
    assert not missing, f"cards without a fixture in corpus_layouts.LAYOUTS: {missing}"
    lay = Lay(tmp_path / "home", tmp_path / "cards", body, REAL.is_dir())
    lay.cards.mkdir()
    corpora = [corpus for card in CARDS for corpus in LAYOUTS[card.stem](lay)]
    out = tmp_path / "shards"

    stdout, seconds = prepare([c.card for c in corpora], out, lay.data, tmp_path)
    lines = summaries(stdout)
    report = [f"prepare of {len(corpora)} cards: {seconds:.1f} s"]
    for corpus in corpora:
        name = corpus.name
        assert name in lines, f"no summary line for {name} in:\n{stdout}"
        line = lines[name]
        manifest = json.loads((out / name / "manifest.json").read_text())
        images = sum(n for n, _ in corpus.splits.values())
        persons = sum(p for _, p in corpus.splits.values())
        assert (int(line["images"]), int(line["persons"]), int(line["failed"])) == (
            images, persons, 0
        ), f"{name} ({corpus.source}): {line[0]}"  # fmt: skip
        shards = sum(len(s["shards"]) for s in manifest["splits"].values())
        assert int(line["converted"]) == shards > 0 and Path(line["out"]) == out / name
        assert (out / name / "errors.jsonl").read_text() == ""
        assert manifest["card"] == str(corpus.card) and manifest["failed"] == 0
        assert {s: (m["images"], m["persons"]) for s, m in manifest["splits"].items()} == (
            corpus.splits
        ), name
        rows = {}
        for split in corpus.splits:
            for row in pq.read_table(out / name / split).to_pylist():
                assert row["corpus"] == name and row["split"] == split
                rows[row["sample_id"]] = row
        check_labels(rows, corpus)
        # the card's labels are what the shards carry (coverage), no more, no less
        declared = set(yaml.safe_load(corpus.card.read_text())["labels"])
        coverage = [s["label_coverage"] for s in manifest["splits"].values()]
        covered = {k for k in COVERAGE if any(c[k] > 0 for c in coverage)}
        assert covered == declared & set(COVERAGE), (name, covered, declared)
        with_k = {row["intrinsics"] is not None for row in rows.values()}
        assert with_k == {"intrinsics" in declared}, name
        assert not set(corpus.absent) & set(rows), name
        if corpus.smpl is not None:  # every person has the SMPL source the source file gives
            for sample_id, row in rows.items():
                for k, source in enumerate(row["smpl_source"]):
                    assert source == corpus.smpl.get(sample_id, {}).get(k, "none"), (sample_id, k)
        report.append(
            f"{name:18s} {corpus.source:12s} "
            + ", ".join(f"{s} {n}/{p}" for s, (n, p) in corpus.splits.items())
            + f"  (images/people; {line['seconds']} s)"
        )
    print("\n".join(report))

    again, seconds = prepare([c.card for c in corpora], out, lay.data, tmp_path)
    lines = summaries(again)
    for corpus in corpora:
        line = lines[corpus.name]
        assert int(line["converted"]) == 0, f"{corpus.name} converted again: {line[0]}"
        assert int(line["images"]) == sum(n for n, _ in corpus.splits.values())
    print(f"second run, every shard up to date: {seconds:.1f} s")
