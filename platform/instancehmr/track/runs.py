"""MLflow runs of the platform: where they are stored, how they start or resume, what they hold.

Only the driver process writes to the tracking store (a SQLite file must have one writer);
workers' metrics reach it through Ray (see :mod:`instancehmr.track.relay`).
"""

from __future__ import annotations

import contextlib
import os
import platform as _platform
import re
import subprocess
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from instancehmr import __version__
from instancehmr.config import config_hash, to_yaml
from instancehmr.runtime import sigterm_as_interrupt
from instancehmr.track.datasets import log_datasets

# Imported inside the functions that use them, to keep this module light: MLflow, Ray, smplx, torch.

RUN_NAME_TAG = "instancehmr.run_name"
DEFAULT_STORE = "mlflow.db"
ERROR_TAG = "error"


class RunFailed(RuntimeError):
    """A run that ended without a usable model (an error in training, or a final validation
    that is not finite); its MLflow run is marked FAILED and nothing is registered."""


EXCEPTION = re.compile(r"([A-Za-z_][\w.]*(?:Error|Exception|Interrupt))(?::\s*(.*))?$")


def tracking_uri(cfg: DictConfig | None = None) -> str:
    """``tracking.tracking_uri`` of ``cfg``, else ``$MLFLOW_TRACKING_URI``, else SQLite in the
    working dir."""
    return (
        (cfg.tracking.tracking_uri if cfg is not None else None)
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{Path.cwd() / DEFAULT_STORE}"
    )


#: Where ``mlflow ui`` serves a local store by default.
LOCAL_UI = "http://127.0.0.1:5000"


def ui_link(
    uri: str, experiment_id: str, run_id: str | None = None, sweep: str | None = None
) -> str:
    """The MLflow UI's page of a run, or of an experiment's training runs (MLflow 3's "Model
    training" view, not its GenAI view) filtered to a sweep's runs: on the tracking server when
    ``uri`` is one, else on ``LOCAL_UI`` (where ``mlflow ui --backend-store-uri <uri>`` serves)."""
    from urllib.parse import quote

    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else LOCAL_UI
    page = f"{base}/#/experiments/{experiment_id}"
    if run_id is not None:
        return f"{page}/runs/{run_id}"
    link = f"{page}/runs?workflowType=machine_learning"
    if sweep is not None:
        link += "&searchFilter=" + quote(f"tags.`instancehmr.sweep` = '{sweep}'")
    return link


def ui_hint(uri: str) -> str:
    """How to open the UI on a store: nothing for a tracking server, else the command."""
    if uri.startswith(("http://", "https://")):
        return ""
    return f" (after: mlflow ui --backend-store-uri {uri})"


def use_tracking_uri(where: DictConfig | str | None = None) -> str:
    """Point this process's MLflow at the store of ``where`` (an experiment config, resolved by
    :func:`tracking_uri`, or a URI) and return the URI: the one place that sets MLflow's
    process-wide tracking URI."""
    import mlflow

    uri = where if isinstance(where, str) else tracking_uri(where)
    mlflow.set_tracking_uri(uri)
    return uri


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as MLflow params: dotted keys, values as strings."""
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def git_commit() -> str:
    """The working tree's commit (with ``-dirty`` for local changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_tags(cfg: DictConfig, manifest_hashes: dict[str, str]) -> dict[str, str]:
    """Tags that identify what a run was made of: code, config, data, libraries."""
    import mlflow
    import ray
    import smplx  # noqa: F401  (version below)
    import torch

    tags = {
        "git_commit": git_commit(),
        "config_hash": config_hash(cfg),
        "instancehmr_version": __version__,
        "torch_version": torch.__version__,
        "ray_version": ray.__version__,
        "mlflow_version": mlflow.__version__,
        "python_version": _platform.python_version(),
    }
    tags.update({f"data_manifest.{name}": h for name, h in manifest_hashes.items()})
    return tags


def context_tags(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` with what MLflow's ``start_run`` adds by itself (user, source name and type, git
    commit), for runs created through the client (sweep parents and trials)."""
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags(tags)


def find_run(experiment_id: str, run_name: str) -> str | None:
    """The id of the run called ``run_name`` in the experiment, if any (newest first)."""
    from mlflow.tracking import MlflowClient

    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_NAME_TAG}` = '{run_name}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def config_changes(run_id: str, cfg: DictConfig) -> dict[str, tuple[str, str]]:
    """{dotted key: (the run's value, ``cfg``'s value)} for every key where ``cfg`` differs from
    the run's current config (its ``config.yaml``, rewritten by each accepted change)."""
    import mlflow
    import yaml

    if mlflow.get_run(run_id).data.tags.get("config_hash") == config_hash(cfg):
        return {}
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    old = flat_params(OmegaConf.create(yaml.safe_load(text)))
    new = flat_params(cfg)
    keys = sorted(old.keys() | new.keys())
    return {
        k: (old.get(k, "<absent>"), new.get(k, "<absent>"))
        for k in keys
        if old.get(k) != new.get(k)
    }


def check_resume(cfg: DictConfig, run_name: str, with_changes: bool) -> dict[str, tuple[str, str]]:
    """Before any work: the config changes a resume of ``run_name`` would make (empty for a new
    run or the same config). A ValueError listing them (old -> new) unless ``with_changes``:
    resuming must not silently train, checkpoint and record another config than the run's."""
    import mlflow

    use_tracking_uri(cfg)
    experiment = mlflow.get_experiment_by_name(cfg.name)
    run_id = None if experiment is None else find_run(experiment.experiment_id, run_name)
    changes = {} if run_id is None else config_changes(run_id, cfg)
    if changes and not with_changes:
        listed = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changes.items())
        raise ValueError(
            f"run '{run_name}' ({run_id}) was trained with another config: {listed}. Resume it "
            "with these changes applied and recorded with --resume-with-changes, or start a new "
            "run with another tracking.run_name"
        )
    return changes


CHANGES_TAG = "config_changes"


def record_config_changes(
    run_id: str, cfg: DictConfig, changes: dict[str, tuple[str, str]]
) -> None:
    """Record a resume's accepted ``changes``: at which step (the last finished epoch's), as
    ``config_changes/step_NNNNNN.yaml`` and a line appended to tag ``config_changes``; the run's
    ``config.yaml`` and ``config_hash`` become ``cfg``'s (its params keep the first values)."""
    import mlflow
    import yaml

    client = mlflow.tracking.MlflowClient()
    epochs = client.get_metric_history(run_id, "epochs_done")
    step = max((m.step for m in epochs), default=0)
    listed = "; ".join(f"{k} {old} -> {new}" for k, (old, new) in changes.items())
    previous = client.get_run(run_id).data.tags.get(CHANGES_TAG)
    line = f"step {step}: {listed}"
    client.set_tag(run_id, CHANGES_TAG, f"{previous}\n{line}" if previous else line)
    record = {k: {"old": old, "new": new} for k, (old, new) in changes.items()}
    client.log_text(
        run_id,
        yaml.safe_dump({"step": step, "changes": record}),
        f"config_changes/step_{step:06d}.yaml",
    )
    client.log_text(run_id, to_yaml(cfg), "config.yaml")
    client.set_tag(run_id, "config_hash", config_hash(cfg))


def start_run(
    cfg: DictConfig,
    run_name: str,
    manifest_hashes: dict[str, str],
    changes: dict[str, tuple[str, str]] | None = None,
):
    """Start the MLflow run of a training run, or reopen it when ``run_name`` exists (resume,
    recording the accepted config ``changes`` of :func:`check_resume`).

    Returns (active run, resumed flag). A new run gets the flattened config as params, the tags
    of :func:`run_tags` and the resolved config as an artifact. Its system metrics are sampled
    by the run's :class:`~instancehmr.track.relay.RunLogger`.
    """
    import mlflow

    use_tracking_uri(cfg)
    experiment = mlflow.set_experiment(cfg.name)
    run_id = find_run(experiment.experiment_id, run_name)
    if run_id is not None:
        if changes:
            record_config_changes(run_id, cfg, changes)
        return mlflow.start_run(run_id=run_id, log_system_metrics=False), True
    tags = {RUN_NAME_TAG: run_name, **run_tags(cfg, manifest_hashes)}
    run = mlflow.start_run(run_name=run_name, tags=tags, log_system_metrics=False)
    log_config(run.info.run_id, cfg)
    log_datasets(run.info.run_id, cfg)
    return run, False


def log_config(run_id: str, cfg: DictConfig, extra: dict[str, str] | None = None) -> None:
    """A new run's params (the flattened config, plus ``extra``) and its ``config.yaml``."""
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    params = flat_params(cfg) | (extra or {})
    keys = sorted(params)
    for i in range(0, len(keys), 100):  # MLflow takes at most 100 params per call
        client.log_batch(run_id, params=[Param(k, params[k]) for k in keys[i : i + 100]])
    client.log_text(run_id, to_yaml(cfg), "config.yaml")


@contextlib.contextmanager
def run_outcome(run_id: str, label: str) -> Iterator[None]:
    """Close the active MLflow run ``run_id`` as what happened in the block: FINISHED when it
    ends, KILLED on Ctrl+C or SIGTERM (the KeyboardInterrupt raised again), FAILED with the
    error (:func:`fail_run`) on any other exception, raised again as :class:`RunFailed` naming
    ``label`` and the error. A run is never left RUNNING, nor closed FINISHED by MLflow's exit
    handler after a crash."""
    import mlflow

    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except Exception as err:
        mlflow.end_run("FAILED")  # closes the active run; fail_run records why
        message = fail_run(run_id, "".join(traceback.format_exception(err)))
        raise RunFailed(f"run {label} ({run_id}) FAILED: {message}") from err
    mlflow.end_run()


def error_message(text: str) -> str:
    """The last exception an error text (a traceback, a Ray error file) names, as
    ``Name: message`` (worker log prefixes and module paths dropped), or its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        found = EXCEPTION.search(line)
        if found:
            name = found[1].rsplit(".", 1)[-1]
            return f"{name}: {found[2]}" if found[2] else name
    return lines[-1] if lines else "unknown error"


def fail_run(run_id: str, text: str) -> str:
    """End the run FAILED with the error: its whole ``text`` as ``error.txt``, the last
    exception it names as tag ``error``. Returns that message."""
    from mlflow.tracking import MlflowClient

    message = error_message(text)
    client = MlflowClient()
    client.log_text(run_id, text, "error.txt")
    client.set_tag(run_id, ERROR_TAG, message[:5000])
    client.set_terminated(run_id, "FAILED")
    return message
