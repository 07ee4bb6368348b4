"""``instancehmr promote``: make the best run of an experiment or sweep the registered
``champion``.

The best finished run by a metric (``val/mpjpe``, min, by default) among an MLflow experiment's
own runs (sweep trials only with ``include_sweeps``: an ablation's rows are other models), or
among a sweep's trials (the child runs of its newest parent run, named by the sweep), becomes a
version of the registered model (unless it is one already), described with its metrics, config
hash, data manifest hashes, source run and, for a trial, its sweep, row and seed. The alias ``champion`` moves to it
and the old champion becomes ``previous``. A candidate that is not strictly better than the
current champion on the same metric is refused, with both numbers, unless ``force``.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass

from instancehmr.track.models import CHAMPION, PREVIOUS
from instancehmr.track.sweeps import (
    PARAMS_TAG,
    PARENT_TAG,
    ROLE_TAG,
    ROW_PARAM,
    SEED_KEY,
    SWEEP_TAG,
    find_parent,
)

# Imported inside the functions that use them, to keep this module light: MLflow.

MODES = ("min", "max")


class PromotionRefused(ValueError):
    """The candidate does not beat the champion (the message gives both values)."""


@dataclass
class Promotion:
    name: str
    version: str
    run_id: str
    metric: str
    value: float
    previous_version: str | None
    previous_value: float | None
    registered_now: bool

    def summary(self) -> str:
        was = (
            f"; previous champion v{self.previous_version} ({self.metric}={self.previous_value:.4g})"
            if self.previous_version
            else ""
        )
        new = " (newly registered)" if self.registered_now else ""
        return (
            f"{self.name} v{self.version}{new} from run {self.run_id} is now '{CHAMPION}' "
            f"({self.metric}={self.value:.4g}){was}"
        )


def _better(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "min" else value > than


def _scope(client, name: str, include_sweeps: bool = False) -> tuple[list[str], str, str]:
    """Where the candidates of ``name`` are: (experiment ids, run filter, description). An MLflow
    experiment's finished runs outside sweeps (all of them with ``include_sweeps``), or the
    finished trials of the newest sweep of that name."""

    finished = "attributes.status = 'FINISHED'"
    experiment = client.get_experiment_by_name(name)
    everywhere = [e.experiment_id for e in client.search_experiments()]
    parent = find_parent(client, everywhere, name)
    if experiment is not None and parent is not None:
        raise ValueError(f"'{name}' names both an MLflow experiment and a sweep; rename the sweep")
    if experiment is not None:
        if include_sweeps:
            return [experiment.experiment_id], finished, f"experiment '{name}' (sweeps included)"
        own = f"{finished} and tags.`{SWEEP_TAG}` IS NULL and tags.`{PARENT_TAG}` IS NULL"
        return [experiment.experiment_id], own, f"experiment '{name}' (outside sweeps)"
    if parent is not None:
        scope = f"{finished} and tags.`{PARENT_TAG}` = '{parent.info.run_id}'"
        return [parent.info.experiment_id], scope, f"sweep '{name}'"
    names = sorted(e.name for e in client.search_experiments())
    sweeps = client.search_runs(everywhere, filter_string=f"tags.`{ROLE_TAG}` = 'sweep'")
    sweep_names = sorted({r.data.tags.get(SWEEP_TAG) for r in sweeps})
    raise ValueError(
        f"no MLflow experiment or sweep '{name}'; experiments: {names}; sweeps: {sweep_names}"
    )


def best_run(client, name: str, metric: str, mode: str, include_sweeps: bool = False):
    """The finished run with the best final ``metric`` among an experiment's runs or a sweep's
    trials (``name``); a ValueError listing both kinds (or saying no run has the metric)."""
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {MODES}, got '{mode}'")
    experiment_ids, scope, what = _scope(client, name, include_sweeps)
    runs = client.search_runs(
        experiment_ids,
        filter_string=scope,
        order_by=[f"metrics.`{metric}` {'ASC' if mode == 'min' else 'DESC'}"],
    )
    runs = [r for r in runs if math.isfinite(r.data.metrics.get(metric, math.nan))]
    if not runs:
        hint = "" if include_sweeps or "outside sweeps" not in what else (
            "; a sweep's trials are promoted by the sweep's name, or with --include-sweeps"
        )  # fmt: skip
        raise ValueError(f"{what}: no finished run has metric '{metric}'{hint}")
    return runs[0]


def _describe(run, metric: str) -> str:
    metrics = ", ".join(
        f"{k}={v:.4g}" for k, v in sorted(run.data.metrics.items()) if k.startswith("val/")
    )
    manifests = ", ".join(
        f"{k.split('.', 1)[1]}={v}"
        for k, v in sorted(run.data.tags.items())
        if k.startswith("data_manifest.")
    )
    trial = ""
    if SWEEP_TAG in run.data.tags:
        seed = json.loads(run.data.tags.get(PARAMS_TAG, "{}")).get(SEED_KEY)
        row = run.data.params.get(ROW_PARAM)
        trial = (f" Trial of sweep {run.data.tags[SWEEP_TAG]}" + (f", row {row}" if row else "")
                 + (f", seed {seed}" if seed is not None else "") + ".")  # fmt: skip
    return (
        f"Promoted by {metric}.{trial} Source run {run.info.run_id} ({run.info.run_name}); "
        f"config hash {run.data.tags.get('config_hash', 'unknown')}; data manifests {manifests}; "
        f"metrics {metrics}."
    )


def _model_version(client, run, name: str):
    """The newest version of model ``name`` made from ``run``, or its logged model registered
    now; and whether it was registered now. Raises ValueError when the run logged no model."""
    import mlflow

    versions = client.search_model_versions(f"name='{name}' and run_id='{run.info.run_id}'")
    if versions:
        return max(versions, key=lambda v: int(v.version)), False
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
        output_format="list",
    )
    if not logged:
        raise ValueError(f"run {run.info.run_id} logged no model; it cannot be registered")
    return mlflow.register_model(logged[0].model_uri, name), True


def check_model_name(name: str, where: str) -> None:
    """ValueError naming ``where`` (a flag or config key) when the MLflow model registry would
    refuse ``name`` (MLflow's own rule: not empty, no '/' or ':', no path tricks)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_name

    try:
        _validate_model_name(name)
    except MlflowException as err:
        raise ValueError(
            f"{where} {name!r}: the model registry refuses it: {err.message}"
        ) from None


def promote(
    experiment: str,
    metric: str = "val/mpjpe",
    mode: str = "min",
    force: bool = False,
    name: str = "instancehmr",
    include_sweeps: bool = False,
) -> Promotion:
    """Promote the best run of ``experiment`` (see the module docstring). ValueError for a
    model ``name`` the registry refuses, before anything is read."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    check_model_name(name, "--name")
    client = MlflowClient()
    run = best_run(client, experiment, metric, mode, include_sweeps)
    value = run.data.metrics[metric]
    champion = None
    with contextlib.suppress(MlflowException):  # no model or no champion yet: any run may be first
        champion = client.get_model_version_by_alias(name, CHAMPION)
    previous_value = None
    if champion is not None:
        if champion.run_id == run.info.run_id:
            raise PromotionRefused(
                f"run {run.info.run_id} ({metric}={value:.4g}) is already '{CHAMPION}' "
                f"({name} v{champion.version})"
            )
        previous_value = client.get_run(champion.run_id).data.metrics.get(metric, math.nan)
        if not force and not _better(value, previous_value, mode):
            raise PromotionRefused(
                f"best run {run.info.run_id} of '{experiment}' has {metric}={value:.4g}, not "
                f"{'below' if mode == 'min' else 'above'} the champion {name} "
                f"v{champion.version} ({previous_value:.4g}); --force promotes it anyway"
            )
    version, registered_now = _model_version(client, run, name)
    client.update_model_version(name, version.version, description=_describe(run, metric))
    client.set_model_version_tag(name, version.version, metric, f"{value:.6g}")
    for key in ("config_hash", *(k for k in run.data.tags if k.startswith("data_manifest."))):
        if key in run.data.tags:
            client.set_model_version_tag(name, version.version, key, run.data.tags[key])
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion.version)
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return Promotion(
        name=name,
        version=str(version.version),
        run_id=run.info.run_id,
        metric=metric,
        value=value,
        previous_version=None if champion is None else str(champion.version),
        previous_value=previous_value,
        registered_now=registered_now,
    )
