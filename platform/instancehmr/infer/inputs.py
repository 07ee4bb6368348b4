"""What ``instancehmr predict`` reads: image files, folders (recursively), glob patterns and
video files, as a stream of frames in display orientation (``data.image.decode_photo``).

Every problem with an input (a missing path, a folder without images, a file that does not
decode, a video that cannot be opened) is recorded as a :class:`Problem` naming the file, and the
other inputs still run.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from instancehmr.data.image import PHOTO_SUFFIXES, decode_photo

#: Video file suffixes read frame by frame with OpenCV.
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass
class Problem:
    """An input that gave no frame: its path and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Frame:
    """One image to predict on: ``image`` (H, W, 3) uint8 RGB; ``source`` the file it came from;
    ``frame`` its index in a video (None for an image file)."""

    source: str
    image: np.ndarray
    frame: int | None = None

    @property
    def name(self) -> str:
        """The file name, with ``#<frame>`` for a video frame."""
        return self.source if self.frame is None else f"{self.source}#{self.frame}"


@dataclass
class Inputs:
    """The image files and videos that the command line's INPUTs name, in order, each once;
    ``problems`` holds the inputs that name nothing readable."""

    images: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in PHOTO_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def find_inputs(specs: list[str]) -> Inputs:
    """Expand INPUTs: an image or video file; a folder (every image and video under it,
    recursively, sorted); a glob pattern (``*``, ``?``, ``[``, ``**`` recursive)."""
    found = Inputs()
    seen: set[Path] = set()

    def add(path: Path) -> None:
        kind = _kind(path)
        if path.resolve() in seen or kind is None:
            return
        seen.add(path.resolve())
        (found.images if kind == "image" else found.videos).append(path)

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p))
            if not files:
                known = ", ".join(PHOTO_SUFFIXES + VIDEO_SUFFIXES)
                found.problems.append(Problem(spec, f"folder has no images or videos ({known})"))
            for p in files:
                add(p)
        elif path.is_file():
            if _kind(path) is None:
                known = ", ".join(PHOTO_SUFFIXES + VIDEO_SUFFIXES)
                found.problems.append(Problem(spec, f"not an image or video file ({known})"))
            add(path)
        elif glob.has_magic(spec):
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not any(_kind(p) for p in files):
                found.problems.append(Problem(spec, "pattern matches no image or video"))
            for p in files:
                add(p)
        else:
            found.problems.append(Problem(spec, "no such file or folder"))
    return found


def read_image(path: Path) -> np.ndarray:
    """An image file as displayed, (H, W, 3) uint8 RGB; ValueError when it does not decode."""
    return decode_photo(path.read_bytes())


def video_frames(path: Path, every: int = 1, max_frames: int | None = None) -> Iterator[Frame]:
    """Every ``every``-th frame of a video (at most ``max_frames``), RGB. Raises ValueError when
    OpenCV cannot open the file (unknown container or codec)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(
            "cannot be opened as a video (OpenCV's FFmpeg found no readable container or codec)"
        )
    try:
        index = kept = 0
        while max_frames is None or kept < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield Frame(str(path), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), index)
                kept += 1
            index += 1
    finally:
        capture.release()


def video_fps(path: Path) -> float:
    """Frames per second a video declares (25 when it declares none)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    capture.release()
    return fps if fps and fps > 0 else 25.0
