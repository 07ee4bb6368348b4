"""Images decode in raw pixel space: an EXIF orientation tag must not turn an image under its
labels (conversion, the training pipeline, inspection and evaluation share one decoder)."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from instancehmr.data.corpora.base import read_image
from instancehmr.data.image import decode_image

ROTATE_90_CW = 6  # EXIF Orientation: the viewer turns the stored array 90 degrees clockwise


def tagged_jpeg(orientation: int = ROTATE_90_CW) -> tuple[bytes, np.ndarray]:
    """A 40 x 80 (h x w) JPEG with a white block in its top-left corner, tagged with an EXIF
    orientation; returns the bytes and the raw RGB array written."""
    raw = np.zeros((40, 80, 3), np.uint8)
    raw[:10, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(raw).save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue(), raw


def test_the_orientation_tag_is_not_applied(tmp_path):
    data, raw = tagged_jpeg()
    applied = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert applied.shape[:2] == (80, 40)  # OpenCV's default turns it: the tag is effective
    image = decode_image(data)
    assert image.shape == raw.shape
    assert image[:10, :20].mean() > 240 and image[20:, 40:].mean() < 15  # block stays top-left
    path = tmp_path / "tagged.jpg"
    path.write_bytes(data)
    encoded = read_image(path)
    assert (encoded.height, encoded.width) == (40, 80) and encoded.data == data
