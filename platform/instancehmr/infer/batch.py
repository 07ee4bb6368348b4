"""``instancehmr predict --ray``: images read with Ray Data and predicted by a pool of model
actors (GPU actors when the cluster has GPUs), written as Parquet shards, so that a folder of
millions of frames on shared storage runs across the cluster.

Each output row is one image: ``image`` (its path), ``record`` (the JSON line the local path
writes to ``predictions.jsonl``, :func:`instancehmr.infer.outputs.image_record`), ``people``
(how many) and ``error`` (why the image gave no record; empty otherwise). The model's weights
go to the actors once through Ray's object store; the body model is read on each node as the
config says (the synthetic body is written where missing; a real SMPL file must be on every
node, as for training). Videos, meshes and overlays are the local path's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from instancehmr.body.smpl import BodyModel
from instancehmr.config import config_from_yaml
from instancehmr.data.image import PHOTO_SUFFIXES, decode_photo
from instancehmr.infer.outputs import image_record
from instancehmr.model.checkpoint import TrainingState, model_from_state
from instancehmr.model.predictor import Predictor

# Imported inside the functions that use them, to keep this module light: Ray, pyarrow, torch.


class PredictActor:
    """A Ray Data actor holding one model: ``state`` (an object reference to the checkpoint's
    TrainingState) and its resolved ``config`` YAML; cameras at ``fov`` degrees; ``vertices``
    into the records."""

    def __init__(self, state, config: str, fov: float, vertices: bool) -> None:
        import ray
        import torch

        state = ray.get(state)  # Ray Data passes constructor arguments on unresolved
        cfg = config_from_yaml(config, "predict actor")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = model_from_state(state, cfg, "predict actor")
        self.predictor = Predictor(model, BodyModel.from_config(cfg.body), cfg, device, fov)
        self.vertices = vertices

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images, rows, errors = [], [], [""] * len(batch["path"])
        for i, data in enumerate(batch["bytes"]):
            try:
                images.append(decode_photo(data))
                rows.append(i)
            except ValueError as err:
                errors[i] = str(err)
        records = [""] * len(errors)
        people = np.zeros(len(errors), np.int64)
        for i, found in zip(rows, self.predictor(images), strict=True):
            records[i] = json.dumps(image_record(str(batch["path"][i]), None, found, self.vertices))
            people[i] = len(found)
        return {"image": batch["path"], "record": np.array(records, dtype=object),
                "people": people, "error": np.array(errors, dtype=object)}  # fmt: skip


def actor_pool(workers: int | None) -> tuple[int, float]:
    """(actors, GPUs per actor): one actor per GPU when the cluster has GPUs, else one per two
    CPUs (at least one); ``workers`` sets the number of actors."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    if workers is None:
        workers = gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // 2)
    return workers, (1.0 if gpus else 0.0)


def predict_on_ray(loaded_state: TrainingState, config: str, paths: list[str], out_dir: Path,
                   fov: float, vertices: bool, batch_size: int, workers: int | None) -> dict:  # fmt: skip
    """Predict the image ``paths`` (files, folders or URIs Ray Data reads) with a pool of
    actors and write Parquet shards to ``out_dir/predictions``; returns the counts (images,
    people, failed with the first reasons, seconds)."""
    import pyarrow.parquet as pq
    import ray

    from instancehmr.runtime import init_ray

    init_ray()
    started = time.perf_counter()
    actors, gpus = actor_pool(workers)
    extensions = [s.lstrip(".") for s in PHOTO_SUFFIXES]
    ds = ray.data.read_binary_files(paths, include_paths=True, file_extensions=extensions)
    state = ray.put(loaded_state)
    shards = Path(out_dir) / "predictions"
    ds.map_batches(
        PredictActor, fn_constructor_args=(state, config, fov, vertices), batch_size=batch_size,
        concurrency=actors, num_gpus=gpus, batch_format="numpy",
    ).write_parquet(str(shards))  # fmt: skip
    table = pq.read_table(shards, columns=["image", "people", "error"])
    errors = [(i, e) for i, e in zip(table["image"].to_pylist(), table["error"].to_pylist(),
                                     strict=True) if e]  # fmt: skip
    return {
        "images": table.num_rows - len(errors),
        "people": int(sum(table["people"].to_pylist())),
        "failed": [f"{image}: {error}" for image, error in errors],
        "seconds": time.perf_counter() - started,
        "actors": actors,
    }
