"""The converter interface: raw corpus files -> :class:`~instancehmr.data.schema.ImageRecord`.

A converter first lists a split's items (one per image, cheap, checked: missing files and wrong
fields raise :class:`~instancehmr.data.cards.CardError` before any work), then converts each item
independently, so Ray Data can run the conversions in parallel. A corrupt sample raises
:class:`ConversionError`, which the shard writer counts and reports.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from instancehmr.data.cards import Card, CardError
from instancehmr.data.image import decode_image
from instancehmr.data.schema import (
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    ImageRecord,
    Person,
)
from instancehmr.geometry import in_frame
from instancehmr.provenance import code_digest

CONVERTERS: dict[str, type[Converter]] = {}


class ConversionError(ValueError):
    """One sample that could not be converted; the message names the file and what is wrong."""


class Converter(ABC):
    """One source format. Subclasses set ``format`` and ``split_files``; :meth:`code_version`
    identifies the code that converts (see :mod:`instancehmr.provenance`)."""

    format: ClassVar[str]
    #: Split fields the format needs: field name -> "file" or "dir".
    split_files: ClassVar[dict[str, str]]
    #: Optional split fields: field name -> "file" or "dir".
    optional_files: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None):
            CONVERTERS[cls.format] = cls

    def __init__(self) -> None:
        #: Per split, after :meth:`index`, for the formats that count what they index: images,
        #: people and the format's own counts (crowd regions left out, EFT fits matched, ...).
        #: Empty for the others.
        self.stats: dict[str, dict[str, int]] = {}

    @classmethod
    def code_version(cls) -> str:
        """Digest of the converter's module and of every module of this package it imports
        (schema, records, images, for the synthetic crowd the scene, labels, renderer and
        synthetic body): shards are keyed on it."""
        return code_digest(cls.__module__)

    def check(self, card: Card, split: str) -> None:
        """Every file the split names exists, with the right kind; raises CardError."""
        if split not in card.splits:
            raise card.fail("splits", f"no split '{split}'; the card has {sorted(card.splits)}")
        for key, kind in {**self.split_files, **self.optional_files}.items():
            if key not in card.splits[split]:
                if key in self.optional_files:
                    continue
                raise card.fail(f"splits.{split}.{key}", f"not set (format {self.format} needs it)")
            path = card.file(split, key)
            ok = path.is_file() if kind == "file" else path.is_dir()
            if not ok:
                hints = []
                if key in self.optional_files:
                    hints.append(
                        f"optional: delete splits.{split}.{key} from the card to do without"
                    )
                if not card.root.is_absolute() and "INSTANCEHMR_DATA" not in os.environ:
                    hints.append("a relative root is read under $INSTANCEHMR_DATA, unset: here")
                hint = f" ({'; '.join(hints)})" if hints else ""
                raise card.fail(f"splits.{split}.{key}", f"{kind} {path} not found{hint}")

    @abstractmethod
    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        """The split's items, one per image, as plain picklable dicts (after :meth:`check`)."""

    @abstractmethod
    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        """One item -> one record; raises ConversionError for a corrupt sample."""


def converter_for(card: Card) -> Converter:
    """The converter of ``card.format``; CardError naming the card for an unknown format."""
    try:
        return CONVERTERS[card.format]()
    except KeyError:
        raise card.fail(
            "format", f"unknown format '{card.format}'; known: {sorted(CONVERTERS)}"
        ) from None


class EncodedImage(NamedTuple):
    """An encoded image file's bytes, format ('jpeg' or 'png'), height and width."""

    data: bytes
    format: str
    height: int
    width: int


def read_image(path: Path) -> EncodedImage:
    """An image file's bytes, format ('jpeg' or 'png'), height and width in raw pixel space
    (:mod:`instancehmr.data.image`: an EXIF orientation tag is not applied).

    The image is decoded once to prove it is readable; ConversionError otherwise.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConversionError(f"{path}: cannot read image: {err}") from None
    if data[:3] == b"\xff\xd8\xff":
        fmt = "jpeg"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        fmt = "png"
    else:
        raise ConversionError(f"{path}: not a JPEG or PNG file")
    try:
        image = decode_image(data)
    except ValueError:
        raise ConversionError(f"{path}: corrupt {fmt} image (cannot be decoded)") from None
    return EncodedImage(data, fmt, image.shape[0], image.shape[1])


def make_record(
    card: Card,
    split: str,
    source_id: str,
    image: EncodedImage,
    persons: list[Person],
    intrinsics: np.ndarray | None = None,
) -> ImageRecord:
    """The record of one converted image; its sample id is ``<corpus>/<split>/<source_id>``,
    where ``source_id`` names the image within the split (a file stem, an image id, ...)."""
    data, fmt, height, width = image
    return ImageRecord(
        sample_id=f"{card.name}/{split}/{source_id}",
        corpus=card.name,
        split=split,
        image=data,
        image_format=fmt,
        height=height,
        width=width,
        persons=persons,
        intrinsics=intrinsics,
    )


def intrinsics_matrix(f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Focal lengths (fx, fy) and principal point (cx, cy) -> (3, 3) K."""
    fx, fy = np.asarray(f, np.float64).reshape(2)
    cx, cy = np.asarray(c, np.float64).reshape(2)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def frame_visibility(
    points: np.ndarray, labelled: np.ndarray, height: int, width: int
) -> np.ndarray:
    """(J, 2) pixel positions and (J,) label mask -> (J,) ``VIS_*`` codes: ``VIS_VISIBLE``
    inside the image, ``VIS_OUT_OF_FRAME`` outside, ``VIS_UNLABELLED`` where not labelled."""
    vis = np.where(in_frame(points, height, width), VIS_VISIBLE, VIS_OUT_OF_FRAME)
    vis[~labelled] = VIS_UNLABELLED
    return vis


def mark_out_of_frame(persons: list[Person], height: int, width: int) -> None:
    """Labelled joints outside the image (``in_frame``) get ``VIS_OUT_OF_FRAME`` (kept)."""
    for p in persons:
        outside = ~in_frame(p.keypoints_2d, height, width)
        p.keypoints_2d_vis[(p.keypoints_2d_vis != VIS_UNLABELLED) & outside] = VIS_OUT_OF_FRAME


__all__ = [
    "CONVERTERS",
    "Card",
    "CardError",
    "ConversionError",
    "Converter",
    "EncodedImage",
    "converter_for",
    "frame_visibility",
    "make_record",
    "read_image",
]


def read_json(card: Card, path: Path) -> Any:
    """A JSON file's content; CardError naming the card and file if it is not readable JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise CardError(f"{card.path}: {path}: not a readable JSON file: {err}") from None
