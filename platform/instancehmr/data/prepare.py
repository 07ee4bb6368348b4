"""``instancehmr data prepare``: corpus cards -> Parquet shards plus a manifest, with Ray Data.

Layout: ``OUT/<corpus>/<split>/part-NNNNN.parquet``, ``OUT/<corpus>/manifest.json`` and
``OUT/<corpus>/errors.jsonl`` (one line per sample that could not be converted).

Every card and every split to prepare is checked before any conversion starts (``splits``
chooses some splits of each card; by default all). A split's items are cut into
shards of ``rows_per_shard`` images; each split has a key hashing the converter's format and
code (:mod:`instancehmr.provenance`: its module and everything of this package it imports), the
schema version, the card's fields and the split; each shard's key adds the size and modification
time of the files the split names and the shard's items, so re-running skips shards whose file
exists with the same key, and :func:`ensure_prepared` (``train``, ``eval``) prepares again a split
whose key in the manifest differs.
Images changed in place under unchanged annotation files are not detected: ``force`` converts
everything again. Conversion runs as one Ray Data task per shard, in parallel, with
Ray Data's progress bars. Tasks travel to the workers pickled, so index items keep whatever
they hold (numpy arrays, tuples, paths) exactly. Samples that fail, through a
:class:`ConversionError` or any other exception raised while converting them, are counted in the
manifest and listed in the report with the exception's type and place; the run fails when the
failure rate of the splits prepared passes ``max_error_rate``. Preparing some splits keeps the
other splits that the manifest lists, with their error lines, when the same converter code and
schema version wrote them (shards of other code are left out of the manifest: prepare them
again).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from instancehmr.atomic import atomic_path, write_text_atomically
from instancehmr.data.cards import Card, CardError, load_card
from instancehmr.data.corpora import converter_for
from instancehmr.data.corpora.base import ConversionError
from instancehmr.data.schema import ARROW_SCHEMA, SCHEMA_VERSION, ImageRecord, RecordError, to_table
from instancehmr.runtime import init_ray

# Imported inside the functions that use them, to keep this module light: Ray.

MANIFEST = "manifest.json"
ERRORS = "errors.jsonl"
#: Per-person label coverage reported in the manifest: name -> test on a row's columns.
COVERAGE = ("keypoints_2d", "keypoints_3d", "smpl_gt", "smpl_eft", "occlusion")


class PrepareError(ValueError):
    """Too much bad input: the failure rate passed the threshold; names the report."""


@dataclass(frozen=True)
class ShardTask:
    corpus_dir: str
    card_path: str
    split: str
    index: int
    key: str
    items: list[dict[str, Any]]

    @property
    def file(self) -> Path:
        return Path(self.corpus_dir) / self.split / f"part-{self.index:05d}.parquet"


def _encode(value: Any) -> Any:
    """JSON stand-in for the non-JSON values index items hold; arrays by their full content (a
    ``str()`` of a large array elides its middle, so two different arrays would look alike)."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        content = hashlib.sha256(data.tobytes()).hexdigest() if data.dtype != object else None
        if content is None:  # object arrays: their items, one by one
            return {"ndarray": str(data.dtype), "shape": data.shape, "items": data.tolist()}
        return {"ndarray": str(data.dtype), "shape": data.shape, "sha256": content}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return {"bytes": hashlib.sha256(value).hexdigest()}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot fingerprint a {type(value).__name__} in a shard task")


def _digest(*parts: Any) -> str:
    """A short hash of ``parts`` that changes whenever any value in them changes."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=_encode).encode())
    return h.hexdigest()[:20]


def _describe(item: dict[str, Any], limit: int = 300) -> str:
    """An item as the error report shows it: JSON, arrays by shape and dtype, cut at ``limit``."""

    def short(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return f"array{value.shape} {value.dtype}"
        return value.item() if isinstance(value, np.generic) else str(value)

    return json.dumps(item, default=short)[:limit]


def _failure(err: Exception) -> str:
    """The report's text for a sample that failed: a ConversionError or RecordError says what
    is wrong itself; any other exception also gets its type and where it was raised."""
    if isinstance(err, ConversionError | RecordError):
        return str(err)
    frame = traceback.extract_tb(err.__traceback__)[-1]
    return f"{type(err).__name__}: {err} (at {Path(frame.filename).name}:{frame.lineno})"


def _card_fingerprint(card: Card) -> dict[str, Any]:
    return yaml.safe_load(card.path.read_text())


def _split_files_stat(card: Card, split: str) -> list:
    stats = []
    for key in sorted(card.splits[split]):
        path = card.file(split, key)
        st = path.stat()
        stats.append([key, st.st_size if path.is_file() else None, st.st_mtime_ns])
    return stats


def chosen_splits(card: Card, splits: list[str] | None) -> list[str]:
    """``splits`` (every split of ``card`` when None), once each; CardError naming the card for
    a split it does not have."""
    if splits is None:
        return list(card.splits)
    unknown = [s for s in splits if s not in card.splits]
    if unknown:
        raise card.fail("splits", f"no split {unknown}; the card has {sorted(card.splits)}")
    return list(dict.fromkeys(splits))


def split_key(card: Card, split: str) -> str:
    """Key of what the card and the code say a split's shards hold: converter format and code,
    schema version, the card's fields and the split. Cheap: only the card is read. (A shard's
    key adds the split's files, by size and modification time, and its items.)"""
    converter = converter_for(card)
    fields = _card_fingerprint(card)
    return _digest(converter.format, converter.code_version(), SCHEMA_VERSION, fields, split)


def plan_shards(
    card: Card, out_dir: Path, rows_per_shard: int, splits: list[str] | None = None
) -> dict[str, list[ShardTask]]:
    """Check ``splits`` of ``card`` (all when None) and cut their items into shard tasks (no
    conversion yet); CardError naming the card and field."""
    converter = converter_for(card)
    splits = chosen_splits(card, splits)
    for split in splits:
        converter.check(card, split)
    corpus_dir = out_dir / card.name
    plan = {}
    for split in splits:
        items = converter.index(card, split)
        key, files = split_key(card, split), _split_files_stat(card, split)
        chunks = [items[i : i + rows_per_shard] for i in range(0, len(items), rows_per_shard)]
        plan[split] = [
            ShardTask(
                corpus_dir=str(corpus_dir),
                card_path=str(card.path),
                split=split,
                index=i,
                key=_digest(key, files, chunk),
                items=chunk,
            )
            for i, chunk in enumerate(chunks)
        ]
    return plan


def _coverage_counts(table) -> dict[str, int]:
    rows = table.select(
        ["keypoints_2d_vis", "keypoints_3d", "smpl_source", "occlusion"]
    ).to_pydict()
    counts = dict.fromkeys(COVERAGE, 0)
    for vis, kp3d, source, occlusion in zip(*rows.values(), strict=True):
        counts["keypoints_2d"] += sum(bool(np.any(np.asarray(v) > 0)) for v in vis)
        counts["keypoints_3d"] += sum(k is not None for k in kp3d)
        counts["smpl_gt"] += sum(s == "gt" for s in source)
        counts["smpl_eft"] += sum(s == "eft" for s in source)
        counts["occlusion"] += sum(o is not None for o in occlusion)
    return counts


def convert_shard(row: dict[str, Any]) -> dict[str, str]:
    """Ray Data task: convert one shard's items (``row["task"]``, a pickled :class:`ShardTask`)
    and write its Parquet file atomically.

    Returns {"result": JSON} with the shard's counts, coverage and per-sample errors. An exception
    while converting one item fails that item only.
    """
    task: ShardTask = pickle.loads(row["task"])
    card = load_card(task.card_path)
    converter = converter_for(card)
    records: list[ImageRecord] = []
    errors: list[dict[str, str]] = []
    for item in task.items:
        try:
            record = converter.convert(card, task.split, item)
            record.check()
            records.append(record)
        except Exception as err:  # one bad sample must not end the job: counted, reported
            errors.append({"split": task.split, "item": _describe(item), "error": _failure(err)})
    table = to_table(records)
    task.file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(task.file) as tmp:
        pq.write_table(table, tmp, row_group_size=64, metadata_collector=None)
    result = {
        "split": task.split,
        "file": str(task.file.relative_to(task.corpus_dir)),
        "key": task.key,
        "images": table.num_rows,
        "persons": int(sum(len(s) for s in table.column("smpl_source").to_pylist())),
        "bytes": task.file.stat().st_size,
        "coverage": _coverage_counts(table),
        "errors": errors,
        "failed": len(errors),
    }
    return {"result": json.dumps(result)}


def _read_manifest(corpus_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((corpus_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _up_to_date(task: ShardTask, old: dict[str, dict]) -> dict | None:
    entry = old.get(f"{task.split}/{task.index}")
    if (
        entry
        and entry["key"] == task.key
        and task.file.is_file()
        and task.file.stat().st_size == entry["bytes"]
    ):
        return entry
    return None


def prepare_corpus(
    card: Card,
    out_dir: Path,
    plan: dict[str, list[ShardTask]],
    max_error_rate: float,
    force: bool = False,
) -> dict[str, Any]:
    """Convert the shards of ``plan`` that are not up to date (all with ``force``); write the
    manifest and the error report, keeping the splits outside ``plan`` that the manifest lists
    (see the module docstring). PrepareError when more than ``max_error_rate`` of the planned
    splits' samples failed. Ray starts only when a shard needs converting."""
    corpus_dir = out_dir / card.name
    old_manifest = _read_manifest(corpus_dir) or {}
    kept = {}
    if _same_writer(old_manifest, card):
        kept = {
            split: entry
            for split, entry in old_manifest["splits"].items()
            if split not in plan and split in card.splits
        }
    old = {
        f"{s['split']}/{i}": s
        for split in old_manifest.get("splits", {}).values()
        for i, s in enumerate(split["shards"])
    }
    tasks = [t for split in plan.values() for t in split]
    done = {} if force else {f"{t.split}/{t.index}": e for t in tasks if (e := _up_to_date(t, old))}
    todo = [t for t in tasks if f"{t.split}/{t.index}" not in done]
    started = time.perf_counter()
    results = list(done.values())
    if todo:
        import ray.data

        init_ray()
        rows = [{"task": pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)} for t in todo]
        ds = ray.data.from_items(rows, override_num_blocks=len(todo))
        results += [json.loads(r["result"]) for r in ds.map(convert_shard, num_cpus=1).take_all()]
    manifest = _manifest(card, plan, results, kept, time.perf_counter() - started, len(todo))
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for split, shards in plan.items():  # drop stale shards left by an earlier, larger plan
        keep = {t.file.name for t in shards}
        for path in (corpus_dir / split).glob("part-*.parquet"):
            if path.name not in keep:
                path.unlink()
    errors = [e for e in _read_errors(corpus_dir) if e.get("split") in kept]
    errors += [e for r in results for e in r.get("errors", [])]
    (corpus_dir / ERRORS).write_text("".join(json.dumps(e) + "\n" for e in errors))
    write_text_atomically(corpus_dir / MANIFEST, json.dumps(manifest, indent=2))
    failed = sum(manifest["splits"][s]["failed"] for s in plan)
    total = sum(manifest["splits"][s]["images"] for s in plan) + failed
    if total and failed / total > max_error_rate:
        first = next(e for e in errors if e["split"] in plan)
        raise PrepareError(
            f"{card.path}: {failed} of {total} samples failed "
            f"({failed / total:.1%} > max_error_rate {max_error_rate:.1%}), the first: "
            f"{first['error']}; all in {corpus_dir / ERRORS}"
        )
    return manifest


def _same_writer(manifest: dict[str, Any], card: Card) -> bool:
    """Whether ``manifest``'s shards were written by the converter code and schema version this
    code writes for ``card``."""
    converter = converter_for(card)
    return (
        manifest.get("format") == converter.format
        and manifest.get("code_version") == converter.code_version()
        and manifest.get("schema_version") == SCHEMA_VERSION
    )


def _read_errors(corpus_dir: Path) -> list[dict[str, str]]:
    try:
        lines = (corpus_dir / ERRORS).read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _manifest(
    card: Card, plan, results: list[dict], kept: dict[str, Any], seconds: float, converted: int
) -> dict[str, Any]:
    """The manifest of the planned splits (from ``results``) and the ``kept`` ones, in the
    card's split order."""
    converter = converter_for(card)
    by_key = {r["key"]: r for r in results}
    splits = dict(kept)
    for split, tasks in plan.items():
        shards = [by_key[t.key] for t in tasks]
        persons = sum(s["persons"] for s in shards)
        splits[split] = {
            "key": split_key(card, split),
            "images": sum(s["images"] for s in shards),
            "persons": persons,
            "failed": sum(s["failed"] for s in shards),
            "label_coverage": {
                k: round(sum(s["coverage"][k] for s in shards) / max(persons, 1), 4)
                for k in COVERAGE
            },
            "shards": [{k: v for k, v in s.items() if k != "errors"} for s in shards],
        }
    splits = {split: splits[split] for split in card.splits if split in splits}
    return {
        "corpus": card.name,
        "card": str(card.path),
        "format": converter.format,
        "code_version": converter.code_version(),
        "schema_version": SCHEMA_VERSION,
        "arrow_schema": ARROW_SCHEMA.to_string(show_schema_metadata=False),
        "content_hash": _digest([s["key"] for split in splits.values() for s in split["shards"]]),
        "images": sum(s["images"] for s in splits.values()),
        "persons": sum(s["persons"] for s in splits.values()),
        "failed": sum(s["failed"] for s in splits.values()),
        "keep_every": card.keep_every,
        "shards_converted": converted,
        "seconds": round(seconds, 2),
        "splits": splits,
    }


def prepare(
    card_paths: list[str | Path],
    out_dir: str | Path,
    rows_per_shard: int = 256,
    max_error_rate: float = 0.01,
    force: bool = False,
    splits: list[str] | None = None,
) -> list[dict]:
    """Prepare ``splits`` of every card (all of each card's when None) and return the manifests;
    the arguments (PrepareError: ``max_error_rate`` outside [0, 1], ``rows_per_shard`` below 1),
    all cards and the files of those splits are checked before any conversion (CardError)."""
    if not 0 <= max_error_rate <= 1:  # NaN fails too
        raise PrepareError(
            f"max_error_rate must lie in [0, 1] (a share of samples), got {max_error_rate}"
        )
    if rows_per_shard < 1:
        raise PrepareError(f"rows_per_shard must be at least 1, got {rows_per_shard}")
    out_dir = Path(out_dir)
    cards = [load_card(p) for p in card_paths]
    plans = [plan_shards(card, out_dir, rows_per_shard, splits) for card in cards]
    return [
        prepare_corpus(card, out_dir, plan, max_error_rate, force)
        for card, plan in zip(cards, plans, strict=True)
    ]


class DataUnavailable(FileNotFoundError):
    """A corpus whose raw files are not where its card points; the message says how to get them."""


def ensure_prepared(card: Card, out_dir: str | Path, splits: list[str]) -> dict:
    """The manifest of ``card``'s shards under ``out_dir`` once ``splits`` have shards made by
    this card and this code: a split without shards, or whose shards another card or other code
    made (its :func:`split_key` differs), is prepared first, and only the splits asked for are
    (the other splits' raw files need not exist; the manifest keeps them). CardError for a split
    the card does not have; DataUnavailable, naming the missing file and quoting the card's
    ``obtain``, when the raw files of a split to prepare are not there."""

    splits = chosen_splits(card, splits)
    manifest = _read_manifest(Path(out_dir) / card.name) or {"splits": {}}
    made = manifest["splits"]
    stale = [s for s in splits if s in made and made[s].get("key") != split_key(card, s)]
    if not stale and all(s in made for s in splits):
        return manifest
    converter = converter_for(card)
    try:
        for split in splits:
            converter.check(card, split)
    except CardError as err:
        why = "no data"
        if stale:
            why = (
                f"its shards of {', '.join(stale)} under {out_dir} were made by another card or "
                "other code (the card's fields, the converter or what it imports changed), and "
                "they cannot be prepared again"
            )
        raise DataUnavailable(f"{card.name}: {why}: {err}. To get it: {card.obtain}") from None
    words = " ".join(f"--split {s}" for s in splits)
    changed = f" (card or code changed since {', '.join(stale)} were made)" if stale else ""
    print(
        f"{card.name}: preparing {', '.join(splits)} under {out_dir}{changed} "
        f"(instancehmr data prepare {card.path} {words})"
    )
    (manifest,) = prepare([card.path], out_dir, splits=splits)
    return manifest
