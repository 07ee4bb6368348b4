"""The training pipeline: shards of several corpora -> mixed, augmented batches with targets.

``read_corpus`` reads one corpus split's Parquet shards; ``training_dataset`` mixes the corpora
of ``data.mix`` by weight with Ray Data's ``Dataset.mix`` and maps every row through
:func:`make_sample` (decode, augment, targets), in parallel Ray Data tasks; Ray Train workers
stream the result through ``get_dataset_shard(...).iter_torch_batches``. The same code runs on
a local Ray and on a cluster.

A sample holds the batch layout of :mod:`instancehmr.losses.objective`, padded to
``data.max_people`` people, plus ``images`` (S, S, 3) uint8 RGB.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from instancehmr.body.joint_sets import NUM_CANONICAL, smpl24_from_canonical
from instancehmr.data.augment import apply_augmentation, identity_augmentation, sample_augmentation
from instancehmr.data.cards import Card, load_card
from instancehmr.data.image import decode_image
from instancehmr.data.schema import GENDERS, LABELLED_CODES, VIS_OUT_OF_FRAME, persons_from_row
from instancehmr.data.targets import body_center, center_heatmap, joint_heatmaps
from instancehmr.geometry import in_frame, normalized_to_pixels, pixels_to_normalized

# Imported inside the functions that use them, to keep this module light: Ray, pyarrow, OmegaConf.

NUM_HEATMAP_JOINTS = 24
SAMPLES_PER_TASK = 16  # rows decoded, augmented and targeted per Ray Data task
ROWS_PER_BLOCK = 64  # rows per Ray Data block of records: the unit the corpus mix interleaves
#: Training batches a worker keeps in its local shuffle buffer (blocks arrive in file order).
SHUFFLE_BUFFER_BATCHES = 4
#: Columns a sample carries besides the image; shapes for N people (see losses/objective.py).
TARGET_COLUMNS = (
    "center_heatmap", "joint_heatmap", "joint_heatmap_mask", "person_mask", "centers",
    "keypoints_2d", "keypoints_2d_mask", "keypoints_3d", "keypoints_3d_mask", "pose",
    "pose_mask", "betas", "betas_mask", "occlusion", "gender",
)  # fmt: skip


def shard_dir(shards_dir: str | Path, card: Card, split: str) -> Path:
    """Where ``instancehmr data prepare`` wrote a corpus split's shards."""
    return Path(shards_dir) / card.name / split


def read_corpus(shards_dir: str | Path, card: Card, split: str, shuffle_files: bool = False):
    """One corpus split as a Ray Dataset of image records in blocks of ``ROWS_PER_BLOCK`` rows;
    a clear error if not prepared. ``shuffle_files`` reads the shards in a fresh random order on
    every pass (streaming, unlike a block shuffle that waits for the whole corpus)."""
    import ray.data

    path = shard_dir(shards_dir, card, split)
    files = sorted(path.glob("part-*.parquet"))
    if not files:
        raise FileNotFoundError(
            f"{path}: no shards for {card.name}/{split}; run `instancehmr data prepare {card.path}`"
        )
    ds = ray.data.read_parquet([str(f) for f in files], shuffle="files" if shuffle_files else None)
    # The Parquet reader coalesces a whole corpus into a few large blocks; small blocks let the
    # mix interleave corpora finely and every data CPU make samples in parallel.
    return ds.repartition(target_num_rows_per_block=ROWS_PER_BLOCK)


def mix_corpora(datasets: list, weights: list[float]):
    """Interleave corpora block by block so that row shares follow ``weights`` (normalised);
    the mix stops when the corpus that runs out first (relative to its weight) is exhausted,
    so the shares hold over the whole epoch and at every point of it."""
    from ray.data import MixStoppingCondition

    if len(datasets) == 1:
        return datasets[0]
    return datasets[0].mix(
        *datasets[1:],
        weights=list(weights),
        stopping_condition=MixStoppingCondition.STOP_ON_SHORTEST,
    )


def mix_weights(cfg) -> list[tuple[Card, float]]:
    """(card, weight) of every corpus in ``data.mix``; a null weight takes the card's default."""
    out = []
    for entry in cfg.data.mix:
        card = load_card(entry.card)
        out.append((card, float(entry.weight if entry.weight is not None else card.mix_weight)))
    return out


def steps_per_epoch(cfg) -> int:
    """Optimizer steps per epoch: the mixed stream's length (it stops with the corpus that runs
    out first relative to its weight) over the global batch."""
    import pyarrow.parquet as pq

    corpora = mix_weights(cfg)
    total = sum(w for _, w in corpora)
    rows = []
    for card, weight in corpora:
        files = shard_dir(cfg.data.shards_dir, card, "train").glob("part-*.parquet")
        rows.append(sum(pq.ParquetFile(f).metadata.num_rows for f in files) / (weight / total))
    return max(1, int(min(rows)) // cfg.train.batch_size)


def make_sample(
    row: dict[str, Any],
    input_size: int,
    max_people: int,
    augment_cfg=None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """One image record -> network input and targets.

    With ``augment_cfg`` (the ``data.augment`` section) a random augmentation is applied,
    else the image is letterboxed as at evaluation. People whose body center leaves the
    input image are not targets; people beyond ``max_people`` are dropped from the targets
    and counted in ``people_dropped``.
    """
    image = decode_image(row["image"])
    h, w = image.shape[:2]
    if augment_cfg is None:
        aug = identity_augmentation(h, w)
    else:
        aug = sample_augmentation(rng or np.random.default_rng(), h, w, augment_cfg)
    image, persons = apply_augmentation(image, persons_from_row(row), aug, input_size)
    map_size = input_size // 8
    n = max_people
    out = _empty_targets(n, map_size)
    out["images"] = image
    kept = []
    for person in persons:
        labelled = np.isin(person.keypoints_2d_vis, LABELLED_CODES)
        center = body_center(person.keypoints_2d, labelled, person.box)
        if not in_frame(center, input_size, input_size):
            continue
        kept.append((person, labelled, center))
    out["people_dropped"] = np.int32(max(0, len(kept) - n))
    kept = kept[:n]
    scale = map_size / input_size
    labelled_any = np.zeros(NUM_CANONICAL, bool)
    for i, (person, labelled, center) in enumerate(kept):
        visible = labelled & (person.keypoints_2d_vis != VIS_OUT_OF_FRAME)
        labelled_any |= labelled | (person.keypoints_2d_vis == VIS_OUT_OF_FRAME)
        out["person_mask"][i] = True
        out["centers"][i] = (center + 0.5) * scale - 0.5
        out["keypoints_2d"][i] = pixels_to_normalized(person.keypoints_2d, input_size)
        out["keypoints_2d_mask"][i] = visible
        if person.keypoints_3d is not None:
            out["keypoints_3d"][i] = person.keypoints_3d
            out["keypoints_3d_mask"][i] = person.keypoints_3d_valid
        if person.smpl_pose is not None:
            out["pose"][i] = person.smpl_pose
            out["pose_mask"][i] = True
        if person.smpl_source == "gt":
            out["betas"][i] = person.smpl_betas
            out["betas_mask"][i] = True
        if person.occlusion is not None:
            out["occlusion"][i] = person.occlusion
        out["gender"][i] = GENDERS.index(person.gender or "neutral")
    m = out["person_mask"]
    box_wh = np.array([(p.box[2:] - p.box[:2]) * 2 / input_size for p, _, _ in kept]).reshape(-1, 2)
    out["center_heatmap"] = center_heatmap(out["centers"][m], box_wh, map_size)
    joints_map = normalized_to_pixels(out["keypoints_2d"][m], map_size)
    smpl24, visible24 = smpl24_from_canonical(joints_map, out["keypoints_2d_mask"][m])
    out["joint_heatmap"] = joint_heatmaps(smpl24, visible24, map_size)
    channel_labelled = smpl24_from_canonical(np.zeros((NUM_CANONICAL, 1)), labelled_any)[1]
    out["joint_heatmap_mask"] = channel_labelled if kept else np.ones(NUM_HEATMAP_JOINTS, bool)
    return out


def _empty_targets(n: int, map_size: int) -> dict[str, np.ndarray]:
    j = NUM_CANONICAL
    return {
        "person_mask": np.zeros(n, bool),
        "centers": np.zeros((n, 2), np.float32),
        "keypoints_2d": np.zeros((n, j, 2), np.float32),
        "keypoints_2d_mask": np.zeros((n, j), bool),
        "keypoints_3d": np.zeros((n, j, 3), np.float32),
        "keypoints_3d_mask": np.zeros((n, j), bool),
        "pose": np.zeros((n, 72), np.float32),
        "pose_mask": np.zeros(n, bool),
        "betas": np.zeros((n, 10), np.float32),
        "betas_mask": np.zeros(n, bool),
        "occlusion": np.full(n, np.nan, np.float32),
        "gender": np.zeros(n, np.int8),  # index into schema.GENDERS; unknown = neutral
    }


def make_batch(
    batch, input_size: int, max_people: int, augment: dict | None
) -> dict[str, np.ndarray]:
    """Ray Data task body: an Arrow batch of records -> stacked samples (fresh randomness)."""
    augment_cfg = None if augment is None else SimpleNamespace(**augment)
    rng = np.random.default_rng()
    samples = [
        make_sample(row, input_size, max_people, augment_cfg, rng) for row in batch.to_pylist()
    ]
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def validation_samples(cfg, count: int) -> dict[str, np.ndarray]:
    """The first ``count`` records of the validation split (its shards in name order) as
    letterboxed samples: the same images for every run that reads the same shards."""
    import pyarrow.parquet as pq

    folder = shard_dir(cfg.data.shards_dir, load_card(cfg.data.val_card), cfg.data.val_split)
    files = sorted(folder.glob("part-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{folder}: no validation shards")
    records = next(pq.ParquetFile(files[0]).iter_batches(batch_size=count))
    return make_batch(records, cfg.model.input_size, cfg.data.max_people, None)


def training_dataset(cfg, split: str = "train", augment: bool = True):
    """The mixed, augmented training stream of ``cfg`` (a Ray Dataset of samples).

    Shards are read in a fresh random order each pass; samples are made by stateless Ray tasks
    on at most ``scaling.data_cpus`` CPUs at a time, so they never hold CPUs that reads or
    training workers wait for. Consumers shuffle locally over ``SHUFFLE_BUFFER_BATCHES``.
    """
    from omegaconf import OmegaConf

    corpora = mix_weights(cfg)
    datasets = [
        read_corpus(cfg.data.shards_dir, card, split, shuffle_files=True) for card, _ in corpora
    ]
    mixed = mix_corpora(datasets, [w for _, w in corpora])
    augment_cfg = OmegaConf.to_container(cfg.data.augment) if augment else None
    return _map_samples(mixed, cfg, augment_cfg)


def validation_dataset(cfg):
    """The validation split of ``data.val_card``, letterboxed, in file order."""
    card = load_card(cfg.data.val_card)
    return _map_samples(read_corpus(cfg.data.shards_dir, card, cfg.data.val_split), cfg, None)


def _map_samples(ds, cfg, augment: dict | None):
    from ray.data import TaskPoolStrategy

    return ds.map_batches(
        make_batch,
        batch_size=SAMPLES_PER_TASK,
        batch_format="pyarrow",
        fn_kwargs={
            "input_size": cfg.model.input_size,
            "max_people": cfg.data.max_people,
            "augment": augment,
        },
        num_cpus=1,
        compute=TaskPoolStrategy(size=max(1, int(cfg.scaling.data_cpus))),
    )
