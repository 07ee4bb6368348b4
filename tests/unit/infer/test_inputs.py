"""Inputs expand as a user names them, photos decode as a person sees them, and every input
that gives nothing is named with why."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from instancehmr.infer.inputs import find_inputs, read_image, video_frames


def png(path, image):
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def test_folders_globs_and_files_expand_once_each_in_order(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    one = png(tmp_path / "a" / "1.png", np.zeros((4, 4, 3), np.uint8))
    two = png(tmp_path / "a" / "deep" / "2.jpg", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / "clip.mp4").write_bytes(b"")
    found = find_inputs([str(tmp_path / "a"), str(tmp_path / "a" / "**" / "*.jpg"), str(one)])
    assert found.images == [one, two]
    assert found.videos == [tmp_path / "a" / "clip.mp4"]
    assert found.problems == []


def test_inputs_that_name_nothing_are_reported_by_name(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    specs = [str(tmp_path / "missing.jpg"), str(tmp_path / "empty"), str(tmp_path / "*.png"),
             str(tmp_path / "notes.txt")]  # fmt: skip
    problems = [str(p) for p in find_inputs(specs).problems]
    assert problems == [
        f"{specs[0]}: no such file or folder",
        f"{specs[1]}: folder has no images or videos (.jpg, .jpeg, .png, .bmp, .webp, .tif, "
        ".tiff, .mp4, .mov, .avi, .mkv, .webm, .m4v, .mpg, .mpeg)",
        f"{specs[2]}: pattern matches no image or video",
        f"{specs[3]}: not an image or video file (.jpg, .jpeg, .png, .bmp, .webp, .tif, .tiff, "
        ".mp4, .mov, .avi, .mkv, .webm, .m4v, .mpg, .mpeg)",
    ]


def test_an_exif_rotated_jpeg_is_read_as_displayed(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :10] = 255  # a white band on the left of the stored pixels
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    (tmp_path / "turned.jpg").write_bytes(buffer.getvalue())
    shown = read_image(tmp_path / "turned.jpg")
    assert shown.shape == (40, 20, 3)
    assert shown[:10].mean() > 200 and shown[-10:].mean() < 50  # the band is on top


@pytest.mark.parametrize(
    ("suffix", "stored"),
    [
        (".png", np.full((6, 8), 40000, np.uint16)),  # 16-bit grayscale
        (".png", np.dstack([np.full((6, 8, 3), 90, np.uint8), np.zeros((6, 8), np.uint8)])),
        (".bmp", np.full((6, 8, 3), 90, np.uint8)),
        (".webp", np.full((6, 8, 3), 90, np.uint8)),
        (".png", np.full((6, 8), 90, np.uint8)),  # 8-bit grayscale
    ],
)
def test_every_photo_kind_becomes_8_bit_rgb(tmp_path, suffix, stored):
    shown = read_image(png(tmp_path / f"x{suffix}", stored))
    assert shown.shape == (6, 8, 3) and shown.dtype == np.uint8
    expected = 40000 // 256 if stored.dtype == np.uint16 else 90
    assert abs(int(shown.mean()) - expected) <= 2


def test_a_corrupt_image_names_the_problem(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ValueError, match="not a decodable image"):
        read_image(tmp_path / "broken.jpg")


def test_video_frames_every_and_max(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 24))
    for i in range(7):
        writer.write(np.full((24, 32, 3), i * 30, np.uint8))
    writer.release()
    assert [f.frame for f in video_frames(path)] == list(range(7))
    assert [f.frame for f in video_frames(path, every=3)] == [0, 3, 6]
    assert [f.name for f in video_frames(path, every=2, max_frames=2)] == [
        f"{path}#0", f"{path}#2"
    ]  # fmt: skip
    (tmp_path / "bad.mp4").write_bytes(b"garbage" * 50)
    with pytest.raises(ValueError, match="cannot be opened as a video"):
        list(video_frames(tmp_path / "bad.mp4"))
