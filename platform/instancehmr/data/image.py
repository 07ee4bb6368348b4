"""Decoding stored images in raw pixel space, one definition for conversion, the training
pipeline, inspection and evaluation.

Raw pixel space is the pixel array as the file stores it, with a JPEG's EXIF orientation tag NOT
applied. Corpus labels (COCO-style keypoints and boxes, the annotation tools' coordinates) refer
to that array; OpenCV's default decoding rotates a tagged image, which would turn it under its
labels (a square image silently, any other one with swapped height and width).
"""

from __future__ import annotations

import cv2
import numpy as np

#: OpenCV flags: three colour channels, orientation tag ignored.
RAW_COLOR = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def decode_image(data: bytes) -> np.ndarray:
    """Encoded JPEG/PNG bytes -> (H, W, 3) uint8 RGB in raw pixel space; ValueError when the
    bytes cannot be decoded."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), RAW_COLOR)
    if image is None:
        raise ValueError("image bytes cannot be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
