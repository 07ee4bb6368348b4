"""Load SMPL-family pickles without executing pickled code.

Real SMPL, SMPLify and 3DPW files are Python-2 pickles of numpy arrays, scipy sparse matrices and
chumpy objects. ``pickle.load`` would import and call whatever a file names, so this unpickler
resolves only the globals those files need (numpy arrays, scipy.sparse matrices, copy_reg
reconstruction of plain objects, sets); every other global raises :class:`UnsafePickleError`
before anything is called. chumpy (unmaintained, broken on current numpy) is never imported: its
objects are rebuilt as a stand-in that keeps the array state (``x``), and the loaded result has
every chumpy object replaced by that plain numpy array.
"""

from __future__ import annotations

import codecs
import copyreg
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

# Imported inside the functions that use them, to keep this module light: numpy.

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list; nothing from it was called."""

    def __init__(self, path: str | Path, name: str):
        super().__init__(f"{path}: refusing to load global '{name}' (not allowed in model files)")
        self.path = Path(path)
        self.name = name


class _ChumpyObject:
    """Stand-in for a chumpy class: keeps the pickled state, whose ``x`` is the array."""

    class_name = "chumpy"

    def __new__(cls, *args: Any, **kwargs: Any) -> _ChumpyObject:
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # (dict state, slot state)
            state = state[0] or {}
        self.state = dict(state)


def _numpy_allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct
        allowed[(module, "scalar")] = scalar
    return allowed


def _sparse_allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {}
    for fmt in ("csc", "csr", "coo"):
        for module in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}", "scipy.sparse"):
            for kind in ("matrix", "array"):
                name = f"{fmt}_{kind}"
                allowed[(module, name)] = getattr(scipy.sparse, name)
    return allowed


_ALLOWED: dict[tuple[str, str], Any] = {
    **_numpy_allowed(),
    **_sparse_allowed(),
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    # chumpy state holds sets (e.g. _dirty_vars); protocols < 4 pickle them by calling set().
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "frozenset"): frozenset,
    # Python 3 writes bytes as _codecs.encode(str, 'latin1') under protocols < 3.
    ("_codecs", "encode"): codecs.encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return type(name, (_ChumpyObject,), {"class_name": f"{module}.{name}"})
        raise UnsafePickleError(self._path, f"{module}.{name}")


def _to_plain(obj: Any, path: Path) -> Any:
    """Replace chumpy stand-ins by their numpy array, recursing into dicts, lists and tuples."""
    if isinstance(obj, _ChumpyObject):
        if "x" not in obj.state:
            raise pickle.UnpicklingError(
                f"{path}: chumpy object '{obj.class_name}' has no array state 'x'"
            )
        return np.asarray(_to_plain(obj.state["x"], path))
    if isinstance(obj, dict):
        return {k: _to_plain(v, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v, path) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_plain(v, path) for v in obj)
    return obj


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` (latin1 for Python-2 files) allowing only numpy, scipy.sparse and chumpy
    array state; chumpy objects come back as numpy arrays.

    Raises UnsafePickleError (naming the file and the refused global) for anything else.
    """
    path = Path(path)
    with path.open("rb") as fh:
        return _to_plain(_RestrictedUnpickler(fh, path).load(), path)
