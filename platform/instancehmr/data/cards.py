"""Corpus cards: one YAML per corpus in ``datasets/`` saying which converter reads it, where its
raw files are, which labels it carries, its default mix weight and how to obtain it.

A card is checked before any work: unknown or missing fields, an unknown format, and (through
the converter) missing files are reported with the card's path and the field's name.

Paths in ``splits`` are relative to ``root``; a relative ``root`` is relative to the directory
``$INSTANCEHMR_DATA`` names (default: the working directory).

A relative card path (``datasets/3dpw.yaml``, as benchmarks and configs name cards) is looked up
in the working directory first, then in the repository this package belongs to (``REPOSITORY``,
where ``datasets/`` lives), so commands find the shipped cards from any working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instancehmr.config import did_you_mean, read_yaml

LABELS = ("keypoints_2d", "keypoints_3d", "smpl_gt", "smpl_eft", "intrinsics", "occlusion")
CARD_FIELDS = {
    "name": "corpus name, used in sample ids and shard folders",
    "format": "converter that reads the raw files",
    "root": "folder holding the raw files",
    "splits": "split name -> {field: path under root} as the converter needs",
    "labels": f"labels the corpus carries, from {LABELS}",
    "mix_weight": "default weight when training mixes corpora",
    "keep_every": "keep one frame in this many (video corpora)",
    "options": "converter-specific settings",
    "obtain": "how to get the raw files",
    "license": "the corpus's license terms",
    "role": "train | benchmark | both",
}
REQUIRED = ("name", "format", "root", "splits", "labels", "obtain", "license", "role")
#: The repository holding this package (``platform/instancehmr/data/cards.py``).
REPOSITORY = Path(__file__).resolve().parents[3]


class CardError(ValueError):
    """A corpus card that cannot be used; the message names the card file and field."""


@dataclass(frozen=True)
class Card:
    path: Path
    name: str
    format: str
    root: Path
    splits: dict[str, dict[str, str]]
    labels: tuple[str, ...]
    obtain: str
    license: str
    role: str
    mix_weight: float = 1.0
    keep_every: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def file(self, split: str, key: str) -> Path:
        """The path a split's field names, under ``root``; CardError if the field is absent."""
        try:
            return self.root / self.splits[split][key]
        except KeyError:
            raise CardError(f"{self.path}: splits.{split}.{key} is not set") from None

    def fail(self, where: str, why: str) -> CardError:
        """A CardError naming this card and ``where`` (a dotted field)."""
        return CardError(f"{self.path}: {where}: {why}")


def data_root() -> Path:
    return Path(os.environ.get("INSTANCEHMR_DATA", "."))


def card_path(path: str | Path) -> Path:
    """Where the card ``path`` names is: as given when absolute or found from the working
    directory, else under ``REPOSITORY`` when there (see the module docstring); as given
    otherwise."""
    path = Path(path)
    if path.is_absolute() or path.is_file() or not (REPOSITORY / path).is_file():
        return path
    return REPOSITORY / path


def load_card(path: str | Path) -> Card:
    """Read and check a card's fields (not yet its files: see the converter's ``check``);
    ``path`` is found as :func:`card_path` says. CardError naming the file and field."""
    path = card_path(path)
    if not path.is_file():
        raise CardError(f"{path}: corpus card not found")
    raw = read_yaml(path, CardError)
    if not isinstance(raw, dict):
        raise CardError(f"{path}: a card is a mapping of fields {sorted(CARD_FIELDS)}")
    for key in raw:
        if key not in CARD_FIELDS:
            raise CardError(f"{path}: unknown field '{key}'{did_you_mean(key, CARD_FIELDS)}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise CardError(
            f"{path}: missing fields {missing} ({'; '.join(CARD_FIELDS[k] for k in missing)})"
        )
    splits = raw["splits"]
    if not isinstance(splits, dict) or not splits:
        raise CardError(f"{path}: splits: needs at least one split mapping to its files")
    for name, files in splits.items():
        if not isinstance(files, dict):
            raise CardError(
                f"{path}: splits.{name}: expected a mapping of field -> path, got {files!r}"
            )
    unknown = [label for label in raw["labels"] if label not in LABELS]
    if unknown:
        raise CardError(f"{path}: labels: unknown {unknown}; known: {list(LABELS)}")
    if raw["role"] not in ("train", "benchmark", "both"):
        raise CardError(f"{path}: role: '{raw['role']}' is not train, benchmark or both")
    weight = raw.get("mix_weight", 1.0)
    if not isinstance(weight, int | float) or weight <= 0:
        raise CardError(f"{path}: mix_weight: must be a positive number, got {weight!r}")
    keep = raw.get("keep_every", 1)
    if not isinstance(keep, int) or keep < 1:
        raise CardError(f"{path}: keep_every: must be a positive integer, got {keep!r}")
    root = Path(str(raw["root"]))
    return Card(
        path=path,
        name=str(raw["name"]),
        format=str(raw["format"]),
        root=root if root.is_absolute() else data_root() / root,
        splits={str(k): {str(f): str(p) for f, p in v.items()} for k, v in splits.items()},
        labels=tuple(raw["labels"]),
        obtain=str(raw["obtain"]),
        license=str(raw["license"]),
        role=raw["role"],
        mix_weight=float(weight),
        keep_every=keep,
        options=dict(raw.get("options") or {}),
    )
