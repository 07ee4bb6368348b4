"""``bench_render``: images per second of the synthetic crowd corpus's whole ``convert()`` (scene
sampling, body model, ray casting, shading, labels, JPEG encoding) in this process.

Torch and OpenCV run on one thread for the measurement. Embree builds each person's BVH with
TBB worker threads that embreex offers no way to limit (its device takes no configuration and
neither Embree nor oneTBB reads an environment variable for it), so CPU time is measured beside
wall time: images per CPU-second is the rate per core.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch

from instancehmr.data.cards import Card
from instancehmr.data.corpora.synthetic import SyntheticCrowd, crowd_generator


@dataclass
class RenderBench:
    image_size: int
    images: int
    people: int
    wall_s: float
    cpu_s: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s

    @property
    def images_per_cpu_s(self) -> float:
        return self.images / self.cpu_s

    def table(self) -> str:
        return "\n".join(
            [
                f"synthetic crowd convert() at {self.image_size}px, {self.images} images, "
                f"{self.people / self.images:.2f} people per image, one process",
                f"  wall {self.wall_s * 1e3 / self.images:6.1f} ms/image "
                f"{self.images_per_s:6.1f} images/s",
                f"  cpu  {self.cpu_s * 1e3 / self.images:6.1f} ms/image "
                f"{self.images_per_cpu_s:6.1f} images/cpu-s (rate per core)",
            ]
        )


def bench_render(
    image_size: int = 512, n: int = 100, occlusion: str | float = "moderate"
) -> RenderBench:
    """Convert ``n`` images of a synthetic crowd card (max 6 people) after one warm-up image."""
    card = Card(
        path=Path("<bench_render>"),
        name="synthetic",
        format=SyntheticCrowd.format,
        root=Path("."),
        splits={"bench": {}},
        labels=("keypoints_2d",),
        obtain="-",
        license="-",
        role="train",
        options={"image_size": image_size, "occlusion": occlusion, "sizes": {"bench": n + 1}},
    )
    converter = SyntheticCrowd()
    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        crowd_generator()
        converter.convert(card, "bench", {"index": n})  # warm-up
        wall, cpu, people = time.perf_counter(), time.process_time(), 0
        for i in range(n):
            people += len(converter.convert(card, "bench", {"index": i}).persons)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    return RenderBench(image_size, n, people, wall, cpu)
