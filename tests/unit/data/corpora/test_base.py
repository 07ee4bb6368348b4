"""The converter interface's file check: the error names the field and says what to do."""

from __future__ import annotations

import pytest
import yaml

from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import converter_for


def coco_card(tmp_path, root: str) -> object:
    path = tmp_path / "coco.yaml"
    path.write_text(yaml.safe_dump({
        "name": "coco", "format": "coco_keypoints", "root": root, "labels": ["keypoints_2d"],
        "splits": {"train": {"annotations": "a.json", "images": "images", "eft": "eft.json"}},
        "obtain": "x", "license": "x", "role": "train",
    }))  # fmt: skip
    return load_card(path)


def test_a_missing_optional_file_says_the_card_can_do_without_it(tmp_path):
    (tmp_path / "raw" / "images").mkdir(parents=True)
    (tmp_path / "raw" / "a.json").write_text("{}")
    card = coco_card(tmp_path, str(tmp_path / "raw"))
    with pytest.raises(CardError, match=r"splits\.train\.eft: file .*eft\.json not found "
                       r"\(optional: delete splits\.train\.eft from the card to do without\)$"):  # fmt: skip
        converter_for(card).check(card, "train")


def test_a_relative_root_without_instancehmr_data_says_where_it_was_read(tmp_path, monkeypatch):
    monkeypatch.delenv("INSTANCEHMR_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    card = coco_card(tmp_path, "data/raw/coco")
    with pytest.raises(CardError, match=r"a relative root is read under \$INSTANCEHMR_DATA"):
        converter_for(card).check(card, "train")
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    card = coco_card(tmp_path, "data/raw/coco")
    with pytest.raises(CardError) as info:
        converter_for(card).check(card, "train")
    assert "INSTANCEHMR_DATA" not in str(info.value)
