"""Shard tasks of ``data prepare``: lossless transport of index items, fingerprints that see
every value, and a failing sample that is counted instead of ending the job."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from instancehmr.body.joint_sets import COCO17
from instancehmr.data.cards import load_card
from instancehmr.data.corpora.base import Converter, EncodedImage, make_record
from instancehmr.data.prepare import ShardTask, _digest, convert_shard
from instancehmr.data.schema import VIS_VISIBLE, Person

REPO = Path(__file__).resolve().parents[3]


class ArrayItems(Converter):
    """A test format whose items hold arrays, tuples and paths; item ``boom`` raises."""

    format = "test_array_items"
    split_files: ClassVar[dict[str, str]] = {}

    def index(self, card, split) -> list[dict[str, Any]]:
        raise NotImplementedError

    def convert(self, card, split, item):
        if item["boom"]:
            return item["keypoints"][(0, 1)]  # TypeError on a list: not a ConversionError
        kp = item["keypoints"]
        assert isinstance(kp, np.ndarray) and kp.dtype == np.float32 and kp.shape == (17, 2)
        assert isinstance(item["where"], Path) and item["pair"] == (3, 4)
        _, png = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))
        person = Person.from_joint_set(COCO17, kp, np.full(17, VIS_VISIBLE))
        image = EncodedImage(png.tobytes(), "png", 64, 64)
        return make_record(card, split, item["id"], image, [person])


def card_file(tmp_path: Path) -> Path:
    path = tmp_path / "card.yaml"
    path.write_text(
        "name: arrays\nformat: test_array_items\nroot: .\nsplits: {train: {}}\n"
        "labels: [keypoints_2d]\nobtain: test\nlicense: test\nrole: train\n"
    )
    return path


def test_items_reach_convert_exactly_and_a_raising_sample_is_counted(tmp_path):
    rng = np.random.default_rng(0)
    good = {
        "id": "a",
        "keypoints": rng.uniform(5, 60, (17, 2)).astype(np.float32),
        "where": tmp_path,
        "pair": (3, 4),
        "boom": False,
    }
    bad = {**good, "id": "b", "keypoints": [1.0, 2.0], "boom": True}
    card = load_card(card_file(tmp_path))
    task = ShardTask(str(tmp_path / "out"), str(card.path), "train", 0, "key", [good, bad])
    result = json.loads(convert_shard({"task": pickle.dumps(task)})["result"])
    assert result["images"] == 1 and result["failed"] == 1
    (error,) = result["errors"]
    assert error["error"].startswith("TypeError: ") and "test_prepare.py:" in error["error"]
    assert '"id": "b"' in error["item"]
    table = pq.read_table(task.file)
    assert table.num_rows == 1 and table.column("sample_id").to_pylist() == ["arrays/train/a"]


def test_the_shard_key_sees_every_array_value():
    """A str() of a large array elides its middle: the key must change anyway."""
    items = [{"S": np.zeros((2000, 3), np.float32)}]
    changed = [{"S": items[0]["S"].copy()}]
    changed[0]["S"][1000, 1] = 1.0
    assert _digest(items) != _digest(changed)
    assert _digest(items) == _digest([{"S": np.zeros((2000, 3), np.float32)}])
    assert _digest([{"S": np.zeros(3, np.float32)}]) != _digest([{"S": np.zeros(3, np.float64)}])
    with pytest.raises(TypeError, match="cannot fingerprint a object"):
        _digest([object()])


def test_only_the_splits_asked_for_are_checked_and_a_stale_manifest_is_not_trusted(tmp_path):
    """ensure_prepared needs the raw files of the splits it is asked for only; shards other
    converter code wrote are prepared again (here: their raw files are missing, so it says
    so), an unknown split is a card error."""
    from instancehmr.data.cards import CardError
    from instancehmr.data.prepare import (
        MANIFEST,
        DataUnavailable,
        ensure_prepared,
        plan_shards,
        split_key,
    )

    raw = yaml.safe_load((REPO / "datasets" / "3dpw.yaml").read_text())
    raw["root"] = str(tmp_path / "raw")
    (tmp_path / "raw" / "sequenceFiles" / "test").mkdir(parents=True)
    (tmp_path / "raw" / "imageFiles").mkdir()
    path = tmp_path / "3dpw.yaml"
    path.write_text(yaml.safe_dump(raw))
    card = load_card(path)
    with pytest.raises(CardError, match=r"splits: no split \['tset'\]; the card has"):
        ensure_prepared(card, tmp_path / "shards", ["tset"])
    # Only the test split is checked: its folder exists but holds no sequence.
    with pytest.raises(CardError, match=r"splits\.test\.sequences: no \*\.pkl files"):
        plan_shards(card, tmp_path / "shards", 8, ["test"])
    manifest = {"splits": {"test": {"key": split_key(card, "test"), "images": 3}}}
    (tmp_path / "shards" / "3dpw").mkdir(parents=True)
    (tmp_path / "shards" / "3dpw" / MANIFEST).write_text(json.dumps(manifest))
    assert ensure_prepared(card, tmp_path / "shards", ["test"]) == manifest
    manifest["splits"]["test"]["key"] = "made-by-other-code"
    (tmp_path / "shards" / "3dpw" / MANIFEST).write_text(json.dumps(manifest))
    (tmp_path / "raw" / "sequenceFiles" / "test").rmdir()
    with pytest.raises(DataUnavailable, match=r"shards of test under .* were made by another card"):
        ensure_prepared(card, tmp_path / "shards", ["test"])


def test_shards_are_prepared_again_when_the_card_or_the_generator_code_changes(
    tmp_path, monkeypatch
):
    """``train`` and ``eval`` call ensure_prepared: an edited synthetic card option, or an edit
    to the code that generates the crowd (its digest), makes the shards again; unchanged,
    nothing is converted."""
    from instancehmr.data.corpora.synthetic import SyntheticCrowd
    from instancehmr.data.prepare import ensure_prepared

    raw = yaml.safe_load((REPO / "datasets" / "synthetic.yaml").read_text())
    raw["options"].update({"image_size": 64, "sizes": {"train": 2, "val": 1, "test": 1}})
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump(raw))
    shards = tmp_path / "shards"
    first = ensure_prepared(load_card(path), shards, ["val"])
    assert first["shards_converted"] == 1
    assert ensure_prepared(load_card(path), shards, ["val"]) == first  # up to date: untouched

    raw["options"]["occlusion"] = "severe" if raw["options"]["occlusion"] != "severe" else "none"
    path.write_text(yaml.safe_dump(raw))
    edited = ensure_prepared(load_card(path), shards, ["val"])
    assert edited["shards_converted"] == 1 and edited["content_hash"] != first["content_hash"]

    monkeypatch.setattr(SyntheticCrowd, "code_version", classmethod(lambda cls: "0123456789abcdef"))
    recoded = ensure_prepared(load_card(path), shards, ["val"])
    assert recoded["shards_converted"] == 1 and recoded["code_version"] == "0123456789abcdef"
    assert recoded["content_hash"] not in (first["content_hash"], edited["content_hash"])
