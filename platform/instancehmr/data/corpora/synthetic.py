"""The synthetic crowd corpus (format ``synthetic_crowd``): the embedded default corpus.

Nothing is read from disk: sample ``i`` of a split is drawn from numpy's ``SeedSequence((seed,
crc32(split), i))``, so it is the same bytes and labels whichever process or worker draws it,
in any order. Each image holds 1..``max_people`` people of the platform's synthetic SMPL-format
body over a procedural background, with exact labels (see
:mod:`instancehmr.data.synthetic.labels`): canonical 2-D joints with visibility from the depth
buffer, 3-D joints, SMPL pose / betas / translation (camera frame, source ``gt``), intrinsics,
boxes and occlusion fractions.

Card options (all optional): ``image_size`` (512), ``max_people`` (6), ``occlusion``
(``moderate``: one of none, light, moderate, severe, or a number in [0, 1]), ``seed`` (0),
``sizes`` ({split: number of images} for every split of the card).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from omegaconf import OmegaConf

from instancehmr.body.smpl import BodyModel
from instancehmr.config import BodyConfig
from instancehmr.data.cards import Card
from instancehmr.data.corpora.base import ConversionError, Converter, EncodedImage, make_record
from instancehmr.data.schema import ImageRecord
from instancehmr.data.synthetic.labels import face_parts, label_people
from instancehmr.data.synthetic.scene import CrowdGenerator, occlusion_amount

JPEG_QUALITY = 90
DEFAULTS: dict[str, Any] = {"image_size": 512, "max_people": 6, "occlusion": "moderate", "seed": 0}


@dataclass(frozen=True)
class CrowdOptions:
    image_size: int
    max_people: int
    occlusion: float
    seed: int
    sizes: dict[str, int]


def _integer(card: Card, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise card.fail(f"options.{key}", f"must be an integer in [{low}, {high}], got {value!r}")
    return value


def crowd_options(card: Card) -> CrowdOptions:
    """The card's options with defaults, checked; CardError naming ``options.<key>``."""
    options = {**DEFAULTS, **card.options}
    unknown = sorted(set(options) - {*DEFAULTS, "sizes"})
    if unknown:
        raise card.fail(f"options.{unknown[0]}", f"unknown option; known: {[*DEFAULTS, 'sizes']}")
    try:
        occlusion = occlusion_amount(options["occlusion"])
    except ValueError as err:
        raise card.fail("options.occlusion", str(err)) from None
    sizes = options.get("sizes")
    if not isinstance(sizes, dict):
        raise card.fail(
            "options.sizes", f"must map each split to its number of images, got {sizes!r}"
        )
    for split in [*card.splits, *sizes]:
        if split not in sizes or split not in card.splits:
            raise card.fail(
                f"options.sizes.{split}",
                f"sizes must name exactly the card's splits {sorted(card.splits)}",
            )
        _integer(card, f"sizes.{split}", sizes[split], 0, 10**9)
    return CrowdOptions(
        image_size=_integer(card, "image_size", options["image_size"], 64, 4096),
        max_people=_integer(card, "max_people", options["max_people"], 1, 32),
        occlusion=occlusion,
        seed=_integer(card, "seed", options["seed"], 0, 2**63 - 1),
        sizes={str(k): int(v) for k, v in sizes.items()},
    )


_GENERATOR: tuple[CrowdGenerator, np.ndarray] | None = None


def crowd_generator() -> tuple[CrowdGenerator, np.ndarray]:
    """This process's generator over the synthetic body and its triangles' skinning parts
    (built on first use, so Ray workers each build their own)."""
    global _GENERATOR
    if _GENERATOR is None:
        cfg = BodyConfig(model_path=None, h36m_regressor_path=None, prior_path=None, num_betas=10)
        body = BodyModel.from_config(OmegaConf.structured(cfg))
        _GENERATOR = CrowdGenerator(body), face_parts(body)
    return _GENERATOR


def sample_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(split.encode()), index])


class SyntheticCrowd(Converter):
    format = "synthetic_crowd"
    split_files: ClassVar[dict[str, str]] = {}  # nothing to read: every image is generated

    def check(self, card: Card, split: str) -> None:
        super().check(card, split)
        crowd_options(card)

    def index(self, card: Card, split: str) -> list[dict[str, Any]]:
        return [{"index": i} for i in range(crowd_options(card).sizes[split])]

    def convert(self, card: Card, split: str, item: dict[str, Any]) -> ImageRecord:
        options, index = crowd_options(card), int(item["index"])
        generator, parts = crowd_generator()
        rng = np.random.default_rng(sample_seed(options.seed, split, index))
        scene = generator.sample(rng, options.image_size, options.max_people, options.occlusion)
        image, buffers = generator.draw(scene)
        ok, jpeg = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        source_id = f"{index:06d}"
        if not ok:
            raise ConversionError(f"{card.name}/{split}/{source_id}: JPEG encoding failed")
        size = options.image_size
        return make_record(
            card,
            split,
            source_id,
            EncodedImage(jpeg.tobytes(), "jpeg", size, size),
            label_people(scene, buffers, parts),
            scene.camera.intrinsics.astype(np.float32),
        )
