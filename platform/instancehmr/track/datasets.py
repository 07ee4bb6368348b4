"""The data a run read, as MLflow dataset inputs: each corpus split of the training mix
(context ``training``, with its mix weight) and the validation split (context ``validation``),
named ``<corpus>/<split>``, with the shards' content hash as digest, the shard folder as
source and the split's image and person counts as tags. The runs table's Datasets column and
the run page's lineage show them; two runs that read the same shards show the same digest."""

from __future__ import annotations

import json
import warnings

from omegaconf import DictConfig

from instancehmr.data.cards import load_card
from instancehmr.data.pipeline import mix_weights, shard_dir

# Imported inside the function that uses it, to keep this module light: MLflow.


def dataset_inputs(cfg: DictConfig) -> list:
    """MLflow ``DatasetInput``s of the run's training mix and validation split (shards that are
    not prepared yet are left out)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    uses = [(card, "train", "training", weight) for card, weight in mix_weights(cfg)]
    uses.append((load_card(cfg.data.val_card), cfg.data.val_split, "validation", None))
    inputs = []
    for card, split, context, weight in uses:
        folder = shard_dir(cfg.data.shards_dir, card, split)
        manifest_path = folder.parent / "manifest.json"
        if not manifest_path.is_file():
            continue
        manifest = json.loads(manifest_path.read_text())
        counts = manifest.get("splits", {}).get(split, {})
        with warnings.catch_warnings():  # MLflow registers two local sources of one name
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(folder.resolve().as_uri())
        dataset = MetaDataset(
            source,
            name=f"{manifest['corpus']}/{split}",
            digest=str(manifest["content_hash"])[:36],
        )
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)]
        tags += [InputTag(k, str(counts[k])) for k in ("images", "persons") if k in counts]
        if weight is not None:
            tags.append(InputTag("mix_weight", f"{weight:g}"))
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags))
    return inputs


def log_datasets(run_id: str, cfg: DictConfig) -> None:
    """Log :func:`dataset_inputs` to the run."""
    from mlflow.tracking import MlflowClient

    inputs = dataset_inputs(cfg)
    if inputs:
        MlflowClient().log_inputs(run_id, datasets=inputs)
