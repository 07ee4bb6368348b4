"""Ray Train reports into MLflow, written by the driver alone.

:class:`RunLogger` logs one run's reports: metrics with the global step (never a step twice:
after a restore from checkpoint, a metric is logged only for steps after the last one the run
has; NaN and infinities are logged as they are), each epoch's picture from the checkpoint, and a
progress line with an ETA; it tags a run whose judging metric or total loss is not finite as
``diverged``, samples the run's system metrics from its first report on, and logs the
validation of the run's best checkpoint as ``best/val/...``.
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
#: Prefix of the validation metrics; logged first, so that they are a new run's first metrics
#: (MLflow's compare view opens its parallel-coordinates plot on a run's first metric).
VALIDATION = "val/"
#: Prefix of the best checkpoint's validation metrics (``best/val/mpjpe``); they sort first in
#: MLflow's compare table.
BEST = "best/"
#: Validation metrics of the reference predictors and the people count, not of the model.
REFERENCE_ROWS = ("val/constant_", "val/oracle_", "val/people")
#: Tag of a run whose judging metric or total loss was not finite: where it first happened.
DIVERGED_TAG = "diverged"
#: Report keys that say a run diverged when not finite (with the judging metric).
LOSS = "train/total"
PROGRESS_KEYS = (
    "train/total",
    "train/images_per_s",
    "val/mpjpe",
    "val/mpjpe_vs_constant",
    "val/center_ap",
)


def logged_steps(client, run) -> dict[str, int]:
    """Last logged step of every metric of an MLflow ``run`` (empty for a new run)."""
    run_id = run.info.run_id
    return {k: max(m.step for m in client.get_metric_history(run_id, k)) for k in run.data.metrics}


def validation_first(metrics: dict[str, float], lead: str) -> dict[str, float]:
    """``metrics`` reordered: ``lead`` first, then the other ``val/`` metrics, then the rest,
    each group in its own order."""
    return dict(
        sorted(metrics.items(), key=lambda kv: (kv[0] != lead, not kv[0].startswith(VALIDATION)))
    )


class RunLogger:
    """Logs the reports of one training run to its MLflow run ``run_id``. ``total_steps`` (if
    known) gives the progress line an ETA; ``label`` prefixes it (a sweep's trial); ``lead`` is
    the metric the run is judged by (``train.checkpoint_metric``), logged first.

    MLflow's system metrics (``system/...``, every ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL``
    seconds, 10 by default) are sampled from the first report on, until :meth:`finish`: the
    run's first metrics are then its validation.
    """

    def __init__(
        self,
        run_id: str,
        total_steps: int | None = None,
        label: str = "",
        lead: str = "val/mpjpe",
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.run_id, self.total_steps, self.label, self.lead = run_id, total_steps, label, lead
        client = MlflowClient()
        run = client.get_run(run_id)
        self.last_steps = logged_steps(client, run)
        self.latest: dict[str, Any] = {}
        self._started = time.monotonic()
        self._first_step: int | None = None
        self._monitor = None  # MLflow's SystemMetricsMonitor, started by the first report
        #: Where the run first diverged (``step N: key=value``), None while it has not.
        self.diverged: str | None = run.data.tags.get(DIVERGED_TAG)  # kept on resume

    def _sample_system_metrics(self) -> None:
        import mlflow
        from mlflow.environment_variables import MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        resumed = any(k.startswith("system/") for k in self.last_steps)
        interval = MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL.get() or 10
        self._monitor = SystemMetricsMonitor(
            self.run_id, interval, resume_logging=resumed, tracking_uri=mlflow.get_tracking_uri()
        )
        self._monitor.start()

    def _watch_divergence(self, step: int, fresh: dict[str, float]) -> None:
        """Tag the run ``diverged`` the first time its judging metric or loss is not finite."""
        from mlflow.tracking import MlflowClient

        bad = [k for k in (self.lead, LOSS) if k in fresh and not math.isfinite(fresh[k])]
        if bad and self.diverged is None:
            self.diverged = f"step {step}: " + ", ".join(f"{k}={fresh[k]}" for k in bad)
            MlflowClient().set_tag(self.run_id, DIVERGED_TAG, self.diverged)

    def finish(self) -> None:
        """Stop sampling system metrics (the run ended)."""
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None

    def log_best(self, metrics: dict[str, Any]) -> None:
        """Log the model's own validation at the run's best checkpoint (``metrics``: the report
        it was saved with) as ``best/val/...`` at that report's step; the reference predictors'
        rows (``val/constant_*``, ``val/oracle_*``) and ``val/people`` are the same for every
        run and stay out of that list."""
        import mlflow

        best = {
            f"{BEST}{k}": float(v)
            for k, v in metrics.items()
            if k.startswith(VALIDATION)
            and not k.startswith(REFERENCE_ROWS)
            and isinstance(v, int | float)
        }
        if best:
            mlflow.log_metrics(best, step=int(metrics.get("step", 0)), run_id=self.run_id)

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
            and step > self.last_steps.get(k, -1)
        }
        if fresh:
            mlflow.log_metrics(validation_first(fresh, self.lead), step=step, run_id=self.run_id)
            self.last_steps.update(dict.fromkeys(fresh, step))
        if self._monitor is None:
            self._sample_system_metrics()
        self._watch_divergence(step, fresh)
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

    def __init__(self, queue, run_id: str, total_steps: int, lead: str) -> None:
        self.queue = queue
        self.run = RunLogger(run_id, total_steps, lead=lead)
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
        try:
            self._drain()
        finally:
            self.run.finish()

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
