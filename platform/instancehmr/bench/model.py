"""``instancehmr bench model``: forward latency and size of the network of an experiment.

Baseline: the bare backbone (torchvision / timm) on the same input in the same run; the ratio
says what the heads, instance maps and parameter branch cost on top of it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from instancehmr.model import build_model


@dataclass
class ModelBench:
    backbone: str
    input_size: int
    batch_size: int
    parameters: int
    backbone_parameters: int
    forward_ms: float
    backbone_ms: float

    @property
    def ratio(self) -> float:
        return self.forward_ms / self.backbone_ms

    def table(self) -> str:
        return "\n".join(
            [
                f"model {self.backbone} at {self.input_size}px, batch {self.batch_size}, "
                f"{torch.get_num_threads()} threads, {torch.__version__}",
                f"  parameters      {self.parameters / 1e6:8.2f} M (backbone {self.backbone_parameters / 1e6:.2f} M)",
                f"  forward         {self.forward_ms:8.1f} ms (median)",
                f"  backbone alone  {self.backbone_ms:8.1f} ms (median, baseline)",
                f"  ratio           {self.ratio:8.2f} x backbone",
            ]
        )


def _median_ms(fn, images: torch.Tensor, repeats: int) -> float:
    fn(images)  # warm-up: allocator and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(images)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@torch.no_grad()
def bench_model(cfg, batch_size: int = 1, repeats: int = 5) -> ModelBench:
    """Median forward time of the model of ``cfg`` and of its backbone alone, in eval mode."""
    model = build_model(cfg).eval()
    size = cfg.model.input_size
    images = torch.randn(batch_size, 3, size, size)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return ModelBench(
        backbone=cfg.model.backbone,
        input_size=size,
        batch_size=batch_size,
        parameters=count(model),
        backbone_parameters=count(model.backbone),
        forward_ms=_median_ms(model, images, repeats),
        backbone_ms=_median_ms(model.backbone, images, repeats),
    )
