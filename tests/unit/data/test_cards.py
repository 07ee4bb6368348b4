from pathlib import Path

import pytest

from instancehmr.data.cards import CardError, load_card

REPO = Path(__file__).resolve().parents[3]
GOOD = """
name: demo
format: coco_keypoints
root: raw/demo
splits:
  train: {annotations: ann.json, images: img}
labels: [keypoints_2d]
mix_weight: 0.5
obtain: from the demo site
license: CC-BY
role: train
"""


def write(tmp_path, text, name="demo.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_card_loads():
    cards = sorted((REPO / "datasets").glob("*.yaml"))
    assert cards, "datasets/ holds the corpus cards"
    for path in cards:
        card = load_card(path)
        assert card.name and card.splits and card.obtain


def test_card_fields_and_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCEHMR_DATA", str(tmp_path))
    card = load_card(write(tmp_path, GOOD))
    assert card.mix_weight == 0.5 and card.keep_every == 1
    assert card.file("train", "annotations") == tmp_path / "raw/demo/ann.json"
    with pytest.raises(CardError, match=r"splits\.train\.cameras is not set"):
        card.file("train", "cameras")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("mix_weight", "mix_wieght"),
            "unknown field 'mix_wieght' (did you mean 'mix_weight'?)",
        ),
        (lambda t: t.replace("license: CC-BY\n", ""), "missing fields ['license']"),
        (
            lambda t: t.replace("[keypoints_2d]", "[keypoints_4d]"),
            "labels: unknown ['keypoints_4d']",
        ),
        (
            lambda t: t.replace("mix_weight: 0.5", "mix_weight: -1"),
            "mix_weight: must be a positive number",
        ),
        (lambda t: t.replace("role: train", "role: eval"), "role: 'eval' is not"),
        (lambda t: t + "keep_every: 0\n", "keep_every: must be a positive integer"),
        (lambda t: "- a list\n", "a card is a mapping"),
    ],
)
def test_bad_cards_name_file_and_field(tmp_path, edit, message):
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(CardError) as err:
        load_card(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_card_file(tmp_path):
    with pytest.raises(CardError, match="corpus card not found"):
        load_card(tmp_path / "none.yaml")


def test_a_relative_card_path_is_found_from_any_working_directory(tmp_path, monkeypatch):
    """The working directory first (a card of the user's own wins), then the repository."""
    monkeypatch.chdir(tmp_path)
    card = load_card("datasets/3dpw.yaml")
    assert card.path == REPO / "datasets" / "3dpw.yaml" and card.name == "3dpw"
    own = tmp_path / "datasets" / "3dpw.yaml"
    own.parent.mkdir()
    own.write_text(GOOD)
    assert load_card("datasets/3dpw.yaml").name == "demo"
    with pytest.raises(CardError, match=r"datasets/nowhere\.yaml: corpus card not found"):
        load_card("datasets/nowhere.yaml")
