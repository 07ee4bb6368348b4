"""The restricted unpickler: refuses code, keeps numpy / scipy.sparse / chumpy array state."""

import functools
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from instancehmr.body.safe_pickle import UnsafePickleError, load_pickle


def _dump(path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = _dump(tmp_path / "evil.pkl", {"v_template": _Reduce(os.system, (f"touch {marker}",))})
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path)
    assert info.value.name in ("posix.system", "os.system", "nt.system")
    assert str(path) in str(info.value) and info.value.name in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(
    ("func", "args"),
    [(eval, ("1 + 1",)), (subprocess.check_call, (["true"],)), (functools.partial, (len,))],
)
def test_other_globals_are_refused(tmp_path, func, args, protocol):
    path = _dump(tmp_path / "bad.pkl", _Reduce(func, args), protocol)
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path)
    # Protocols < 3 write Python-2 module names (__builtin__.eval, commands.check_call).
    assert info.value.name.endswith("." + func.__name__)
    assert info.value.name in str(info.value)


@pytest.mark.parametrize("protocol", [0, 2])
def test_numpy_and_scipy_sparse_round_trip(tmp_path, protocol):
    dense = np.arange(12, dtype=np.float64).reshape(3, 4) * (np.arange(12).reshape(3, 4) % 3 == 0)
    data = {
        "array": np.linspace(0, 1, 7, dtype=np.float32),
        "ints": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "scalar": np.float64(2.5),
        "csc": scipy.sparse.csc_matrix(dense),
        "csr": scipy.sparse.csr_matrix(dense),
        "text": "lbs",
    }
    out = load_pickle(_dump(tmp_path / "ok.pkl", data, protocol))
    assert scipy.sparse.issparse(out["csc"]) and out["csc"].format == "csc"
    np.testing.assert_array_equal(out["csc"].toarray(), dense)
    np.testing.assert_array_equal(out["csr"].toarray(), dense)
    np.testing.assert_array_equal(out["array"], data["array"])
    assert out["ints"].dtype == np.uint32 and out["scalar"] == 2.5 and out["text"] == "lbs"


def _pickle_fake_chumpy(monkeypatch, objects_from_ch) -> bytes:
    """Pickle objects built from a throwaway ``chumpy.ch.Ch`` class, then remove the module."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "chumpy", chumpy)
        patch.setitem(sys.modules, "chumpy.ch", ch)
        payload = pickle.dumps(objects_from_ch(Ch), protocol=2)
    assert "chumpy.ch" not in sys.modules
    return payload


def test_chumpy_objects_become_numpy_arrays(tmp_path, monkeypatch):
    shapedirs = np.random.default_rng(0).normal(size=(5, 3, 10))
    payload = _pickle_fake_chumpy(
        monkeypatch, lambda ch: {"shapedirs": ch(shapedirs), "nested": [ch(np.eye(2)), 3]}
    )
    path = tmp_path / "model.pkl"
    path.write_bytes(payload)
    out = load_pickle(path)
    assert type(out["shapedirs"]) is np.ndarray
    np.testing.assert_array_equal(out["shapedirs"], shapedirs)
    np.testing.assert_array_equal(out["nested"][0], np.eye(2))
    assert out["nested"][1] == 3


def _operation(ch):
    """A chumpy object holding an operand but no array of its own (like chumpy.ch_ops.add)."""
    op = ch(None)
    del op.x
    op.a = ch(np.ones(2))
    return {"op": op}


def test_chumpy_object_without_array_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / "op.pkl"
    path.write_bytes(_pickle_fake_chumpy(monkeypatch, _operation))
    with pytest.raises(pickle.UnpicklingError, match=r"chumpy\.ch\.Ch.*'x'"):
        load_pickle(path)
