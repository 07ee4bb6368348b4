"""Reading SMPL model files (.npz / .pkl) and extra regressors, and their error messages."""

import pickle

import numpy as np
import pytest
import scipy.sparse

from instancehmr.body.model_file import (
    REQUIRED_KEYS,
    BodyModelFileError,
    read_h36m_regressor,
    read_joint_regressor,
    read_smpl_file,
)
from instancehmr.body.synthetic import write_synthetic_body


@pytest.fixture(scope="module")
def synthetic_pkl(tmp_path_factory):
    return write_synthetic_body(tmp_path_factory.mktemp("body"))


def _tiny_model(n=12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    parents = np.array(
        [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    )
    regressor = rng.random((24, n))
    weights = rng.random((n, 24))
    return {
        "v_template": rng.normal(size=(n, 3)),
        "f": np.array([[0, 1, 2], [2, 3, 4]], dtype=np.uint32),
        "weights": weights / weights.sum(1, keepdims=True),
        "shapedirs": rng.normal(size=(n, 3, 10)),
        "posedirs": np.zeros((n, 3, 207)),
        "J_regressor": regressor / regressor.sum(1, keepdims=True),
        "kintree_table": np.stack([parents, np.arange(24)]),
    }


def _write_npz(path, data):
    np.savez(path, **data)
    return path


def test_npz_and_pkl_versions_read_identically(synthetic_pkl, tmp_path):
    plain = read_smpl_file(synthetic_pkl)
    from_npz = read_smpl_file(_write_npz(tmp_path / "SMPL_NEUTRAL.npz", plain))
    real_like = dict(plain)
    # As in the released SMPL pickles: sparse J_regressor, uint32 -1 as the root's parent.
    real_like["J_regressor"] = scipy.sparse.csc_matrix(real_like["J_regressor"])
    real_like["kintree_table"] = real_like["kintree_table"].astype(np.int64) % 2**32
    pkl = tmp_path / "real_like.pkl"
    pkl.write_bytes(pickle.dumps(real_like, protocol=2))
    from_pkl = read_smpl_file(pkl)
    assert from_npz.keys() == from_pkl.keys() == set(REQUIRED_KEYS)
    for key in REQUIRED_KEYS:
        assert from_npz[key].dtype == from_pkl[key].dtype, key
        np.testing.assert_array_equal(from_npz[key], from_pkl[key], err_msg=key)
    assert from_npz["f"].dtype == np.int64 and from_npz["v_template"].dtype == np.float32
    assert from_npz["kintree_table"][0, 0] == -1
    assert from_npz["J_regressor"].shape == (24, 6890)


def test_flat_posedirs_are_reshaped(tmp_path):
    data = _tiny_model()
    data["posedirs"] = np.arange(12 * 3 * 207, dtype=float).reshape(12 * 3, 207)
    out = read_smpl_file(_write_npz(tmp_path / "m.npz", data))
    assert out["posedirs"].shape == (12, 3, 207)
    np.testing.assert_array_equal(out["posedirs"].reshape(-1, 207), data["posedirs"])


def _assert_error(path, *fragments):
    with pytest.raises(BodyModelFileError) as info:
        read_smpl_file(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_key(tmp_path):
    data = _tiny_model()
    del data["weights"]
    _assert_error(_write_npz(tmp_path / "m.npz", data), "missing key 'weights'")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("weights", np.zeros((12, 23)), "(12, 24)"),
        ("shapedirs", np.zeros((12, 3, 5)), "(12, 3, >=10)"),
        ("J_regressor", np.zeros((17, 12)), "(24, 12)"),
        ("kintree_table", np.zeros((2, 23), dtype=np.int64), "(2, 24)"),
        ("v_template", np.zeros((12, 2)), "(V, 3)"),
        ("posedirs", np.zeros((12, 3, 10)), "(12, 3, 207)"),
    ],
)
def test_wrong_shape(tmp_path, key, value, expected):
    data = _tiny_model()
    data[key] = value
    message = _assert_error(_write_npz(tmp_path / "m.npz", data), f"key '{key}'", expected)
    assert str(value.shape) in message


def test_float_faces_and_bad_indices(tmp_path):
    data = _tiny_model()
    data["f"] = data["f"].astype(np.float64)
    _assert_error(_write_npz(tmp_path / "a.npz", data), "key 'f'", "integers")
    data["f"] = np.array([[0, 1, 12]])
    _assert_error(_write_npz(tmp_path / "b.npz", data), "key 'f'")


def test_unknown_extension_and_missing_file(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("v_template")
    _assert_error(path, "unknown extension '.txt'")
    _assert_error(tmp_path / "nope.npz", "not found")


@pytest.mark.parametrize("suffix", [".npz", ".pkl"])
def test_corrupt_bytes(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"PK\x03\x04 this is not a model \x00\xff" * 4)
    _assert_error(path, "corrupt")


@pytest.mark.parametrize("suffix", [".npz", ".pkl"])
def test_truncated_file(tmp_path, synthetic_pkl, suffix):
    whole = (
        _write_npz(tmp_path / "whole.npz", read_smpl_file(synthetic_pkl))
        if suffix == ".npz"
        else synthetic_pkl
    )
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(whole.read_bytes()[:5000])
    _assert_error(path, "corrupt")


def test_unsafe_pkl_is_a_model_file_error(tmp_path):
    class Evil:
        def __reduce__(self):
            return (getattr, (object, "__name__"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    _assert_error(path, "getattr")


def test_joint_regressor(tmp_path):
    regressor = np.full((17, 12), 1 / 12)
    npy = tmp_path / "J_regressor_h36m.npy"
    np.save(npy, regressor)
    out = read_joint_regressor(npy, 12)
    assert out.dtype == np.float32 and out.shape == (17, 12)
    np.savez(tmp_path / "one.npz", anything=regressor)
    np.testing.assert_array_equal(read_joint_regressor(tmp_path / "one.npz", 12), out)

    with pytest.raises(BodyModelFileError, match=r"\(17, 12\).*\(J, 6890\)") as info:
        read_joint_regressor(npy, 6890)
    assert str(npy) in str(info.value)
    np.savez(tmp_path / "two.npz", a=regressor, b=regressor)
    with pytest.raises(BodyModelFileError, match="missing key 'J_regressor'"):
        read_joint_regressor(tmp_path / "two.npz", 12)
    with pytest.raises(BodyModelFileError, match="not found"):
        read_joint_regressor(tmp_path / "none.npy", 12)
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(BodyModelFileError, match="corrupt"):
        read_joint_regressor(tmp_path / "bad.npy", 12)
    (tmp_path / "r.pkl").write_bytes(b"")
    with pytest.raises(BodyModelFileError, match="unknown extension"):
        read_joint_regressor(tmp_path / "r.pkl", 12)


def test_h36m_regressor_rows_are_read_in_the_files_order_left_leg_first(synthetic_pkl):
    """J_regressor_h36m.npy (SPIN's data) puts the LEFT leg in rows 1-3: the side is proven by
    the regressor's weights (a row named left weights SMPL's left vertices, +x at rest), and the
    rows land on the canonical joints of their name."""
    from instancehmr.body.joint_sets import CANONICAL_INDEX, H36M17, H36M_REGRESSOR_ROWS
    from instancehmr.body.smpl import BodyModel
    from instancehmr.body.synthetic import H36M_REGRESSOR_FILE

    v_template = read_smpl_file(synthetic_pkl)["v_template"]
    file = np.load(synthetic_pkl.parent / H36M_REGRESSOR_FILE)
    weighted_x = file @ v_template[:, 0]
    for row in (1, 2, 3, 11, 12, 13):
        assert H36M_REGRESSOR_ROWS[row].startswith("left_") and weighted_x[row] > 0.03
    for row in (4, 5, 6, 14, 15, 16):
        assert H36M_REGRESSOR_ROWS[row].startswith("right_") and weighted_x[row] < -0.03
    read = read_h36m_regressor(synthetic_pkl.parent / H36M_REGRESSOR_FILE, v_template)
    np.testing.assert_array_equal(read[H36M17.index("left_hip")], file[1])
    np.testing.assert_array_equal(read[H36M17.index("right_hip")], file[4])

    body = BodyModel(synthetic_pkl, synthetic_pkl.parent / H36M_REGRESSOR_FILE)
    eye = np.eye(3, dtype=np.float32)
    import torch

    with torch.no_grad():
        joints = body(
            torch.from_numpy(eye)[None],
            torch.from_numpy(eye).expand(1, 23, 3, 3),
            torch.zeros(1, 10),
        ).joints[0]
    for side in ("left", "right"):
        for name in ("hip", "knee", "ankle", "wrist"):
            h36m, smpl = (
                joints[CANONICAL_INDEX[f"h36m_{side}_{name}"]],
                joints[CANONICAL_INDEX[f"{side}_{name}"]],
            )
            assert torch.sign(h36m[0]) == torch.sign(smpl[0]) and (h36m - smpl).norm() < 0.05


def test_a_regressor_with_mirrored_rows_is_refused(synthetic_pkl, tmp_path):
    from instancehmr.body.synthetic import H36M_REGRESSOR_FILE

    v_template = read_smpl_file(synthetic_pkl)["v_template"]
    file = np.load(synthetic_pkl.parent / H36M_REGRESSOR_FILE)
    swapped = file[[0, 4, 5, 6, 1, 2, 3, *range(7, 17)]]  # the label order: right leg first
    np.save(tmp_path / "mirrored.npy", swapped)
    with pytest.raises(
        BodyModelFileError,
        match=r"mirrored\.npy: rows \[1, 2, 3\] \(left hip, left knee, left ankle\) regress to the body's right side",
    ):
        read_h36m_regressor(tmp_path / "mirrored.npy", v_template)
    np.save(tmp_path / "short.npy", file[:14])
    with pytest.raises(BodyModelFileError, match="14 rows, expected 17"):
        read_h36m_regressor(tmp_path / "short.npy", v_template)


def test_a_sparse_regressor_declaring_an_absurd_shape_is_refused_before_it_is_made_dense(
    synthetic_pkl, tmp_path
):
    """A few bytes of pickle can declare a (24, 10**12) sparse matrix: its dense form would
    take terabytes. The declared shape is checked first."""
    data = dict(read_smpl_file(synthetic_pkl))
    data["J_regressor"] = scipy.sparse.csr_matrix(([1.0], ([0], [5])), shape=(24, 10**12))
    path = tmp_path / "absurd.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    _assert_error(path, "key 'J_regressor' has shape (24, 1000000000000), expected (24, 6890)")
    data = dict(read_smpl_file(synthetic_pkl))
    data["posedirs"] = scipy.sparse.csr_matrix(([1.0], ([0], [5])), shape=(10**6, 10**6))
    path.write_bytes(pickle.dumps(data, protocol=2))
    _assert_error(path, "key 'posedirs' is a sparse matrix declaring shape (1000000, 1000000)")
