"""``instancehmr bench data``: images/s and peak memory of the training pipeline.

Both sides run the same functions (decode, augment, targets: :func:`make_sample`) on the same
shards in one run: the baseline is a plain single-process loop over the rows; the pipeline is
Ray Data with ``scaling.data_cpus`` parallel tasks. Memory is the peak resident set size summed
over this process and, for the pipeline, every Ray worker process, sampled every 50 ms.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import psutil
import pyarrow.parquet as pq
from omegaconf import OmegaConf

from instancehmr.data.cards import load_card
from instancehmr.data.pipeline import make_sample, shard_dir, training_dataset
from instancehmr.runtime import init_ray


class PeakMemory:
    """Context manager sampling the summed RSS of this process and its descendants."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class DataBench:
    images: int
    input_size: int
    cpus: float
    baseline_ips: float
    pipeline_ips: float
    baseline_peak_mb: float
    pipeline_peak_mb: float

    def table(self) -> str:
        return "\n".join(
            [
                f"data pipeline: {self.images} images at {self.input_size}px, {self.cpus:g} data CPUs",
                f"  plain loop (1 process)   {self.baseline_ips:8.1f} images/s   peak {self.baseline_peak_mb:7.0f} MB",
                f"  Ray Data pipeline        {self.pipeline_ips:8.1f} images/s   peak {self.pipeline_peak_mb:7.0f} MB",
                f"  per data CPU             {self.pipeline_ips / self.cpus:8.1f} images/s",
                f"  speed-up                 {self.pipeline_ips / self.baseline_ips:8.2f} x plain loop",
            ]
        )


def _rows(cfg, count: int) -> list[dict]:
    card = load_card(cfg.data.mix[0].card)
    rows: list[dict] = []
    for file in sorted(shard_dir(cfg.data.shards_dir, card, "train").glob("part-*.parquet")):
        rows += pq.read_table(file).to_pylist()
        if len(rows) >= count:
            break
    if not rows:
        raise FileNotFoundError(
            f"no shards for {card.path}; run `instancehmr data prepare {card.path}`"
        )
    return rows[:count]


def bench_data(cfg, images: int = 256) -> DataBench:
    """Measure the baseline loop, then the Ray Data pipeline, over ``images`` samples (the
    pipeline after its first batch, so start-up is not counted)."""

    rows = _rows(cfg, images)
    augment = SimpleNamespace(**OmegaConf.to_container(cfg.data.augment))
    rng = np.random.default_rng(0)
    size, people = cfg.model.input_size, cfg.data.max_people
    with PeakMemory() as base_mem:
        start = time.perf_counter()
        for row in rows:
            make_sample(row, size, people, augment, rng)
        baseline = len(rows) / (time.perf_counter() - start)
    init_ray()
    ds = training_dataset(cfg)
    count, start = 0, None
    with PeakMemory() as pipe_mem:
        batches = ds.iter_batches(batch_size=cfg.train.batch_size, batch_format="numpy")
        for batch in batches:  # steady state: the clock starts once the first batch arrives
            if start is None:
                start = time.perf_counter()
                continue
            count += len(batch["images"])
            if count >= images:
                break
        pipeline = count / (time.perf_counter() - start)
    return DataBench(
        images=count,
        input_size=size,
        cpus=float(cfg.scaling.data_cpus),
        baseline_ips=baseline,
        pipeline_ips=pipeline,
        baseline_peak_mb=base_mem.peak / 2**20,
        pipeline_peak_mb=pipe_mem.peak / 2**20,
    )
