"""MLflow runs of a sweep: one parent run, a child run per trial, all written by the driver.

:class:`SweepTracker` is a Ray Tune callback, so it runs in the driver's Tune loop: the only
process that writes to the tracking store, however many trials run in parallel. A child run
holds its trial's config as params (the ablation row as param ``ablation``), the sampled values
as a tag, every report's metrics and pictures, the model of its best checkpoint (logged, not
registered: ``instancehmr promote`` registers the winner), and, for a failed trial, the error.
On ``--resume`` the parent and the children of unfinished trials are reopened, never duplicated.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from ray.tune import Callback

from instancehmr.data.pipeline import steps_per_epoch
from instancehmr.track.datasets import log_datasets
from instancehmr.track.models import log_model
from instancehmr.track.relay import RunLogger
from instancehmr.track.runs import context_tags, fail_run, log_config, run_tags, use_tracking_uri

# Imported inside the functions that use them, to keep this module light: Ray, MLflow.

SWEEP_TAG = "instancehmr.sweep"  # parent and children: the sweep's name
ROLE_TAG = "instancehmr.role"  # "sweep" on the parent
HASH_TAG = "instancehmr.sweep_hash"  # on the parent: what its trials run (resume checks it)
TRIAL_TAG = "instancehmr.trial_id"
PARAMS_TAG = "instancehmr.trial_params"  # the trial's sampled values, JSON
ROW_PARAM = "ablation"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests children under the parent
NOTE_TAG = "mlflow.note.content"  # MLflow's own: the run's description in the UI
SEED_KEY = "train.seed"
BEST_CHECKPOINT = "best_checkpoint"  # key of a trial's last report: its best checkpoint's path
BEST_REPORT = "best_report"  # and the metrics reported with that checkpoint, as JSON


def trial_run_name(row: str | None, params: dict[str, Any], trial_id: str) -> str:
    """A short run name that leads with what differs: the ablation row and seed (``dim128 s1``),
    then each other sampled value by its last key part (``lr=0.0003``); the trial id when
    nothing was sampled."""
    parts = [row] if row else []
    if SEED_KEY in params:
        parts.append(f"s{params[SEED_KEY]}")
    for key, value in params.items():
        if key != SEED_KEY:
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            parts.append(f"{key.rsplit('.', 1)[-1]}={shown}")
    return " ".join(parts) or trial_id


def trial_description(sweep: str, row: str | None, params: dict[str, Any], trial_id: str) -> str:
    """The child run's description (its MLflow note)."""
    what = f"row `{row}`" if row else "the sweep's experiment"
    seed = f", seed {params[SEED_KEY]}" if SEED_KEY in params else ""
    others = {k: v for k, v in params.items() if k != SEED_KEY}
    sampled = f"; sampled {json.dumps(others)}" if others else ""
    return f"Trial {trial_id} of sweep `{sweep}`: {what}{seed}{sampled}."


def find_parent(client, experiment_ids: list[str], sweep: str):
    """The newest parent run of ``sweep`` in those experiments, or None."""
    runs = client.search_runs(
        experiment_ids,
        filter_string=f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'sweep'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0] if runs else None


def child_runs(client, parent) -> list:
    """Every child run of a sweep's parent run, oldest first."""
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
    )


@functools.cache
def _tune_keys() -> frozenset[str]:
    """Keys Tune adds to every result (not the run's metrics)."""
    from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY
    from ray.tune.result import AUTO_RESULT_KEYS

    extra = {"done", "trial_id", "experiment_tag", "should_checkpoint", CHECKPOINT_PATH_KEY}
    return frozenset(AUTO_RESULT_KEYS) | extra


class SweepTracker(Callback):
    """Tune callback that mirrors every trial into an MLflow child run of ``parent_run_id``.

    ``config_of`` gives a trial's experiment config from its Tune config (the sweep runner
    passes it, so tracking never imports the sweep); ``hashes`` are the data manifest hashes of
    the run tags. Tune pickles its callbacks with the sweep's state for ``--resume``:
    ``config_of`` must pickle (a module-level function or a partial of one) and the MLflow
    loggers are rebuilt after a restore.
    """

    def __init__(
        self,
        sweep: str,
        parent_run_id: str,
        experiment_id: str,
        tracking_uri: str,
        config_of: Callable[[dict[str, Any]], DictConfig],
        hashes: dict[str, str],
    ) -> None:
        self.sweep, self.parent_run_id, self.experiment_id = sweep, parent_run_id, experiment_id
        self.tracking_uri, self.config_of, self.hashes = tracking_uri, config_of, hashes
        self._loggers: dict[str, Any] = {}
        self._checkpoints: dict[str, str] = {}  # trial -> latest checkpoint path
        self._modelled: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_loggers={}, _checkpoints={}, _modelled=set())
        return state

    def setup(self, **info) -> None:
        use_tracking_uri(self.tracking_uri)

    def _config(self, trial) -> DictConfig:
        return self.config_of(trial.config)

    def _label(self, trial) -> str:
        row = trial.config.get("row")
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in trial.config["params"].items())  # fmt: skip
        return f"trial {trial.trial_id}" + (f" [{row}]" if row else "") + f" ({params})"

    def _logger(self, trial):
        """The RunLogger of a trial's child run: found by trial id (resume) or created."""
        if trial.trial_id in self._loggers:
            return self._loggers[trial.trial_id]
        from mlflow.entities import RunStatus
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        cfg = self._config(trial)
        found = client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TRIAL_TAG}` = '{trial.trial_id}' "
            f"and tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
            client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        else:
            row, params = trial.config.get("row"), trial.config["params"]
            tags = {
                PARENT_TAG: self.parent_run_id,
                SWEEP_TAG: self.sweep,
                TRIAL_TAG: trial.trial_id,
                PARAMS_TAG: json.dumps(params),
                NOTE_TAG: trial_description(self.sweep, row, params, trial.trial_id),
                **run_tags(cfg, self.hashes),
            }
            name = trial_run_name(row, params, trial.trial_id)
            run_id = client.create_run(
                self.experiment_id, run_name=name, tags=context_tags(tags)
            ).info.run_id
            log_config(run_id, cfg, {ROW_PARAM: row} if row else None)
            log_datasets(run_id, cfg)
        total = cfg.train.epochs * steps_per_epoch(cfg)
        self._loggers[trial.trial_id] = RunLogger(
            run_id, total, f"trial {trial.trial_id}", lead=cfg.train.checkpoint_metric
        )
        return self._loggers[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._logger(trial)
        print(f"{self._label(trial)} started", flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        from ray.train import Checkpoint
        from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY

        logger = self._logger(trial)
        if BEST_CHECKPOINT in result:
            logger.log_best(json.loads(result[BEST_REPORT]))
            self._log_model(trial, result[BEST_CHECKPOINT])
            return
        path = result.get(CHECKPOINT_PATH_KEY)
        if path:
            self._checkpoints[trial.trial_id] = path
        metrics = {k: v for k, v in result.items() if k not in _tune_keys()}
        logger.log(metrics, Checkpoint(path) if path else None)

    def _log_model(self, trial, path: str) -> None:
        from mlflow.tracking import MlflowClient
        from ray.train import Checkpoint

        run_id = self._logger(trial).run_id
        with Checkpoint(path).as_directory() as directory:
            log_model(self._config(trial), run_id, directory, register=False)
        MlflowClient().set_tag(run_id, "best_checkpoint", path)
        self._modelled.add(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        from mlflow.tracking import MlflowClient

        logger = self._logger(trial)
        stopped = trial.trial_id not in self._modelled
        if stopped and trial.trial_id in self._checkpoints:  # stopped early by the scheduler
            self._log_model(trial, self._checkpoints[trial.trial_id])
        client = MlflowClient()
        if stopped:
            client.set_tag(logger.run_id, "stopped_early", "true")
        logger.finish()
        if logger.diverged is not None:  # a model of NaN: the trial failed, whatever Tune says
            why = fail_run(logger.run_id, f"DivergedError: not finite at {logger.diverged}")
            print(f"{self._label(trial)} FAILED: {why}", flush=True)
            return
        client.set_terminated(logger.run_id, "FINISHED")
        summary = ", ".join(
            f"{k}={float(v):.4g}" for k, v in logger.latest.items() if k.startswith("val/")
        )
        print(f"{self._label(trial)} finished{' (stopped early)' if stopped else ''}: {summary}",
              flush=True)  # fmt: skip

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        logger = self._logger(trial)
        logger.finish()
        run_id = logger.run_id
        text = Path(trial.error_file).read_text() if trial.error_file else "unknown error"
        print(f"{self._label(trial)} FAILED: {fail_run(run_id, text)}", flush=True)
