"""``instancehmr data inspect``: manifest statistics and a contact sheet of random samples.

The sheet draws each person's keypoints coloured by visibility code, the box and the body center
(the point the network reads a person's parameters at) over the decoded image.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq

from instancehmr.data.image import decode_image
from instancehmr.data.prepare import MANIFEST
from instancehmr.data.schema import (
    LABELLED_CODES,
    VIS_OCCLUDED,
    VIS_OCCLUDED_BY_PERSON,
    VIS_OUT_OF_FRAME,
    VIS_SELF_OCCLUDED,
    VIS_VISIBLE,
    persons_from_row,
)
from instancehmr.data.targets import body_center

#: BGR colour per visibility code on the contact sheet.
VIS_COLOURS = {
    VIS_VISIBLE: (80, 220, 80),
    VIS_OCCLUDED: (0, 200, 255),
    VIS_OCCLUDED_BY_PERSON: (40, 40, 255),
    VIS_SELF_OCCLUDED: (255, 160, 0),
    VIS_OUT_OF_FRAME: (160, 160, 160),
}


def find_manifests(path: str | Path) -> list[Path]:
    """Corpus folders under ``path`` (itself or its children) that hold a manifest."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return [path]
    found = sorted(p.parent for p in path.glob(f"*/{MANIFEST}"))
    if not found:
        raise FileNotFoundError(
            f"{path}: no {MANIFEST} here or in its sub-folders; run `instancehmr data prepare` first"
        )
    return found


def summary(path: str | Path) -> str:
    """A table of images, persons, failures and label coverage per corpus and split."""
    lines = [
        f"{'corpus/split':28} {'images':>8} {'persons':>8} {'failed':>7}  coverage (share of persons)"
    ]
    for corpus_dir in find_manifests(path):
        m = json.loads((corpus_dir / MANIFEST).read_text())
        lines.append(
            f"{m['corpus']} ({m['format']} code {m['code_version']}, schema v{m['schema_version']}, "
            f"hash {m['content_hash']})"
        )
        for split, s in m["splits"].items():
            cov = " ".join(f"{k}={v:.0%}" for k, v in s["label_coverage"].items() if v)
            lines.append(f"  {split:26} {s['images']:8d} {s['persons']:8d} {s['failed']:7d}  {cov}")
    return "\n".join(lines)


def _draw(row: dict, tile: int) -> np.ndarray:
    image = cv2.cvtColor(decode_image(row["image"]), cv2.COLOR_RGB2BGR)
    scale = tile / max(image.shape[:2])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((tile, tile, 3), np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    for person in persons_from_row(row):
        labelled = np.isin(person.keypoints_2d_vis, LABELLED_CODES)
        x0, y0, x1, y1 = (person.box * scale).astype(int)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (200, 200, 200), 1)
        for point, code in zip(person.keypoints_2d * scale, person.keypoints_2d_vis, strict=True):
            if code in VIS_COLOURS:
                cv2.circle(
                    canvas, tuple(int(v) for v in point), 2, VIS_COLOURS[code], -1, cv2.LINE_AA
                )
        center = body_center(person.keypoints_2d, labelled, person.box) * scale
        cv2.drawMarker(
            canvas, tuple(int(v) for v in center), (255, 255, 255), cv2.MARKER_CROSS, 10, 2
        )
    cv2.putText(
        canvas,
        row["sample_id"][-28:],
        (4, tile - 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.4,
        (255, 255, 255),
        1,
    )
    return canvas


def _random_rows(path: str | Path, count: int, seed: int, split: str | None) -> list[dict]:
    """``count`` random records (at most all) of the shards under ``path`` (of ``split``
    only, when given)."""
    files = sorted(
        f for d in find_manifests(path) for f in d.glob(f"{split or '*'}/part-*.parquet")
    )
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    rng = np.random.default_rng(seed)
    flat = [(f, i) for f, n in zip(files, sizes, strict=True) for i in range(n)]
    if not flat:
        where = f" of split '{split}'" if split else ""
        raise FileNotFoundError(f"{path}: the shards{where} hold no images")
    picks = rng.choice(len(flat), size=min(count, len(flat)), replace=False)
    rows = []
    for file, group in _group_by_file([flat[i] for i in picks]):
        table = pq.read_table(file)
        rows += [table.slice(i, 1).to_pylist()[0] for i in group]
    return rows


def contact_sheet(
    path: str | Path, out_png: str | Path, count: int = 16, split: str | None = None,
    tile: int = 320, seed: int = 0,
) -> Path:  # fmt: skip
    """Draw ``count`` random samples from every shard under ``path`` (of ``split`` only, when
    given) into a grid PNG."""
    tiles = [_draw(row, tile) for row in _random_rows(path, count, seed, split)]
    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / cols))
    sheet = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = t
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), sheet)
    return out_png


def export_images(
    path: str | Path, out_dir: str | Path, count: int = 16, split: str | None = None, seed: int = 0
) -> Path:
    """Write the encoded images of ``count`` random samples of the shards under ``path`` (of
    ``split`` only, when given) to
    ``out_dir`` as files (``<corpus id>.jpg`` or ``.png``, as stored), e.g. to try
    ``instancehmr predict`` on."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for row in _random_rows(path, count, seed, split):
        suffix = ".png" if row["image"][:4] == b"\x89PNG" else ".jpg"
        name = str(row["sample_id"]).replace("/", "_")
        (out / f"{name}{suffix}").write_bytes(row["image"])
    return out


def _group_by_file(picks: list[tuple[Path, int]]) -> list[tuple[Path, list[int]]]:
    groups: dict[Path, list[int]] = {}
    for file, i in picks:
        groups.setdefault(file, []).append(i)
    return list(groups.items())
