"""``instancehmr predict MODEL INPUT...``: every person in images, folders, glob patterns and
videos, written as JSON lines, arrays, meshes and overlays (:mod:`instancehmr.infer.outputs`).

MODEL is any reference ``instancehmr eval`` takes (a checkpoint folder, an MLflow run id,
``models:/NAME@ALIAS``, ``models:/NAME/VERSION``). Options are checked and inputs expanded
before the model loads; an input that cannot be read (a missing path, a file that does not
decode, a video OpenCV cannot open) is reported by name and counted, and the others still run.
Images go through the network in batches, on the GPU when there is one. With ``--ray`` (or
when ``RAY_ADDRESS`` names a cluster) images go through :mod:`instancehmr.infer.batch` instead.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from instancehmr.body.smpl import BodyModel
from instancehmr.config import to_yaml
from instancehmr.infer.batch import predict_on_ray
from instancehmr.infer.inputs import (
    Frame,
    Inputs,
    Problem,
    find_inputs,
    read_image,
    video_fps,
    video_frames,
)
from instancehmr.infer.outputs import MESH_FORMATS, PredictionWriter
from instancehmr.model.checkpoint import TrainingState
from instancehmr.model.predictor import DEFAULT_FOV_DEG, Predictor
from instancehmr.track.models import LoadedModel, load_model

# Imported inside the function that uses it, to keep this module light: tqdm.

BATCH_IMAGES = 16


@dataclass
class PredictOptions:
    """What to write and how to read (the command's options)."""

    mesh: str | None = None
    overlay: bool = False
    side_by_side: bool = False
    vertices: bool = False
    every: int = 1
    max_frames: int | None = None
    batch_size: int = BATCH_IMAGES
    fov: float = DEFAULT_FOV_DEG
    #: Run on Ray (``infer.batch``): True, False, or None for "when RAY_ADDRESS is set".
    ray: bool | None = None
    #: Model actors on Ray (None: one per GPU, else one per two CPUs).
    workers: int | None = None

    def check(self) -> None:
        """ValueError naming the first option out of range."""
        if self.mesh is not None and self.mesh not in MESH_FORMATS:
            raise ValueError(
                f"--mesh {self.mesh}: unknown format; known: {', '.join(MESH_FORMATS)}"
            )
        for name in ("every", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("--max-frames must be at least 1")
        if not 0 < self.fov < 180:
            raise ValueError(f"--fov must be in (0, 180) degrees, got {self.fov}")
        if self.workers is not None and self.workers < 1:
            raise ValueError("--workers must be at least 1")

    def on_ray(self) -> bool:
        """Whether this run goes through Ray: ``--ray``, or a cluster named by RAY_ADDRESS."""
        return bool(os.environ.get("RAY_ADDRESS")) if self.ray is None else self.ray


@dataclass
class PredictSummary:
    """What a prediction run did: images and video frames predicted, people found, inputs that
    failed (with why), seconds, and where the results are."""

    out_dir: str
    images: int = 0
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)

    def line(self) -> str:
        done = self.images + self.frames
        rate = done / self.seconds if self.seconds else 0.0
        text = (f"{self.images} images and {self.frames} video frames, {self.people} people, "
                f"{self.seconds:.1f} s ({rate:.1f} images/s) -> {self.out_dir}")  # fmt: skip
        return text + (f"; {len(self.failed)} inputs failed" if self.failed else "")


def _frames(inputs: Inputs, options: PredictOptions, problems: list[Problem]) -> Iterator[Frame]:
    for path in inputs.images:
        try:
            yield Frame(str(path), read_image(path))
        except (OSError, ValueError) as err:
            problems.append(Problem(str(path), str(err)))
    for path in inputs.videos:
        try:
            yield from video_frames(path, options.every, options.max_frames)
        except ValueError as err:
            problems.append(Problem(str(path), str(err)))


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict(
    reference: str,
    specs: list[str],
    out_dir: str | Path = "predictions",
    options: PredictOptions | None = None,
    overrides=(),
) -> PredictSummary:
    """Predict every person in the inputs ``specs`` with the model ``reference`` and write the
    results under ``out_dir`` (module docstring). Raises ValueError for a bad option and
    FileNotFoundError when no input names anything readable, both before the model loads."""
    from tqdm import tqdm

    options = options or PredictOptions()
    options.check()
    uris = [spec for spec in specs if "://" in spec] if options.on_ray() else []
    inputs = find_inputs([spec for spec in specs if spec not in uris])
    if not inputs.images and not inputs.videos and not uris:
        raise FileNotFoundError("no images or videos to predict on:\n" + "\n".join(
            f"  {p}" for p in inputs.problems))  # fmt: skip
    if options.on_ray() and (inputs.videos or options.mesh or options.overlay):
        raise ValueError(
            "videos, --mesh and --overlay run on the local path: predict them without --ray "
            "(and without RAY_ADDRESS)"
        )
    loaded = load_model(reference, overrides)
    if options.on_ray():
        return _predict_on_ray(loaded, [*map(str, inputs.images), *uris], Path(out_dir),
                               options, inputs.problems)  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    body = BodyModel.from_config(loaded.cfg.body)
    predictor = Predictor(loaded.model, body, loaded.cfg, device, options.fov)
    writer = PredictionWriter(
        Path(out_dir), body.faces, loaded.cfg.model.input_size, options.mesh, options.overlay,
        options.side_by_side, options.vertices, {str(v): video_fps(v) for v in inputs.videos},
    )  # fmt: skip
    summary = PredictSummary(out_dir=str(out_dir))
    problems = list(inputs.problems)
    started = time.perf_counter()
    try:
        with tqdm(desc="predict", unit="img", mininterval=1.0) as bar:
            for batch in _batches(_frames(inputs, options, problems), options.batch_size):
                for frame, people in zip(batch, predictor([f.image for f in batch]), strict=True):
                    writer.write(frame, people)
                    summary.people += len(people)
                    if frame.frame is None:
                        summary.images += 1
                    else:
                        summary.frames += 1
                bar.update(len(batch))
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - started
        summary.failed = [str(p) for p in problems]
        _write_summary(summary)
    _refuse_empty(summary)
    return summary


def _write_summary(summary: PredictSummary) -> None:
    (Path(summary.out_dir) / "summary.json").write_text(
        json.dumps(asdict(summary), indent=1) + "\n"
    )


def _refuse_empty(summary: PredictSummary) -> None:
    """ValueError listing the failures when no input could be predicted."""
    if summary.images + summary.frames == 0:
        raise ValueError(
            "nothing could be predicted:\n" + "\n".join(f"  {f}" for f in summary.failed)
        )


def _predict_on_ray(loaded: LoadedModel, paths: list[str], out_dir: Path,
                    options: PredictOptions, problems: list[Problem]) -> PredictSummary:  # fmt: skip
    """The Ray batch path (:mod:`instancehmr.infer.batch`) over image files and URIs."""
    state = TrainingState(model=loaded.model.state_dict(), config=to_yaml(loaded.cfg))
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = predict_on_ray(state, state.config, paths, out_dir, options.fov, options.vertices,
                            options.batch_size, options.workers)  # fmt: skip
    summary = PredictSummary(out_dir=str(out_dir), images=counts["images"],
                             people=counts["people"], seconds=counts["seconds"],
                             failed=[*map(str, problems), *counts["failed"]])  # fmt: skip
    _write_summary(summary)
    _refuse_empty(summary)
    return summary
