"""Corpus converters, one module per source format; importing this package registers them all."""

from instancehmr.data.corpora import (  # noqa: F401  (each module registers its converter)
    coco,
    lsp,
    mpii,
    muco,
    panoptic,
    pw3d,
    spin_npz,
    synthetic,
)
from instancehmr.data.corpora.base import CONVERTERS, ConversionError, Converter, converter_for

__all__ = ["CONVERTERS", "ConversionError", "Converter", "converter_for"]
