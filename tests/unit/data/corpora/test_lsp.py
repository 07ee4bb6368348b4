"""lsp on joints.mat files written in LSP's (3 x 14 x N) and LSPet's (14 x 3 x N) layouts.

LSP's third row is 1 for an OCCLUDED joint (its README says "visibility", its data mean the
opposite); LSPet's third column is 1 for a VISIBLE joint. Both are MATLAB 1-based pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml
from corpus_files import lsp_joints, write_lsp, write_lspet

from instancehmr.body.joint_sets import CANONICAL_INDEX, LSP14
from instancehmr.data.cards import CardError, load_card
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.corpora.lsp import Lsp
from instancehmr.data.schema import (
    VIS_OCCLUDED,
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    to_table,
)

J = CANONICAL_INDEX
LSP = LSP14.canonical_indices


def make_card(tmp_path: Path, splits: dict, options: dict | None = None):
    card = {
        "name": "lsp",
        "format": "lsp",
        "root": str(tmp_path),
        "splits": splits,
        "labels": ["keypoints_2d"],
        "obtain": "test",
        "license": "test",
        "role": "train",
        "options": options or {},
    }
    path = tmp_path / "lsp.yaml"
    path.write_text(yaml.safe_dump(card))
    return load_card(path)


def convert_all(card, split: str):
    converter = Lsp()
    converter.check(card, split)
    records = [converter.convert(card, split, i) for i in converter.index(card, split)]
    assert to_table(records).num_rows == len(records)
    return converter, records


def lsp_fixture(tmp_path: Path, n: int = 3) -> np.ndarray:
    """LSP's layout (3 x 14 x n joints.mat, im0001.jpg ... of 640 x 425) with the head top of
    the first image right of it; returns the (n, 14, 3) joints."""
    joints = lsp_joints(n, np.random.default_rng(0))
    joints[0, 13, :2] = (700.0, 50.0)  # head top right of the 640-wide image
    return write_lsp(tmp_path, joints=joints)


def lspet_fixture(tmp_path: Path, n: int = 2) -> np.ndarray:
    """hr-lspet/joints.mat (14 x 3 x n) and PNG images im00001.png ...; the (n, 14, 3) joints."""
    return write_lspet(tmp_path, n)


LSP_SPLIT = {"joints": "lsp_dataset_original/joints.mat", "images": "lsp_dataset_original/images"}
LSPET_SPLIT = {"joints": "hr-lspet/joints.mat", "images": "hr-lspet"}


def test_lsp_layout_flag_one_is_occluded(tmp_path):
    joints = lsp_fixture(tmp_path)
    converter, records = convert_all(make_card(tmp_path, {"train": LSP_SPLIT}), "train")
    assert [r.sample_id for r in records] == [
        "lsp/train/im0001",
        "lsp/train/im0002",
        "lsp/train/im0003",
    ]
    assert converter.stats["train"] == {"images": 3, "persons": 3}
    for record, raw in zip(records, joints, strict=True):
        (person,) = record.persons
        np.testing.assert_allclose(person.keypoints_2d[LSP], raw[:, :2] - 1.0, rtol=1e-6)
        expected = np.where(raw[:, 2] == 1, VIS_OCCLUDED, VIS_VISIBLE)
        if record.sample_id == "lsp/train/im0001":
            expected[13] = VIS_OUT_OF_FRAME
        np.testing.assert_array_equal(person.keypoints_2d_vis[LSP], expected)
        assert (person.keypoints_2d_vis != VIS_UNLABELLED).sum() == 14
    head = records[0].persons[0]
    assert head.keypoints_2d[J["head_top"]].tolist() == [699.0, 49.0]
    np.testing.assert_allclose(head.keypoints_2d[J["upper_neck"]], joints[0, 12, :2] - 1, rtol=1e-6)


def test_lspet_layout_flag_one_is_visible_and_png_images(tmp_path):
    joints = lspet_fixture(tmp_path)
    _, records = convert_all(make_card(tmp_path, {"lspet": LSPET_SPLIT}), "lspet")
    assert [r.sample_id for r in records] == ["lsp/lspet/im00001", "lsp/lspet/im00002"]
    assert records[0].image_format == "png" and (records[0].height, records[0].width) == (200, 300)
    for record, raw in zip(records, joints, strict=True):
        person = record.persons[0]
        expected = np.where(raw[:, 2] == 1, VIS_VISIBLE, VIS_OCCLUDED)
        np.testing.assert_array_equal(person.keypoints_2d_vis[LSP], expected)
        np.testing.assert_allclose(person.keypoints_2d[LSP], raw[:, :2] - 1.0, rtol=1e-6)


def test_image_range_and_a_single_image_file(tmp_path):
    lsp_fixture(tmp_path)
    card = make_card(tmp_path, {"train": LSP_SPLIT}, {"image_range": {"train": [2, 3]}})
    _, records = convert_all(card, "train")
    assert [r.sample_id for r in records] == ["lsp/train/im0002", "lsp/train/im0003"]
    one = lsp_joints(1, np.random.default_rng(2))[0]  # MATLAB saves 3 x 14 x 1 as 3 x 14
    scipy.io.savemat(tmp_path / "lsp_dataset_original" / "joints.mat", {"joints": one.T})
    _, records = convert_all(make_card(tmp_path, {"train": LSP_SPLIT}), "train")
    assert len(records) == 1


def test_bad_input(tmp_path):
    lsp_fixture(tmp_path)
    card = make_card(tmp_path, {"train": LSP_SPLIT}, {"image_range": {"train": [2, 9]}})
    with pytest.raises(
        CardError, match=r"options\.image_range\.train: \[2, 9\] is not within 1\.\.3"
    ):
        Lsp().index(card, "train")
    scipy.io.savemat(
        tmp_path / "lsp_dataset_original" / "joints.mat", {"joints": np.zeros((14, 2, 3))}
    )
    with pytest.raises(CardError, match=r"joints\.mat: joints: shape \(14, 2, 3\)"):
        Lsp().index(make_card(tmp_path, {"train": LSP_SPLIT}), "train")
    joints = lsp_joints(3, np.random.default_rng(0))
    joints[1, 4, 2] = 7  # not a 0/1 flag
    scipy.io.savemat(
        tmp_path / "lsp_dataset_original" / "joints.mat", {"joints": joints.transpose(2, 1, 0)}
    )
    card = make_card(tmp_path, {"train": LSP_SPLIT})
    item = Lsp().index(card, "train")[1]
    with pytest.raises(ConversionError, match=r"im0002\.jpg: visibility flags"):
        Lsp().convert(card, "train", item)
    (tmp_path / "lsp_dataset_original" / "images" / "im0001.jpg").unlink()
    with pytest.raises(CardError, match=r"splits\.train\.images: no im0001\.jpg or \.png"):
        Lsp().index(card, "train")
    with pytest.raises(CardError, match=r"splits\.train\.joints: file .* not found"):
        Lsp().check(make_card(tmp_path, {"train": dict(LSP_SPLIT, joints="none.mat")}), "train")


def test_shipped_card_reads_its_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    root = tmp_path / "data" / "raw" / "lsp"
    lsp_fixture(root)
    card = load_card(Path(__file__).resolve().parents[4] / "datasets" / "lsp.yaml")
    with pytest.raises(CardError, match=r"image_range\.train: \[1, 1000\] is not within 1\.\.3"):
        Lsp().index(card, "train")
    lspet_fixture(root)
    (root / "eft_fit").mkdir()
    (root / "eft_fit" / "LSPet_ver01.json").write_text('{"ver": "01", "data": []}')
    converter, records = convert_all(card, "lspet")
    assert len(records) == 2
    assert converter.stats["lspet"] == {
        "images": 2, "persons": 2, "eft_fits": 0, "eft_matched": 0, "eft_unmatched": 0,
    }  # fmt: skip
