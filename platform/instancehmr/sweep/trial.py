"""One sweep trial: a Ray Tune function that launches one Ray Train run (Ray 2.60's Train V2
pattern) and reports its results to Tune.

The driver resolves each row's base config once (``bases``: row label, ``""`` without rows, ->
resolved YAML); a trial applies its sampled values on top, so trials need no experiment files.
Its Train run is named after the trial id under ``<storage>/<sweep>-trials``: a restored trial
resumes its Train run from the last checkpoint.
"""

from __future__ import annotations

import json
from typing import Any

from omegaconf import DictConfig

from instancehmr.config import config_from_yaml
from instancehmr.data.pipeline import steps_per_epoch
from instancehmr.sweep.spec import param_overrides
from instancehmr.track.sweeps import BEST_CHECKPOINT, BEST_REPORT
from instancehmr.train.launch import best_checkpoint, build_trainer

# Imported inside the functions that use them, to keep this module light: Ray.


def trial_config(bases: dict[str, str], sweep: str, config: dict[str, Any]) -> DictConfig:
    """The experiment config of a trial with Tune config ``config`` (params and row)."""
    row = config.get("row", "")
    return config_from_yaml(
        bases[row], f"sweep '{sweep}' row '{row}'", param_overrides(config["params"])
    )


def trial_storage(storage: str, sweep: str) -> str:
    """Where the Train runs of a sweep's trials keep their checkpoints."""
    return f"{storage.rstrip('/')}/{sweep}-trials"


def run_trial(
    config: dict[str, Any], bases: dict[str, str], sweep: str, storage: str, metric: str, mode: str
) -> None:
    """Tune function: train the trial's config; every Train report reaches Tune, then one last
    report names the best checkpoint (by the sweep's ``metric`` and ``mode``) and what it was
    reported with."""
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    cfg = trial_config(bases, sweep, config)
    trainer = build_trainer(
        cfg,
        run_name=ray.tune.get_context().get_trial_id(),
        storage=trial_storage(storage, sweep),
        steps=steps_per_epoch(cfg),
        callbacks=[TuneReportCallback()],
        score=(metric, mode),
    )
    result = trainer.fit()
    best, best_metrics = best_checkpoint(result, metric, mode)
    ray.tune.report(
        {
            BEST_CHECKPOINT: best.path,
            BEST_REPORT: json.dumps(best_metrics),
            metric: result.metrics.get(metric),
        }
    )
