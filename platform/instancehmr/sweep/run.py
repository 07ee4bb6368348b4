"""``instancehmr sweep`` / ``instancehmr ablate``: run a sweep file's trials with Ray Tune, each
trial one Ray Train run, all tracked under one MLflow parent run.

Before any trial starts: the sweep file is checked (:mod:`instancehmr.sweep.spec`), every row's
config resolved, the cluster checked for one trial's resources and every corpus prepared once.
Trials that fail are reported and the sweep goes on. Ctrl+C (SIGINT) stops the sweep with its
state saved; ``--resume`` continues the unfinished trials and never re-runs finished ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from instancehmr.body.synthetic import ensure_synthetic_body
from instancehmr.config import config_from_yaml, load_config, to_yaml
from instancehmr.eval.run import evaluate
from instancehmr.runtime import TRIAL_DRIVER_RESOURCE, init_ray
from instancehmr.sweep.comparison import comparison_tables, metric_key
from instancehmr.sweep.leaderboard import ablation_table, leaderboard, picture, ranked, trial_rows
from instancehmr.sweep.search import param_space, scheduler, search_algorithm
from instancehmr.sweep.spec import SweepSpec, param_overrides, sweep_from_dict
from instancehmr.sweep.trial import run_trial, trial_config, trial_storage
from instancehmr.track.runs import context_tags, use_tracking_uri
from instancehmr.track.sweeps import (
    HASH_TAG,
    NOTE_TAG,
    ROLE_TAG,
    SWEEP_TAG,
    SweepTracker,
    find_parent,
)
from instancehmr.train.launch import check_resources, ensure_data, storage_uri

# Imported inside the functions that use them, to keep this module light: Ray, MLflow.


@dataclass
class SweepResult:
    parent_run_id: str
    leaderboard: str
    ablation: str | None
    finished: int
    failed: int
    unfinished: int
    seconds: float
    name: str = ""
    experiment_id: str = ""
    tracking_uri: str = ""
    benchmark: str | None = None
    #: Where the trials' Ray Train checkpoints are (what ``--resume`` needs) and their size.
    checkpoints: str = ""
    checkpoint_bytes: int | None = None


def _trial_name(trial) -> str:
    return trial.trial_id


def base_configs(spec: SweepSpec) -> dict[str, str]:
    """The resolved YAML of each row's config before sampling (``""`` without rows)."""

    rows = spec.rows or {"": ()}
    return {
        row: to_yaml(load_config(spec.experiment, spec.base_overrides(row or None))) for row in rows
    }


def without_twin_rows(spec: SweepSpec, bases: dict[str, str]) -> tuple[SweepSpec, dict[str, str]]:
    """``spec`` and ``bases`` without the rows whose resolved config equals an earlier row's
    (a row file that sets what the base experiment already has, e.g. ``dim32`` on quickstart,
    whose embedding is 32): their trials would repeat their twin's. Each is named on the
    console."""
    first: dict[str, str] = {}  # resolved config -> the first row that has it
    for row, text in bases.items():
        first.setdefault(text, row)
    twins = {row: first[text] for row, text in bases.items() if first[text] != row}
    for row, twin in twins.items():
        print(f"row {row} is the same config as row {twin} on {spec.experiment}: left out",
              flush=True)  # fmt: skip
    if not twins:
        return spec, bases
    kept = {row: text for row, text in bases.items() if row not in twins}
    return replace(spec, rows={r: spec.rows[r] for r in kept}), kept


def prepare(spec: SweepSpec, bases: dict[str, str], driver_cpus: int) -> dict[str, str]:
    """Make the body and every corpus any trial reads, once, in the driver; check that the
    cluster can hold one trial (and its driver's CPUs). Returns {corpus: manifest hash}."""

    hashes: dict[str, str] = {}
    checked = set()
    for row, text in bases.items():
        for params in spec.corners():
            cfg = config_from_yaml(text, f"{spec.path}: row '{row}'", param_overrides(params))
            if cfg.body.model_path is None:
                ensure_synthetic_body()
            check_resources(cfg, extra_cpus=driver_cpus)
            data = (tuple(map(str, cfg.data.mix)), cfg.data.val_card, cfg.data.shards_dir)
            if data not in checked:
                checked.add(data)
                hashes.update(ensure_data(cfg))
    return hashes


def trial_driver_cpus() -> int:
    """CPUs a trial driver takes: none on a cluster whose nodes advertise the trial-driver
    resource (a local Ray, cluster.yaml's head), else Tune's default of one."""
    import ray

    return 0 if ray.cluster_resources().get(TRIAL_DRIVER_RESOURCE, 0) >= 1 else 1


def sweep_hash(spec: SweepSpec, bases: dict[str, str]) -> str:
    """Content hash of what a sweep's trials run: its fields and each row's resolved config."""
    fields = {k: v for k, v in asdict(spec).items() if k != "path"}
    payload = json.dumps([fields, bases], sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def sweep_description(spec: SweepSpec) -> str:
    """The parent run's description (its MLflow note): what the sweep varies and ranks by."""
    rows = f" rows {', '.join(f'`{r}`' for r in spec.rows)} x" if spec.rows else ""
    return (
        f"Sweep `{spec.name}` of experiment `{spec.experiment}`:{rows} {spec.num_trials} trials "
        f"({spec.algorithm} over {', '.join(spec.space)}), ranked by {spec.metric} ({spec.mode}). "
        f"Promote its best trial with `instancehmr promote {spec.name}`."
    )


def _open_parent(client, experiment_id: str, spec: SweepSpec, bases: dict, resume: bool) -> str:
    """The sweep's MLflow parent run: on resume the existing one (refused when the sweep or an
    experiment file it reads changed since), else a new one with the sweep's fields."""
    from mlflow.entities import Param

    digest = sweep_hash(spec, bases)
    if resume:
        parent = find_parent(client, [experiment_id], spec.name)
        if parent is None:
            raise ValueError(
                f"sweep '{spec.name}': no MLflow parent run in this experiment at "
                f"{client.tracking_uri}; resume with the tracking URI the sweep started with"
            )
        if parent.data.tags.get(HASH_TAG) != digest:
            raise ValueError(
                f"sweep '{spec.name}' changed since it started (its fields or the experiment "
                "files it reads): resume needs the same sweep; give a changed one another name"
            )
        client.update_run(parent.info.run_id, status="RUNNING")
        return parent.info.run_id
    tags = {SWEEP_TAG: spec.name, ROLE_TAG: "sweep", HASH_TAG: digest,
            NOTE_TAG: sweep_description(spec)}  # fmt: skip
    run_id = client.create_run(
        experiment_id, run_name=spec.name, tags=context_tags(tags)
    ).info.run_id
    fields = {k: v for k, v in asdict(spec).items() if k != "path"}
    client.log_batch(
        run_id,
        params=[Param(f"sweep.{k}", json.dumps(v, default=str)[:6000]) for k, v in fields.items()],
    )
    client.log_text(run_id, yaml.safe_dump(fields, sort_keys=False), "sweep.yaml")
    return run_id


def _check_state(spec: SweepSpec, path: str, resume: bool, retry_failed: bool) -> None:
    """Refuse a fresh sweep over an old one of the same name, and a resume of nothing."""
    import ray.tune

    if retry_failed and not resume:
        raise ValueError("--retry-failed goes with --resume")
    exists = ray.tune.Tuner.can_restore(path)
    if resume and not exists:
        raise ValueError(f"sweep '{spec.name}': nothing to resume at {path}")
    if not resume and exists:
        raise ValueError(
            f"sweep '{spec.name}' already ran at {path}: --resume continues it; give the sweep "
            "another name (field 'name') or delete that folder to start over"
        )


def _tuner(spec: SweepSpec, bases: dict[str, str], storage: str, driver_cpus: int, tracker,
           resume: bool, retry_failed: bool):  # fmt: skip
    """The Tune experiment of the sweep: restored from ``storage`` with ``resume`` (its pickled
    tracker comes back with it), else new, mirrored to MLflow by ``tracker``."""
    import ray.tune

    # Training-step reports carry no validation metric; the scheduler and searcher act on
    # validation reports only (sweep/search.py). Trials keep the driver's working directory.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    resources = {"CPU": 0, TRIAL_DRIVER_RESOURCE: 1} if driver_cpus == 0 else {"CPU": 1}
    trainable = ray.tune.with_resources(
        ray.tune.with_parameters(
            run_trial, bases=bases, sweep=spec.name, storage=storage, metric=spec.metric,
            mode=spec.mode,
        ),
        resources,
    )  # fmt: skip
    if resume:
        path = f"{storage}/{spec.name}"
        return ray.tune.Tuner.restore(path, trainable, restart_errored=retry_failed)
    return ray.tune.Tuner(
        trainable,
        param_space=param_space(spec),
        tune_config=ray.tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=search_algorithm(spec),
            scheduler=scheduler(spec),
            num_samples=spec.samples,
            max_concurrent_trials=spec.max_concurrent_trials,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=ray.tune.RunConfig(
            name=spec.name, storage_path=storage, callbacks=[tracker], verbose=0
        ),
    )


def run_sweep(spec: SweepSpec, resume: bool = False, retry_failed: bool = False) -> SweepResult:
    """Run (or with ``resume`` continue) the sweep ``spec``; see the module docstring."""
    import mlflow
    from mlflow.tracking import MlflowClient

    started = time.monotonic()
    spec, bases = without_twin_rows(spec, base_configs(spec))
    base = config_from_yaml(next(iter(bases.values())), str(spec.path))
    storage = storage_uri(base)
    init_ray()
    _check_state(spec, f"{storage}/{spec.name}", resume, retry_failed)
    uri = use_tracking_uri(base)
    client = MlflowClient()
    experiment_id = mlflow.set_experiment(base.name).experiment_id
    parent_id = _open_parent(client, experiment_id, spec, bases, resume)
    driver_cpus = trial_driver_cpus()
    try:
        hashes = prepare(spec, bases, driver_cpus)
    except BaseException:
        client.set_terminated(parent_id, "FAILED")
        raise
    print(f"{'resuming' if resume else 'starting'} sweep {spec.name} (MLflow experiment "
          f"{base.name}, parent run {parent_id}): {spec.algorithm} search over "
          f"{', '.join(spec.space)}{f', rows {list(spec.rows)}' if spec.rows else ''}", flush=True)  # fmt: skip
    config_of = functools.partial(trial_config, bases, spec.name)
    tracker = SweepTracker(spec.name, parent_id, experiment_id, uri, config_of, hashes)
    _tuner(spec, bases, storage, driver_cpus, tracker, resume, retry_failed).fit()
    if spec.benchmark:
        evaluate_trials(client, parent_id, spec)
    result = report(client, parent_id, spec)
    result.seconds = time.monotonic() - started
    result.name, result.experiment_id, result.tracking_uri = spec.name, experiment_id, uri
    result.benchmark = spec.benchmark
    result.checkpoints = trial_storage(storage, spec.name)
    result.checkpoint_bytes = folder_bytes(result.checkpoints)
    return result


def folder_bytes(path: str) -> int | None:
    """Bytes under a local folder (None for a remote URI or a missing folder)."""
    folder = Path(path)
    if "://" in path or not folder.is_dir():
        return None
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def evaluate_trials(client, parent_id: str, spec: SweepSpec) -> None:
    """Evaluate the model of every finished trial not yet evaluated on ``spec.benchmark`` (its
    ``eval/...`` metrics land in an evaluation run nested under the trial's run; tables under
    ``eval_results/<sweep>/``)."""

    done_key = metric_key(spec.benchmark, "gt-centers", "all", "mpjpe")
    todo = [
        r for r in trial_rows(client, client.get_run(parent_id))
        if r.status == "FINISHED" and done_key not in r.metrics
    ]  # fmt: skip
    for k, row in enumerate(todo, start=1):
        print(f"evaluating trial {k}/{len(todo)} ({row.row or row.trial_id}) on {spec.benchmark}")
        evaluate(row.run_id, [spec.benchmark], out_dir=Path("eval_results") / spec.name)


def report(client, parent_id: str, spec: SweepSpec) -> SweepResult:
    """Leaderboard (and ablation table) from the child runs, logged to the parent run, which
    ends FINISHED, or KILLED when trials are left to resume (an interrupted sweep; their runs
    end KILLED too)."""

    parent = client.get_run(parent_id)
    rows = trial_rows(client, parent)
    board = leaderboard(rows, spec.metric, spec.mode)
    ablation = ablation_table(rows, spec.metric) if spec.rows else None
    if ablation and spec.benchmark:
        comparison = comparison_tables(rows, spec.benchmark)
        ablation += f"\n\n{comparison}" if comparison else ""
    client.log_text(parent_id, board, "leaderboard.md")
    if ablation:
        client.log_text(parent_id, ablation, "ablation.md")
    histories = {
        r.run_id: [(m.step, m.value) for m in client.get_metric_history(r.run_id, spec.metric)]
        for r in rows
    }
    client.log_figure(parent_id, picture(rows, histories, spec.metric), "leaderboard.png")
    best = ranked(rows, spec.metric, spec.mode)[:1]
    value = best[0].metrics.get(spec.metric, math.nan) if best else math.nan
    if best and best[0].status == "FINISHED" and math.isfinite(value):
        client.log_metric(parent_id, f"best/{spec.metric}", value)
        client.set_tag(parent_id, "best_trial", best[0].trial_id)
        client.set_tag(parent_id, "best_run_id", best[0].run_id)
    finished = sum(r.status == "FINISHED" for r in rows)
    failed = sum(r.status == "FAILED" for r in rows)
    unfinished = spec.num_trials - finished - failed
    for row in rows:
        if row.status == "RUNNING":
            client.set_terminated(row.run_id, "KILLED")
    client.set_terminated(parent_id, "KILLED" if unfinished else "FINISHED")
    return SweepResult(parent_id, board, ablation, finished, failed, unfinished, 0.0)


def ablation_spec(
    rows: list[str],
    experiment: str,
    seeds: int,
    overrides: list[str],
    name: str | None = None,
    metric: str = "val/mpjpe",
    mode: str = "min",
    max_concurrent_trials: int = 1,
    benchmark: str | None = "synthetic",
) -> SweepSpec:
    """The sweep of ``instancehmr ablate``: the ``default`` row and every ablation file of
    ``rows`` (folders or files) on ``experiment``, ``seeds`` seeds each (grid search), every
    finished trial then evaluated on ``benchmark`` for the seeded comparison."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    raw = {
        "name": name or f"ablate-{Path(experiment).stem}",
        "experiment": experiment,
        "overrides": list(overrides),
        "metric": metric,
        "mode": mode,
        "algorithm": "grid",
        "max_concurrent_trials": max_concurrent_trials,
        "rows": [str(Path(r).resolve()) for r in rows],
        "space": {"train.seed": {"grid": list(range(seeds))}},
        "benchmark": benchmark,
    }
    return sweep_from_dict(raw, Path.cwd() / "ablate")
