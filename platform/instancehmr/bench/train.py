"""``instancehmr bench train``: training-step time through Ray Train vs a plain PyTorch loop.

Both sides train the same model with the same objective, batch size and batches (one
materialised Ray Dataset, read by the plain loop in this process and by the single Ray Train
worker through ``get_dataset_shard``), with the same number of torch threads. The median step
time after a warm-up is compared. The plain loop is also run with the contrastive loss off, so
the share of the step the contrastive loss costs is measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from instancehmr.body.smpl import BodyModel
from instancehmr.data.pipeline import training_dataset
from instancehmr.model import build_model
from instancehmr.runtime import init_ray
from instancehmr.train.launch import ensure_data
from instancehmr.train.loop import TrainStep, build_objective

# Imported inside the functions that use them, to keep this module light: Ray.

WARMUP = 3


@dataclass
class TrainBench:
    batch_size: int
    threads: int
    steps: int
    plain_ms: float
    plain_no_contrastive_ms: float
    ray_ms: float

    @property
    def overhead(self) -> float:
        return self.ray_ms / self.plain_ms - 1

    @property
    def contrastive_share(self) -> float:
        return max(0.0, 1 - self.plain_no_contrastive_ms / self.plain_ms)

    def table(self) -> str:
        ips = self.batch_size / (self.ray_ms / 1e3)
        return "\n".join(
            [
                f"training step, batch {self.batch_size}, {self.threads} torch threads, median of {self.steps} steps",
                f"  plain PyTorch loop            {self.plain_ms:8.1f} ms",
                f"  Ray Train, 1 worker           {self.ray_ms:8.1f} ms   overhead {self.overhead:+.1%}",
                f"  images/s through Ray Train    {ips:8.1f}",
                f"  plain loop, no contrastive    {self.plain_no_contrastive_ms:8.1f} ms   "
                f"contrastive share {self.contrastive_share:.1%}",
            ]
        )


def timed_steps(cfg: DictConfig, batches, model=None) -> list[float]:
    """Train ``cfg``'s model on ``batches`` (torch batch dicts); seconds per step after warm-up."""

    torch.manual_seed(cfg.train.seed)
    core = build_model(cfg)
    model = model(core) if model else core
    train_step = TrainStep(cfg, model, core, build_objective(cfg, BodyModel.from_config(cfg.body)),
                           steps_per_epoch=1, device="cpu")  # fmt: skip
    times = []
    for step, batch in enumerate(batches):
        start = time.perf_counter()
        train_step(batch, step)
        times.append(time.perf_counter() - start)
    return times[WARMUP:]


def _ray_worker(loop_config: dict) -> None:
    import ray.train
    import ray.train.torch

    cfg = OmegaConf.create(loop_config["config"])
    torch.set_num_threads(loop_config["threads"])
    shard = ray.train.get_dataset_shard("train")
    batches = shard.iter_torch_batches(batch_size=cfg.train.batch_size, drop_last=True)
    times = timed_steps(cfg, batches, model=ray.train.torch.prepare_model)
    loop_config["results"].put(statistics.median(times))


def bench_train(cfg: DictConfig, steps: int = 10) -> TrainBench:
    """Median step times of the plain loop (with and without L_cont) and of Ray Train."""
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Queue

    init_ray()
    ensure_data(cfg)
    batch = cfg.train.batch_size
    data = training_dataset(cfg).limit(batch * (steps + WARMUP)).materialize()
    threads = max(1, int(cfg.scaling.cpus_per_worker))
    torch.set_num_threads(threads)

    def plain(c: DictConfig) -> float:
        return statistics.median(
            timed_steps(c, data.iter_torch_batches(batch_size=batch, drop_last=True))
        )

    with_cont = plain(cfg)
    without = plain(OmegaConf.merge(cfg, {"loss": {"contrastive": False}}))
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={
            "config": OmegaConf.to_container(cfg, resolve=True),
            "threads": threads,
            "results": (results := Queue()),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=1, resources_per_worker={"CPU": threads}
        ),
        datasets={"train": data},
    )
    trainer.fit()
    ray_step = results.get(timeout=60)
    return TrainBench(batch, threads, steps, with_cont * 1e3, without * 1e3, ray_step * 1e3)
