"""``instancehmr train``: validate, make the embedded defaults, start Ray, run a TorchTrainer,
track everything in MLflow from the driver, register the trained model.

Re-running with the same ``tracking.run_name`` resumes: Ray Train restores the run from its
storage (same name and storage path) and MLflow reopens the run of that name.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from instancehmr.body.smpl import BodyModel
from instancehmr.config import ConfigError
from instancehmr.data.cards import load_card
from instancehmr.data.pipeline import (
    mix_weights,
    steps_per_epoch,
    training_dataset,
    validation_dataset,
)
from instancehmr.data.prepare import ensure_prepared
from instancehmr.eval.references import training_constant
from instancehmr.eval.validation import check_validation_metric
from instancehmr.runtime import init_ray
from instancehmr.track.models import log_model
from instancehmr.track.registry import check_model_name
from instancehmr.track.relay import DriverLogger, MetricsRelay
from instancehmr.track.runs import RunFailed, check_resume, run_outcome, start_run
from instancehmr.train.loop import train_loop_per_worker

# Imported inside the functions that use them, to keep this module light: Ray, MLflow.


class ResourceError(ValueError):
    """The cluster cannot give the run what its config asks for."""


@dataclass
class TrainResult:
    run_id: str
    run_name: str
    checkpoint_path: str
    metrics: dict
    model_version: str | None
    seconds: float
    experiment_id: str = ""
    tracking_uri: str = ""


def ensure_data(cfg: DictConfig) -> dict[str, str]:
    """Shards of every corpus the run reads, prepared first where missing (a corpus without
    raw files is a DataUnavailable error saying how to get it). Returns {corpus: content hash}."""
    needs = [(card, "train") for card, _ in mix_weights(cfg)]
    needs.append((load_card(cfg.data.val_card), cfg.data.val_split))
    cards = {card.path: card for card, _ in needs}
    hashes = {}
    for path, card in cards.items():
        splits = sorted({split for c, split in needs if c.path == path})
        manifest = ensure_prepared(card, cfg.data.shards_dir, splits)
        hashes[card.name] = manifest["content_hash"]
    return hashes


def check_resources(cfg: DictConfig, extra_cpus: int = 0) -> None:
    """Fail now, with the numbers, when the cluster has too few CPUs or GPUs (not hang);
    ``extra_cpus`` are taken by something else (a sweep's trial driver)."""
    import ray

    have = ray.cluster_resources()
    s = cfg.scaling
    need_cpu = s.num_workers * s.cpus_per_worker + (1 if s.data_cpus > 0 else 0) + extra_cpus
    if have.get("CPU", 0) < need_cpu:
        driver = f" + {extra_cpus} for the trial driver" if extra_cpus else ""
        raise ResourceError(
            f"scaling: {s.num_workers} workers x {s.cpus_per_worker} CPUs + 1 for data{driver} "
            f"need {need_cpu:g} CPUs; the cluster has {have.get('CPU', 0):g}"
        )
    if s.use_gpu and have.get("GPU", 0) < s.num_workers:
        raise ResourceError(
            f"scaling.use_gpu: {s.num_workers} workers need {s.num_workers} GPUs; the cluster has {have.get('GPU', 0):g}"
        )


def storage_uri(cfg: DictConfig) -> str:
    """``tracking.storage_path`` as Ray wants it: a URI, or an absolute local path."""
    path = cfg.tracking.storage_path
    return path if "://" in path else str(Path(path).resolve())


def build_trainer(
    cfg: DictConfig,
    run_name: str,
    storage: str,
    steps: int,
    callbacks: list,
    score: tuple[str, str],
):
    """The TorchTrainer of one training run of ``steps`` per epoch: ``run_name`` under
    ``storage`` (the same pair resumes), the two best checkpoints kept by ``score`` =
    (metric, min|max)."""
    import ray.data
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    constant = training_constant(cfg)  # validation scores it beside the model
    if cfg.model.init_at_mean_body and constant is None:
        print(
            "model.init_at_mean_body: the training data has no SMPL labels to average; the "
            "parameter head starts from its usual initialisation",
            flush=True,
        )
    # Progress is printed per report; Ray Data's bars would flood the log.
    ray.data.DataContext.get_current().enable_progress_bars = False
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": OmegaConf.to_container(cfg, resolve=True),
            "steps_per_epoch": steps,
            "constant": None if constant is None else asdict(constant),
        },
        torch_config=TorchConfig(backend="nccl" if cfg.scaling.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.scaling.num_workers,
            use_gpu=cfg.scaling.use_gpu,
            resources_per_worker={"CPU": cfg.scaling.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage,
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=2,
                checkpoint_score_attribute=score[0],
                checkpoint_score_order=score[1],
            ),
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
            callbacks=callbacks,
            # Warnings only on the console: our progress line replaces Train's line per report.
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
        datasets={"train": training_dataset(cfg), "val": validation_dataset(cfg)},
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
    )


def best_checkpoint(result, metric: str, mode: str):
    """(checkpoint, the metrics reported with it): the kept checkpoint of a finished Ray Train
    ``result`` that is best by ``metric``."""
    sign = 1 if mode == "min" else -1

    def score(entry) -> float:
        return sign * entry[1].get(metric, sign * float("inf"))  # no metric: worst

    return min(result.best_checkpoints, key=score)


def train(cfg: DictConfig, resume_with_changes: bool = False) -> TrainResult:
    """Run the experiment ``cfg`` (already validated) and return where everything went.

    A ``tracking.run_name`` that exists resumes that run; with a config other than the run's it
    is refused (ValueError listing the changes) unless ``resume_with_changes``, which records
    the changes in the run and applies them, the optimizer's learning rate included."""
    import mlflow
    import ray
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    started = time.monotonic()
    check_model_name(cfg.tracking.registered_model_name, "tracking.registered_model_name")
    try:
        check_validation_metric(cfg.train.checkpoint_metric)
    except ValueError as err:
        raise ConfigError(f"train.checkpoint_metric: {err}") from None
    BodyModel.from_config(cfg.body)  # its files read and checked before any work (or written)
    run_name = cfg.tracking.run_name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    changes = check_resume(cfg, run_name, resume_with_changes)
    init_ray()
    check_resources(cfg)
    hashes = ensure_data(cfg)
    steps = steps_per_epoch(cfg)
    run, resumed = start_run(cfg, run_name, hashes, changes)
    run_id = run.info.run_id
    print(f"{'resuming' if resumed else 'starting'} run {run_name} ({run_id}): "
          f"{cfg.train.epochs} epochs x {steps} steps, {cfg.scaling.num_workers} workers", flush=True)  # fmt: skip
    with run_outcome(run_id, run_name):
        # The relay lives with the driver: on a worker's node, losing that node would end the run.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        score = (cfg.train.checkpoint_metric, cfg.train.checkpoint_mode)
        callbacks = [MetricsRelay(queue)]
        trainer = build_trainer(cfg, run_name, storage_uri(cfg), steps, callbacks, score)
        with DriverLogger(queue, run_id, cfg.train.epochs * steps, score[0]) as logger:
            result = trainer.fit()
        metrics = logger.latest or dict(result.metrics or {})
        check_finite_validation(metrics)
        if logger.run.diverged is not None:
            raise RunFailed(f"the run diverged ({logger.run.diverged} is not finite)")
        best, best_metrics = best_checkpoint(result, *score)
        logger.run.log_best(best_metrics)
        with best.as_directory() as directory:
            version = log_model(cfg, run_id, directory, register=True)
        mlflow.set_tag("best_checkpoint", best.path)
    return TrainResult(run_id, run_name, best.path, metrics, version, time.monotonic() - started,
                       run.info.experiment_id, mlflow.get_tracking_uri())  # fmt: skip


def check_finite_validation(metrics: dict) -> None:
    """RunFailed naming the metrics when the run's final validation (its ``val/`` metrics) is not
    finite: such a model is never registered."""
    bad = {k: v for k, v in metrics.items() if k.startswith("val/") and not math.isfinite(v)}
    if bad:
        listed = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        raise RunFailed(f"the final validation is not finite ({listed}): the model diverged")
