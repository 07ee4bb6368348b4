"""``instancehmr bench predict``: images/s of the whole prediction path against the network
alone, measured in one run at the same batch size.

Baseline: the network's forward pass on ready, normalised input tensors. The whole path is what
``instancehmr predict`` does per batch of photos: decode the JPEG bytes, letterbox, forward,
decode people (NMS, parameters, one batched body-model call, cameras, original-pixel joints)
and write their JSON lines. Both run on the same untrained network of the experiment; decoding
is held at ``people`` people per image (``decode.max_people = people``, threshold 0), because
its cost grows with the people found. Goal (issue 13): whole path >= 0.8 x the network.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from omegaconf import OmegaConf

from instancehmr.body.smpl import BodyModel
from instancehmr.data.image import decode_photo
from instancehmr.infer.outputs import image_record
from instancehmr.model import build_model
from instancehmr.model.predictor import Predictor

GOAL = 0.8
#: Photo sizes the benchmark cycles through (height, width): phone, landscape, portrait.
PHOTO_SIZES = ((480, 640), (720, 1280), (640, 480))


@dataclass
class PredictBench:
    backbone: str
    input_size: int
    batch_size: int
    people: int
    images: int
    device: str
    whole_images_per_s: float
    network_images_per_s: float

    @property
    def ratio(self) -> float:
        return self.whole_images_per_s / self.network_images_per_s

    def table(self) -> str:
        return "\n".join(
            [
                f"predict {self.backbone} at {self.input_size}px, batch {self.batch_size}, "
                f"{self.people} people per image, {self.images} JPEG photos, {self.device}, "
                f"{torch.get_num_threads()} threads",
                f"  whole path      {self.whole_images_per_s:8.1f} images/s",
                f"  network alone   {self.network_images_per_s:8.1f} images/s (baseline)",
                f"  ratio           {self.ratio:8.2f} x network (goal >= {GOAL})",
            ]
        )


def photos(count: int, seed: int = 0) -> list[bytes]:
    """``count`` JPEG-encoded noise photos cycling through ``PHOTO_SIZES``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        h, w = PHOTO_SIZES[i % len(PHOTO_SIZES)]
        image = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
        out.append(cv2.imencode(".jpg", image)[1].tobytes())
    return out


@torch.no_grad()
def bench_predict(cfg, images: int = 64, batch_size: int = 16, people: int = 4) -> PredictBench:
    """Images/s of the whole path and of the network alone (module docstring), one warm-up
    batch each first."""
    cfg = OmegaConf.merge(cfg, {"decode": {"max_people": people, "center_threshold": 0.0}})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(cfg).eval().to(device)
    predictor = Predictor(model, BodyModel.from_config(cfg.body), cfg, device)
    data = photos(images)
    batches = [data[i : i + batch_size] for i in range(0, images, batch_size)]
    sink = io.StringIO()

    def whole(batch: list[bytes]) -> None:
        for found in predictor([decode_photo(b) for b in batch]):
            sink.write(json.dumps(image_record("photo.jpg", None, found, False)) + "\n")

    size = cfg.model.input_size
    ready = torch.randn(batch_size, 3, size, size, device=device)
    whole(batches[0])
    model(ready)
    started = time.perf_counter()
    for batch in batches:
        whole(batch)
    whole_rate = images / (time.perf_counter() - started)
    started = time.perf_counter()
    for batch in batches:
        model(ready[: len(batch)])
    if device == "cuda":
        torch.cuda.synchronize()
    network_rate = images / (time.perf_counter() - started)
    return PredictBench(cfg.model.backbone, size, batch_size, people, images, device,
                        whole_rate, network_rate)  # fmt: skip
