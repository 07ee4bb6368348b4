"""Ray Train reports into MLflow, written by the driver alone.

:class:`RunLogger` logs one run's reports: metrics with the global step (never a step twice:
after a restore from checkpoint, a metric is logged only for steps after the last one the run
has), each epoch's picture from the checkpoint, and a progress line with an ETA.
:class:`MetricsRelay` is a Ray Train ``UserCallback`` (it runs in the Train controller): after
every report it puts rank 0's metrics and the persisted checkpoint into a Ray queue, which
:class:`DriverLogger` drains into a :class:`RunLogger` in a driver thread (``instancehmr train``).
Sweeps feed their trials' reports to a RunLogger per trial through Ray Tune instead.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from ray.train import UserCallback

# Imported inside the functions that use them, to keep this module light: MLflow, Ray.

PICTURE = "val_meshes.png"
#: Report keys that are not metrics: ``step`` is every metric's x-axis; ``epoch`` (0-based, -1
#: for the untrained model) only labels the progress line; ``epochs_done`` is logged.
COUNTERS = ("step", "epoch")
PROGRESS_KEYS = (
    "train/total",
    "train/images_per_s",
    "val/mpjpe",
    "val/mpjpe_vs_constant",
    "val/center_ap",
)


def logged_steps(run_id: str) -> dict[str, int]:
    """Last logged step of every metric of a run (empty for a new run)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    keys = client.get_run(run_id).data.metrics
    return {k: max(m.step for m in client.get_metric_history(run_id, k)) for k in keys}


class RunLogger:
    """Logs the reports of one training run to its MLflow run ``run_id``. ``total_steps`` (if
    known) gives the progress line an ETA; ``label`` prefixes it (a sweep's trial)."""

    def __init__(self, run_id: str, total_steps: int | None = None, label: str = "") -> None:
        self.run_id, self.total_steps, self.label = run_id, total_steps, label
        self.last_steps = logged_steps(run_id)
        self.latest: dict[str, Any] = {}
        self._started = time.monotonic()
        self._first_step: int | None = None

    def log(self, metrics: dict[str, Any], checkpoint) -> None:
        """Log one report: ``metrics`` with its ``step`` and ``epoch``; ``checkpoint`` (a Ray
        Train Checkpoint or None) holds the epoch's picture."""
        import mlflow

        step = int(metrics["step"])
        fresh = {
            k: float(v)
            for k, v in metrics.items()
            if k not in COUNTERS
            and isinstance(v, int | float)
            and math.isfinite(v)
            and step > self.last_steps.get(k, -1)
        }
        if fresh:
            mlflow.log_metrics(fresh, step=step, run_id=self.run_id)
            self.last_steps.update(dict.fromkeys(fresh, step))
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                picture = Path(directory) / PICTURE
                if picture.is_file():
                    mlflow.log_artifact(
                        str(picture),
                        artifact_path=f"pictures/epoch_{int(metrics['epoch']):03d}",
                        run_id=self.run_id,
                    )
        self.latest = metrics
        self._progress(step, metrics)

    def _progress(self, step: int, metrics: dict[str, Any]) -> None:
        if self._first_step is None:
            self._first_step, self._started = step, time.monotonic()
        done = step - self._first_step
        elapsed = time.monotonic() - self._started
        parts = [self.label] if self.label else []
        epoch = int(metrics.get("epoch", 0))
        parts += [
            f"step {step}/{self.total_steps or '?'}",
            "untrained" if epoch < 0 else f"epoch {epoch + 1}",
        ]
        for key in PROGRESS_KEYS:
            if key in metrics:
                parts.append(f"{key}={float(metrics[key]):.4g}")
        if self.total_steps:
            eta = elapsed / done * (self.total_steps - step) if done > 0 else math.nan
            parts.append(f"ETA {eta / 60:.1f} min" if math.isfinite(eta) else "ETA -")
        print("  ".join(parts), flush=True)


class MetricsRelay(UserCallback):
    """Train-controller callback forwarding (metrics, checkpoint) of each report to a queue."""

    def __init__(self, queue) -> None:
        self.queue = queue

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        self.queue.put({"metrics": dict(metrics[0]), "checkpoint": checkpoint})


class DriverLogger:
    """Drains the relay queue into a :class:`RunLogger` (driver thread)."""

    def __init__(self, queue, run_id: str, total_steps: int) -> None:
        self.queue = queue
        self.run = RunLogger(run_id, total_steps)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def latest(self) -> dict[str, Any]:
        return self.run.latest

    def __enter__(self) -> DriverLogger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._drain(timeout=0.5)

    def _drain(self, timeout: float | None = None) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                item = self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait()
            except Empty:
                return
            self.run.log(item["metrics"], item["checkpoint"])
            timeout = None
