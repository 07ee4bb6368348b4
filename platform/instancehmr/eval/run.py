"""``instancehmr eval MODEL BENCHMARK...``: load a model, run benchmarks under both protocols,
print and save the table, log the metrics to MLflow.

MODEL is a checkpoint (folder or ``training_state.pt``), an MLflow run id, or a registry URI
``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``; the config travels inside the checkpoint.
"""

from __future__ import annotations

import csv
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from instancehmr.config import config_from_yaml
from instancehmr.eval.protocols import PROTOCOLS, evaluate_batch, merge
from instancehmr.eval.validation import to_model_input
from instancehmr.train.checkpoint import STATE_FILE, load_model_state, load_training_state

#: Benchmarks this version evaluates: name -> (card, split).
BENCHMARKS = {"synthetic": ("datasets/synthetic.yaml", "test")}
METRICS = ("people", "recall", "mpjpe", "pa_mpjpe", "mpvpe")


@dataclass
class LoadedModel:
    model: torch.nn.Module
    cfg: DictConfig
    run_id: str | None
    label: str


def _from_state_dir(directory: Path, source: str, run_id: str | None) -> LoadedModel:
    from instancehmr.model import build_model

    state = load_training_state(directory)
    cfg = config_from_yaml(state["config"], source)
    model = build_model(cfg)
    load_model_state(model, state, source)
    return LoadedModel(model.eval(), cfg, run_id, re.sub(r"[^A-Za-z0-9_.@-]+", "_", source))


def load_model(reference: str) -> LoadedModel:
    """The model and config behind ``reference`` (see module docstring); clear errors."""
    path = Path(reference)
    if path.exists():
        return _from_state_dir(path.parent if path.is_file() else path, reference, None)
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if reference.startswith("models:/"):
        name, _, selector = reference[len("models:/") :].partition("@")
        try:
            if selector:
                version = client.get_model_version_by_alias(name, selector)
            else:
                name, _, number = name.partition("/")
                version = client.get_model_version(name, number)
        except MlflowException:
            aliases = (
                sorted(client.get_registered_model(name).aliases) if _exists(client, name) else []
            )
            raise ValueError(
                f"{reference}: no such model version; aliases of '{name}': {aliases}"
            ) from None
        run_id = version.run_id
    elif re.fullmatch(r"[0-9a-f]{32}", reference):
        run_id = reference
    else:
        raise FileNotFoundError(
            f"{reference}: not a checkpoint path, an MLflow run id or a models:/ URI"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"checkpoint/{STATE_FILE}", dst_path=tmp
            )
        except MlflowException:
            raise FileNotFoundError(
                f"{reference}: run {run_id} has no checkpoint/{STATE_FILE} artifact"
            ) from None
        return _from_state_dir(Path(local).parent, reference, run_id)


def _exists(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException:
        return False


def evaluate_benchmark(loaded: LoadedModel, benchmark: str, protocols=PROTOCOLS) -> list[dict]:
    """Rows {benchmark, protocol, subset, people, recall, mpjpe, pa_mpjpe, mpvpe}."""
    import pyarrow.parquet as pq

    from instancehmr.body.smpl import BodyModel
    from instancehmr.data.cards import load_card
    from instancehmr.data.pipeline import make_batch, shard_dir

    card_path, split = BENCHMARKS[benchmark]
    cfg = loaded.cfg
    val = load_card(cfg.data.val_card)
    if benchmark == "synthetic" and val.format == "synthetic_crowd":
        card, card_path = val, str(val.path)  # the model's own rendering of the embedded corpus
    else:
        card = load_card(card_path)
    files = sorted(shard_dir(cfg.data.shards_dir, card, split).glob("part-*.parquet"))
    if not files:
        raise FileNotFoundError(
            f"{benchmark}: no shards under {shard_dir(cfg.data.shards_dir, card, split)}; "
            f"run `instancehmr data prepare {card_path}`"
        )
    body = BodyModel.from_config(cfg.body)
    parts = {p: [] for p in protocols}
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=16):
            samples = make_batch(batch, cfg.model.input_size, cfg.data.max_people, None)
            tensors = {k: torch.as_tensor(v) for k, v in samples.items()}
            with torch.no_grad():
                outputs = loaded.model(to_model_input(tensors["images"]))
            for p in protocols:
                parts[p].append(
                    evaluate_batch(
                        outputs,
                        tensors,
                        body,
                        cfg.model.input_size,
                        cfg.model.pose_representation,
                        p,
                        cfg.decode,
                    )
                )
    rows = []
    for p, batches in parts.items():
        errors = merge(batches)
        rows.append({"benchmark": benchmark, "protocol": p, "subset": "all", **errors.summary()})
        for level, summary in errors.by_occlusion().items():
            rows.append(
                {"benchmark": benchmark, "protocol": p, "subset": f"occlusion:{level}", **summary}
            )
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table in the layout of the paper's tables (errors in mm)."""
    head = "| benchmark | protocol | subset | people | recall | MPJPE | PA-MPJPE | MPVPE |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['benchmark']} | {r['protocol']} | {r['subset']} | {r['people']:.0f} | {r['recall']:.3f} "
            f"| {r['mpjpe']:.1f} | {r['pa_mpjpe']:.1f} | {r['mpvpe']:.1f} |"
        )
    return "\n".join(lines)


def evaluate(
    reference: str, benchmarks: list[str], protocols=PROTOCOLS, out_dir: str | Path = "eval_results"
) -> str:
    """Evaluate, write ``table.md`` and ``table.csv``, log to MLflow; returns the table."""
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise ValueError(
            f"unknown benchmarks {unknown}; this version evaluates {sorted(BENCHMARKS)}"
        )
    loaded = load_model(reference)
    rows = [row for b in benchmarks for row in evaluate_benchmark(loaded, b, protocols)]
    out = Path(out_dir) / loaded.label
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(rows)
    (out / "table.md").write_text(table + "\n")
    with (out / "table.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["benchmark", "protocol", "subset", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    _log(loaded, rows, out)
    return table


def _log(loaded: LoadedModel, rows: list[dict], out: Path) -> None:
    import math

    import mlflow

    from instancehmr.track.runs import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(loaded.cfg))
    metrics = {
        f"eval/{r['benchmark']}/{r['protocol']}/{r['subset'].replace(':', '_')}/{m}": float(r[m])
        for r in rows
        for m in METRICS
        if math.isfinite(float(r[m]))
    }
    if loaded.run_id is None:
        mlflow.set_experiment(f"{loaded.cfg.name}-eval")
        with mlflow.start_run(run_name=f"eval {loaded.label}", tags={"model": loaded.label}) as run:
            run_id = run.info.run_id
    else:
        run_id = loaded.run_id
    mlflow.log_metrics(metrics, run_id=run_id)
    mlflow.log_artifact(str(out / "table.md"), artifact_path="eval", run_id=run_id)
    mlflow.log_artifact(str(out / "table.csv"), artifact_path="eval", run_id=run_id)
