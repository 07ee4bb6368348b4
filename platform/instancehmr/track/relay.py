"""Relaying Ray Train reports to the driver, which alone writes them to MLflow.

:class:`MetricsRelay` is a Ray Train ``UserCallback`` (it runs in the Train controller): after
every report it puts rank 0's metrics and the persisted checkpoint into a Ray queue.
:class:`DriverLogger` drains that queue in a driver thread, logs metrics with the global step,
logs each epoch's picture, prints progress with an ETA and never logs a step twice: after a
restore from checkpoint, a metric is logged only for steps after the last one it has in the run.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from ray.train import UserCallback

PICTURE = "val_meshes.png"


def logged_steps(run_id: str) -> dict[str, int]:
    """Last logged step of every metric of a run (empty for a new run)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    keys = client.get_run(run_id).data.metrics
    return {k: max(m.step for m in client.get_metric_history(run_id, k)) for k in keys}


class MetricsRelay(UserCallback):
    """Train-controller callback forwarding (metrics, checkpoint) of each report to a queue."""

    def __init__(self, queue) -> None:
        self.queue = queue

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        self.queue.put({"metrics": dict(metrics[0]), "checkpoint": checkpoint})


class DriverLogger:
    """Drains the relay queue into the active MLflow run (driver thread)."""

    def __init__(self, queue, run_id: str, total_steps: int) -> None:
        self.queue, self.run_id, self.total_steps = queue, run_id, total_steps
        self.last_steps = logged_steps(run_id)
        self.latest: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()
        self._first_step: int | None = None

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
            self.log(item["metrics"], item["checkpoint"])
            timeout = None

    def log(self, metrics: dict[str, Any], checkpoint) -> None:
        import mlflow

        step = int(metrics["step"])
        fresh = {
            k: float(v)
            for k, v in metrics.items()
            if k != "step"
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
        eta = elapsed / done * (self.total_steps - step) if done > 0 else float("nan")
        parts = [f"step {step}/{self.total_steps}", f"epoch {int(metrics.get('epoch', 0))}"]
        for key in ("train/total", "train/images_per_s", "val/mpjpe", "val/center_ap"):
            if key in metrics:
                parts.append(f"{key}={float(metrics[key]):.4g}")
        parts.append(f"ETA {eta / 60:.1f} min" if math.isfinite(eta) else "ETA -")
        print("  ".join(parts), flush=True)
