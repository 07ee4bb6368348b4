"""``instancehmr eval MODEL BENCHMARK...``: load a model, run benchmarks under both protocols,
print and save the tables, log the metrics to MLflow.

MODEL is a checkpoint (folder or ``training_state.pt``), an MLflow run id, or a registry URI
``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``; the config travels inside the checkpoint
and ``key=value`` overrides adjust it (``data.shards_dir=...``, ``decode.center_threshold=...``).
A benchmark without data is reported with how to get it; the others still run. Every
benchmark's data and annotation file are checked before any is evaluated, and results are
written only when every benchmark with data has been evaluated. An undefined metric (NaN: an AP
over no ground-truth person, an error over no labelled person) stays undefined: "n/a" in the
tables, an empty cell in the CSV, not logged to MLflow.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from instancehmr.atomic import atomic_path, write_text_atomically
from instancehmr.body.smpl import BodyModel
from instancehmr.data.cards import load_card
from instancehmr.data.corpora.base import read_json
from instancehmr.data.pipeline import shard_dir
from instancehmr.data.prepare import DataUnavailable, ensure_prepared
from instancehmr.eval.benchmarks import PROTOCOLS, Benchmark, get_benchmark
from instancehmr.eval.evaluators import build_evaluator, inference_on_dataset, shard_batches
from instancehmr.eval.keypoint_ap import (
    GroundTruth,
    index_ground_truth,
)
from instancehmr.eval.protocols import GroundTruthMeshes
from instancehmr.eval.references import training_constant
from instancehmr.eval.table import PERCENT, ROW_FIELDS, format_tables
from instancehmr.track.models import LoadedModel, load_model
from instancehmr.track.runs import use_tracking_uri
from instancehmr.track.sweeps import NOTE_TAG, PARENT_TAG, ROLE_TAG

# Imported inside the functions that use them, to keep this module light: MLflow, pyarrow, tqdm.

#: An evaluation run: role tag value, the model run it evaluates, the benchmark.
EVAL_ROLE, EVAL_OF_TAG, BENCHMARK_TAG = "eval", "instancehmr.eval_of", "instancehmr.benchmark"

REFERENCE_NOTE = (
    "reference rows: `constant` is one body for everyone (the training labels' mean orientation, "
    "pose and betas), `oracle` the ground truth read back through the model's decoding at "
    "ground-truth centers (what the map resolution costs); both at every ground-truth person"
)


@dataclass
class EvalResult:
    """Rows (see ``table.ROW_FIELDS``), benchmarks without data {name: why}, the tables."""

    rows: list[dict]
    unavailable: dict[str, str] = field(default_factory=dict)
    table: str = ""
    out_dir: Path | None = None


def benchmark_card(loaded: LoadedModel, bench: Benchmark):
    """The card a benchmark reads: the model's own synthetic card for ``synthetic`` (it was
    rendered at the model's settings), else the benchmark's."""

    if bench.name == "synthetic":
        val = load_card(loaded.cfg.data.val_card)
        if val.format == "synthetic_crowd":
            return val
    return load_card(bench.card)


def benchmark_files(loaded: LoadedModel, bench: Benchmark):
    """The benchmark's card and the shards of its split, prepared first when the raw data is
    there; raises ``DataUnavailable`` (saying how to get the data) when it is not."""

    card = benchmark_card(loaded, bench)
    shards_dir = loaded.cfg.data.shards_dir
    ensure_prepared(card, shards_dir, [bench.split])
    return card, sorted(shard_dir(shards_dir, card, bench.split).glob("part-*.parquet"))


def keypoint_ground_truth(card, bench: Benchmark) -> GroundTruth:
    """The benchmark's annotation file, checked and indexed for its AP definition; a
    ValueError naming the file and the annotation or image when it cannot be scored."""

    path = card.file(bench.split, "annotations")
    return index_ground_truth(read_json(card, path), bench.ap_definition, str(path))


def gendered_meshes(directory: str | Path | None):
    """A factory (body, body config) -> GroundTruthMeshes: the model's body for everyone, or with
    ``directory`` the SMPL_MALE / SMPL_FEMALE files there (.pkl or .npz) for gendered labels."""

    if directory is None:
        return lambda body, body_cfg: GroundTruthMeshes({"neutral": body})
    files = {}
    for gender in ("male", "female"):
        found = [
            f for f in sorted(Path(directory).glob(f"SMPL_{gender.upper()}.*"))
            if f.suffix in (".pkl", ".npz")
        ]  # fmt: skip
        if not found:
            raise FileNotFoundError(
                f"{directory}: no SMPL_{gender.upper()}.pkl or .npz (gendered GT meshes)"
            )
        files[gender] = found[0]

    def make(body, body_cfg):
        device = body.h36m_regressor.device
        bodies = {g: BodyModel.from_config(body_cfg, f).to(device) for g, f in files.items()}
        return GroundTruthMeshes({"neutral": body, **bodies})

    return make


def evaluate(
    reference: str,
    benchmarks: list[str],
    protocols=PROTOCOLS,
    out_dir: str | Path = "eval_results",
    overrides=(),
    gendered_models: str | Path | None = None,
) -> EvalResult:
    """Evaluate, write ``table.md`` and ``table.csv`` under ``out_dir/<model>``, log to MLflow."""

    chosen = [get_benchmark(b) for b in benchmarks]
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocols {unknown}; known: {list(PROTOCOLS)}")
    meshes = gendered_meshes(gendered_models)
    loaded = load_model(reference, overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded.model.to(device)
    result = EvalResult(rows=[])
    ready = []
    for bench in chosen:
        try:
            card, files = benchmark_files(loaded, bench)
        except DataUnavailable as err:
            result.unavailable[bench.name] = str(err)
            print(f"skipped: {err}")
            continue
        gt = keypoint_ground_truth(card, bench) if bench.kind == "keypoints" else None
        ready.append((bench, files, gt))
    body = BodyModel.from_config(loaded.cfg.body).to(device)
    constant = training_constant(loaded.cfg) if any(b.kind == "mesh" for b, _, _ in ready) else None
    for bench, files, gt in ready:
        evaluator = build_evaluator(bench, loaded.cfg, body, protocols, meshes, constant, gt)
        batches = shard_batches(loaded.cfg, files, bench.title)
        result.rows += inference_on_dataset(loaded.model, batches, [evaluator], device)
    if not result.rows:
        raise FileNotFoundError(
            "no benchmark has data:\n" + "\n".join(f"  {v}" for v in result.unavailable.values())
        )
    notes = [f"{name}: no data (skipped)" for name in result.unavailable]
    if gendered_models is None and any(b.name.startswith("3dpw") for b in chosen):
        notes.append("3DPW MPVPE against GT meshes of the model's own body (no --gendered-models)")
    protocols_seen = {r["protocol"] for r in result.rows}
    if any(b.kind == "mesh" for b, _, _ in ready):
        notes.append(REFERENCE_NOTE)
        if "constant" not in protocols_seen:
            notes.append(
                "no constant row: the model's training shards are not under "
                f"{loaded.cfg.data.shards_dir} or carry no SMPL labels"
            )
    result.table = format_tables(result.rows, notes)
    result.out_dir = Path(out_dir) / loaded.label
    _write(result)
    _log(loaded, result)
    return result


def _defined(value) -> bool:
    """False for an undefined metric (a NaN, or any non-finite float)."""
    return not isinstance(value, float) or math.isfinite(value)


def _write(result: EvalResult) -> None:
    """table.md and table.csv, each written whole (temporary file, then renamed); an
    undefined metric is an empty CSV cell."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "table.md", result.table + "\n")
    with atomic_path(out / "table.csv") as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ROW_FIELDS, restval="")
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if _defined(v)} for r in result.rows)


def metric_key(benchmark: str, protocol: str, subset: str, metric: str) -> str:
    """The MLflow key ``instancehmr eval`` logs a value under."""
    return f"eval/{benchmark}/{protocol}/{subset.replace(':', '_')}/{metric}"


def logged_value(metric: str, value: float) -> float:
    """A table value as logged: recall and AP in percent, as the tables print them."""
    return 100 * value if metric in PERCENT else value


def _evaluation_run(client, experiment_id: str, of_run: str | None, bench: str, label: str) -> str:
    """The run holding a benchmark's evaluation of a model: nested under the model's run (one
    per benchmark, found again when evaluated again), or for a bare checkpoint a new run."""
    if of_run is not None:
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{EVAL_OF_TAG}` = '{of_run}' and tags.`{BENCHMARK_TAG}` = '{bench}'",
            max_results=1,
        )
        if found:
            return found[0].info.run_id
    tags = {ROLE_TAG: EVAL_ROLE, BENCHMARK_TAG: bench, "model": label,
            NOTE_TAG: f"Evaluation of {label} on {bench} (`instancehmr eval`); errors in mm, "
                      "recall and AP in percent."}  # fmt: skip
    if of_run is not None:
        tags.update({PARENT_TAG: of_run, EVAL_OF_TAG: of_run})
    return client.create_run(experiment_id, run_name=f"eval {bench}", tags=tags).info.run_id


def _log(loaded: LoadedModel, result: EvalResult) -> None:
    """Each benchmark's metrics and the tables to an evaluation run of its own, nested under the
    model's run (so that they do not bury its training metrics; a bare checkpoint's go to the
    experiment ``<name>-eval``); through the registry, the headline numbers also tag the model
    version. Recall and AP are logged in percent, as the tables print them."""
    import mlflow
    from mlflow.tracking import MlflowClient

    use_tracking_uri(loaded.cfg)
    client = MlflowClient()
    if loaded.run_id is None:
        experiment_id = mlflow.set_experiment(f"{loaded.cfg.name}-eval").experiment_id
    else:
        experiment_id = client.get_run(loaded.run_id).info.experiment_id
    for bench in sorted({r["benchmark"] for r in result.rows}):
        rows = [r for r in result.rows if r["benchmark"] == bench]
        run_id = _evaluation_run(client, experiment_id, loaded.run_id, bench, loaded.label)
        metrics = {
            metric_key(r["benchmark"], r["protocol"], r["subset"], m): logged_value(m, float(r[m]))
            for r in rows
            for m in ROW_FIELDS[3:]
            if m in r and _defined(r[m])
        }
        mlflow.log_metrics(metrics, run_id=run_id)
        for name in ("table.md", "table.csv"):
            mlflow.log_artifact(str(result.out_dir / name), artifact_path="eval", run_id=run_id)
        if result.unavailable:
            mlflow.log_text(
                json.dumps(result.unavailable, indent=2), "eval/unavailable.json", run_id
            )
        client.set_terminated(run_id, "FINISHED")
    if loaded.version is not None:
        for r in result.rows:
            if r["subset"] == "all":
                for m in ("mpjpe", "ap"):
                    if m in r and _defined(r[m]):
                        key = metric_key(r["benchmark"], r["protocol"], r["subset"], m)
                        value = logged_value(m, float(r[m]))
                        client.set_model_version_tag(*loaded.version, key, f"{value:.2f}")
