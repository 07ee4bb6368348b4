"""Decoding images: one definition for corpus records and one for people's own photos.

* :func:`decode_image` (conversion, the training pipeline, inspection, evaluation) decodes in raw
  pixel space: the pixel array as the file stores it, with a JPEG's EXIF orientation tag NOT
  applied. Corpus labels (COCO-style keypoints and boxes, the annotation tools' coordinates)
  refer to that array; OpenCV's default decoding rotates a tagged image, which would turn it
  under its labels (a square image silently, any other one with swapped height and width).
* :func:`decode_photo` (``instancehmr predict``, the served model) decodes as a person sees the
  photo: the EXIF orientation applied; grayscale, 16-bit and RGBA files become 8-bit RGB (16-bit
  values divided by 256, alpha dropped).
"""

from __future__ import annotations

import cv2
import numpy as np

#: OpenCV flags: three colour channels, orientation tag ignored.
RAW_COLOR = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
#: Image file suffixes ``decode_photo`` reads (OpenCV's JPEG, PNG, BMP, WebP and TIFF decoders).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def decode_image(data: bytes) -> np.ndarray:
    """Encoded JPEG/PNG bytes -> (H, W, 3) uint8 RGB in raw pixel space; ValueError when the
    bytes cannot be decoded."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), RAW_COLOR)
    if image is None:
        raise ValueError("image bytes cannot be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_photo(data: bytes) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, BMP, WebP, TIFF) -> (H, W, 3) uint8 RGB as displayed (EXIF
    orientation applied; grayscale, 16-bit and RGBA converted); ValueError when the bytes cannot
    be decoded."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable image (JPEG, PNG, BMP, WebP or TIFF)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
