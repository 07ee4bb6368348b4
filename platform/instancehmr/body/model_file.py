"""Read and validate SMPL model files (``.npz`` or ``.pkl``) and extra joint regressors.

``.npz`` files are read with ``allow_pickle=False``; ``.pkl`` files through the restricted
unpickler of :mod:`instancehmr.body.safe_pickle`, so no pickled code runs. Every problem raises
:class:`BodyModelFileError` naming the file (and the key, where one is at fault).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from instancehmr.body.joint_sets import H36M17, H36M_REGRESSOR_ROWS
from instancehmr.body.safe_pickle import UnsafePickleError, load_pickle

NUM_VERTICES = 6890  # SMPL's mesh
NUM_JOINTS = 24  # SMPL's kinematic joints
NUM_POSE_BASIS = 207  # 23 joints x 9 rotation-matrix entries
MIN_BETAS = 10
REQUIRED_KEYS = (
    "v_template",
    "f",
    "weights",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "kintree_table",
)


class BodyModelFileError(ValueError):
    """A body-model or regressor file that cannot be used; the message names the file and key."""


def _load_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BodyModelFileError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if not zipfile.is_zipfile(path):
            raise BodyModelFileError(f"{path}: unreadable or corrupt .npz file (not a zip archive)")
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BodyModelFileError(f"{path}: unreadable or corrupt .npz file ({exc})") from exc
    if suffix == ".pkl":
        try:
            data = load_pickle(path)
        except UnsafePickleError as exc:
            raise BodyModelFileError(str(exc)) from exc
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
            raise BodyModelFileError(f"{path}: unreadable or corrupt .pkl file ({exc})") from exc
        if not isinstance(data, dict):
            raise BodyModelFileError(
                f"{path}: expected a dict of arrays, got {type(data).__name__}"
            )
        return {str(k): v for k, v in data.items()}
    raise BodyModelFileError(f"{path}: unknown extension '{path.suffix}' (expected .npz or .pkl)")


#: The most values a sparse matrix of a body-model file may hold once dense (a regressor of
#: hundreds of joints over SMPL-X's 10,475 vertices is a few million).
MAX_DENSE_VALUES = 10**8


def _numeric(
    path: Path, key: str, value: Any, expected: tuple | None = None, text: str = ""
) -> np.ndarray:
    """``value`` as a finite numeric array. A sparse matrix's declared shape is checked against
    ``expected`` (see :func:`_check_shape`) and :data:`MAX_DENSE_VALUES` before it is made dense:
    a file cannot ask for terabytes."""
    if scipy.sparse.issparse(value):
        if expected is not None:
            _check_shape(path, key, value.shape, expected, text)
        if int(np.prod(value.shape, dtype=np.float64)) > MAX_DENSE_VALUES:
            raise BodyModelFileError(
                f"{path}: key '{key}' is a sparse matrix declaring shape {value.shape}, more than "
                f"{MAX_DENSE_VALUES:,} values: not a body model's"
            )
        value = value.toarray()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise BodyModelFileError(f"{path}: key '{key}' is not an array ({exc})") from exc
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise BodyModelFileError(f"{path}: key '{key}' has non-numeric dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise BodyModelFileError(f"{path}: key '{key}' contains NaN or infinite values")
    return array


def _check_shape(path: Path, key: str, shape: tuple, expected: tuple, text: str) -> None:
    """``expected`` holds ints or None (any size); ``text`` is the expected shape for the message."""
    ok = len(shape) == len(expected) and all(
        e is None or e == s for e, s in zip(expected, shape, strict=True)
    )
    if not ok:
        raise BodyModelFileError(f"{path}: key '{key}' has shape {tuple(shape)}, expected {text}")


def read_smpl_file(path: str | Path) -> dict[str, np.ndarray]:
    """Validated SMPL arrays: v_template (V, 3), f (F, 3) int64, weights (V, 24),
    shapedirs (V, 3, B>=10), posedirs (V, 3, 207), J_regressor (24, V) dense,
    kintree_table (2, 24) int64 with root parent -1; float arrays are float32.
    """
    path = Path(path)
    raw = _load_mapping(path)
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise BodyModelFileError(
            f"{path}: missing key '{missing[0]}' (an SMPL model file needs {', '.join(REQUIRED_KEYS)})"
        )
    v_template = _numeric(path, "v_template", raw["v_template"], (None, 3), "(V, 3)")
    _check_shape(path, "v_template", v_template.shape, (None, 3), "(V, 3)")
    n = v_template.shape[0]
    per_vertex = {"weights": ((n, NUM_JOINTS), f"({n}, {NUM_JOINTS})"),
                  "J_regressor": ((NUM_JOINTS, n), f"({NUM_JOINTS}, {n})")}  # fmt: skip
    arrays = {"v_template": v_template}
    for key in REQUIRED_KEYS[1:]:
        arrays[key] = _numeric(path, key, raw[key], *per_vertex.get(key, (None, "")))
    _check_shape(path, "weights", arrays["weights"].shape, (n, NUM_JOINTS), f"({n}, {NUM_JOINTS})")
    shapedirs = arrays["shapedirs"]
    _check_shape(path, "shapedirs", shapedirs.shape, (n, 3, None), f"({n}, 3, >={MIN_BETAS})")
    if shapedirs.shape[2] < MIN_BETAS:
        raise BodyModelFileError(
            f"{path}: key 'shapedirs' has shape {shapedirs.shape}, expected ({n}, 3, >={MIN_BETAS})"
        )
    posedirs = arrays["posedirs"]
    if posedirs.shape != (n, 3, NUM_POSE_BASIS) and posedirs.size == n * 3 * NUM_POSE_BASIS:
        posedirs = posedirs.reshape(n, 3, NUM_POSE_BASIS)
    _check_shape(
        path, "posedirs", posedirs.shape, (n, 3, NUM_POSE_BASIS), f"({n}, 3, {NUM_POSE_BASIS})"
    )
    _check_shape(
        path, "J_regressor", arrays["J_regressor"].shape, (NUM_JOINTS, n), f"({NUM_JOINTS}, {n})"
    )

    faces = arrays["f"]
    _check_shape(path, "f", faces.shape, (None, 3), "(F, 3)")
    if not np.issubdtype(faces.dtype, np.integer):
        raise BodyModelFileError(f"{path}: key 'f' has dtype {faces.dtype}, expected integers")
    faces = faces.astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= n):
        raise BodyModelFileError(f"{path}: key 'f' indexes vertices outside [0, {n})")

    kintree = arrays["kintree_table"]
    _check_shape(path, "kintree_table", kintree.shape, (2, NUM_JOINTS), f"(2, {NUM_JOINTS})")
    kintree = kintree.astype(np.int64)
    kintree[0, 0] = -1  # real files store 4294967295 (uint32 -1) for the root
    parents = kintree[0, 1:]
    if (parents < 0).any() or (parents >= np.arange(1, NUM_JOINTS)).any():
        raise BodyModelFileError(
            f"{path}: key 'kintree_table' has invalid parents {parents.tolist()} "
            "(each joint's parent must precede it)"
        )

    return {
        "v_template": v_template.astype(np.float32),
        "f": faces,
        "weights": arrays["weights"].astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": posedirs.astype(np.float32),
        "J_regressor": arrays["J_regressor"].astype(np.float32),
        "kintree_table": kintree,
    }


def read_joint_regressor(path: str | Path, n_vertices: int) -> np.ndarray:
    """Extra joint regressor (J, n_vertices) float32 from ``.npy``, or ``.npz`` holding one array
    or a 'J_regressor' key (e.g. SPIN's J_regressor_h36m.npy, (17, 6890)), rows as in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise BodyModelFileError(f"{path}: file not found")
    suffix = path.suffix.lower()
    key = "J_regressor"
    if suffix == ".npy":
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise BodyModelFileError(f"{path}: unreadable or corrupt .npy file ({exc})") from exc
    elif suffix == ".npz":
        raw = _load_mapping(path)
        if len(raw) == 1:
            key, value = next(iter(raw.items()))
        elif key in raw:
            value = raw[key]
        else:
            raise BodyModelFileError(
                f"{path}: missing key '{key}' (a regressor .npz holds one array or '{key}')"
            )
    else:
        raise BodyModelFileError(
            f"{path}: unknown extension '{path.suffix}' (expected .npy or .npz)"
        )
    regressor = _numeric(path, key, value, (None, n_vertices), f"(J, {n_vertices})")
    _check_shape(path, key, regressor.shape, (None, n_vertices), f"(J, {n_vertices})")
    return regressor.astype(np.float32)


def read_h36m_regressor(path: str | Path, v_template: np.ndarray) -> np.ndarray:
    """The Human3.6M-17 regressor file (``J_regressor_h36m.npy``, rows in
    :data:`~instancehmr.body.joint_sets.H36M_REGRESSOR_ROWS` order: left leg first) as a
    (17, V) float32 array in :data:`~instancehmr.body.joint_sets.H36M17` order.

    ``v_template`` (V, 3) is the body's rest mesh (SMPL's +x is the body's left): every row named
    left must regress to the left of its right counterpart there, so a file whose rows are in
    another order is refused (BodyModelFileError) instead of mirroring the 3-D joints.
    """

    regressor = read_joint_regressor(path, len(v_template))
    if len(regressor) != len(H36M_REGRESSOR_ROWS):
        raise BodyModelFileError(
            f"{path}: {len(regressor)} rows, expected {len(H36M_REGRESSOR_ROWS)} (Human3.6M-17)"
        )
    regressor = regressor[[H36M_REGRESSOR_ROWS.index(name) for name in H36M17]]
    rest_x = dict(zip(H36M17, regressor @ v_template[:, 0], strict=True))
    mirrored = [
        name for name in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
        if rest_x[f"left_{name}"] <= rest_x[f"right_{name}"]
    ]  # fmt: skip
    if mirrored:
        rows = [H36M_REGRESSOR_ROWS.index(f"left_{name}") for name in mirrored]
        raise BodyModelFileError(
            f"{path}: rows {rows} ({', '.join(f'left {n}' for n in mirrored)}) regress to the "
            "body's right side: the file's rows must follow J_regressor_h36m.npy's order "
            f"{list(H36M_REGRESSOR_ROWS)}"
        )
    return regressor
