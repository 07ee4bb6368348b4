"""Ray Data end to end: prepare shards from a card, inspect them, mix corpora, stream batches."""

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from samples import REAL_SAMPLES as REAL

from instancehmr.body.joint_sets import COCO17
from instancehmr.data.cards import Card
from instancehmr.data.pipeline import TARGET_COLUMNS, mix_corpora, read_corpus, training_dataset
from instancehmr.data.schema import VIS_VISIBLE, ImageRecord, Person, to_table

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from instancehmr.runtime import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


def tiny_corpus(root: Path, name: str, images: int, rows_per_file: int = 16) -> Card:
    """Shards of tiny one-person images written straight from records."""
    _, data = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    kp = np.full((17, 2), 4.0)
    person = Person.from_joint_set(COCO17, kp, np.full(17, VIS_VISIBLE))
    records = [
        ImageRecord(f"{name}/train/{i}", name, "train", data.tobytes(), "png", 8, 8, [person])
        for i in range(images)
    ]
    out = root / name / "train"
    out.mkdir(parents=True)
    for k in range(0, images, rows_per_file):
        pq.write_table(
            to_table(records[k : k + rows_per_file]), out / f"part-{k // rows_per_file:05d}.parquet"
        )
    return Card(
        root / f"{name}.yaml",
        name,
        "coco_keypoints",
        root,
        {"train": {}},
        ("keypoints_2d",),
        "-",
        "-",
        "train",
    )


def test_mixing_follows_the_weights(tmp_path, ray_local):
    a = tiny_corpus(tmp_path, "big", 3000)
    b = tiny_corpus(tmp_path, "small", 1200)
    mixed = mix_corpora(
        [read_corpus(tmp_path, a, "train"), read_corpus(tmp_path, b, "train")], [0.7, 0.3]
    )
    corpora = [row["corpus"] for row in mixed.select_columns(["corpus"]).take_all()]
    # Stops when "small" runs out: 1200 / 0.3 = 4000 rows, 70 % from "big" overall and in
    # every stretch of the epoch (the corpora are interleaved, not concatenated).
    assert len(corpora) == pytest.approx(4000, abs=64)
    for start in range(0, len(corpora) - 640, 640):
        window = corpora[start : start + 640]
        assert window.count("big") / len(window) == pytest.approx(0.7, abs=0.05)


def test_prepare_inspect_and_stream_synthetic(tmp_path, ray_local, monkeypatch):
    from instancehmr.config import load_config
    from instancehmr.data.inspection import contact_sheet, summary
    from instancehmr.data.prepare import prepare

    card_path = tmp_path / "synthetic.yaml"
    card = (REPO / "datasets" / "synthetic.yaml").read_text()
    text = card.replace("image_size: 512", "image_size: 128")
    card_path.write_text(text)
    import yaml

    raw = yaml.safe_load(text)
    raw["options"]["sizes"] = {"train": 24, "val": 8, "test": 8}
    card_path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "shards"
    (manifest,) = prepare([card_path], out, rows_per_shard=8)
    assert (
        manifest["images"] == 40 and manifest["failed"] == 0 and manifest["shards_converted"] == 5
    )
    assert manifest["splits"]["test"]["label_coverage"]["occlusion"] == 1.0
    # A second run finds every shard up to date.
    (again,) = prepare([card_path], out, rows_per_shard=8)
    assert again["shards_converted"] == 0 and again["content_hash"] == manifest["content_hash"]
    assert json.loads((out / "synthetic" / "manifest.json").read_text())["images"] == 40
    assert "synthetic" in summary(out)
    sheet = contact_sheet(out, tmp_path / "sheet.png", count=4)
    assert cv2.imread(str(sheet)).shape[0] > 0
    # The README's way to get photos for `predict`: images of the test split as files.
    from instancehmr.cli import main

    argv = ["data", "inspect", str(out), "--split", "test", "--images", str(tmp_path / "photos"),
            "--count", "3"]  # fmt: skip
    assert main(argv) == 0
    photos = sorted((tmp_path / "photos").iterdir())
    assert len(photos) == 3 and all("_test_" in p.name for p in photos)
    assert all(cv2.imread(str(p)).shape == (128, 128, 3) for p in photos)

    cfg = load_config(
        REPO / "experiments" / "quickstart.yaml",
        [
            f"data.mix.0.card={card_path}",
            f"data.shards_dir={out}",
            "model.input_size=64",
            "model.map_size=8",
        ],
    )
    batch = next(iter(training_dataset(cfg).iter_batches(batch_size=4, batch_format="numpy")))
    assert batch["images"].shape == (4, 64, 64, 3)
    assert set(TARGET_COLUMNS) <= set(batch)
    assert batch["center_heatmap"].shape == (4, 1, 8, 8) and batch["person_mask"].any()


def coco_card(tmp_path: Path) -> Path:
    """A card over a copy of the real COCO sample (read-only fixtures are copied)."""
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(REAL / "coco", raw / "images")
    (raw / "images" / "test_coco.json").rename(raw / "ann.json")
    card = tmp_path / "coco.yaml"
    card.write_text(
        f"""name: coco
format: coco_keypoints
root: {raw}
splits:
  val: {{annotations: ann.json, images: images}}
labels: [keypoints_2d]
obtain: test copy
license: CC BY 4.0
role: benchmark
"""
    )
    return card


@pytest.mark.real_samples
def test_corrupt_images_are_counted_reported_and_fail_past_the_threshold(tmp_path, ray_local):
    from instancehmr.data.prepare import PrepareError, prepare

    card = coco_card(tmp_path)
    (manifest,) = prepare([card], tmp_path / "shards")
    assert manifest["images"] == 4 and manifest["failed"] == 0 and manifest["persons"] > 0
    victim = next((tmp_path / "raw" / "images").glob("*.jpg"))
    victim.write_bytes(victim.read_bytes()[:2000])  # truncated JPEG
    (manifest,) = prepare([card], tmp_path / "shards", max_error_rate=0.5, force=True)
    assert manifest["images"] == 3 and manifest["failed"] == 1
    report = (tmp_path / "shards" / "coco" / "errors.jsonl").read_text().splitlines()
    assert len(report) == 1 and victim.name in json.loads(report[0])["error"]
    with pytest.raises(
        PrepareError,
        match=r"1 of 4 samples failed \(25\.0% > max_error_rate 10\.0%\), the first: .*\.jpg: "
        r"corrupt jpeg image",
    ):
        prepare([card], tmp_path / "shards", max_error_rate=0.1, force=True)


@pytest.mark.real_samples
def test_a_card_pointing_at_missing_files_fails_before_any_work(tmp_path):
    from instancehmr.data.cards import CardError
    from instancehmr.data.prepare import prepare

    card = coco_card(tmp_path)
    (tmp_path / "raw" / "ann.json").unlink()
    with pytest.raises(CardError, match=r"splits\.val\.annotations: file .*ann\.json not found"):
        prepare([card], tmp_path / "shards")
    assert not (tmp_path / "shards").exists()
