"""The embedded synthetic SMPL-format body: format, anatomy, skinning, shape space, cache."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from instancehmr.body.joint_sets import (
    H36M17,
    H36M_REGRESSOR_ROWS,
    LANDMARK_VERTEX_IDS,
    SMPL24,
    SMPL_PARENTS,
)
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.body.synthetic import (
    GENERATOR_KEY,
    H36M_REGRESSOR_FILE,
    build_h36m_regressor,
    build_synthetic_smpl,
    ensure_synthetic_body,
    rest_joints,
    synthetic_body_dir,
    write_synthetic_body,
)
from instancehmr.provenance import code_digest

J = {name: i for i, name in enumerate(SMPL24)}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return write_synthetic_body(tmp_path_factory.mktemp("body"))


@pytest.fixture(scope="module")
def data(model_path):
    return load_pickle(model_path)


@pytest.fixture(scope="module")
def model(model_path):
    # Unmodified smplx, reading the file itself (SMPL_NEUTRAL.pkl in the folder).
    return smplx.SMPL(model_path=str(model_path.parent), batch_size=2)


def run(model, body_pose=None, betas=None):
    """Vertices (6890, 3) and joints (45, 3) for one person; body_pose {joint id: axis-angle}."""
    pose = torch.zeros(1, 69)
    for joint, aa in (body_pose or {}).items():
        pose[0, 3 * (joint - 1) : 3 * joint] = torch.tensor(aa)
    shape = torch.zeros(1, 10)
    shape[0, : len(betas or [])] = torch.tensor(betas or [])
    with torch.no_grad():
        out = model(
            body_pose=pose, betas=shape, global_orient=torch.zeros(1, 3), transl=torch.zeros(1, 3)
        )
    return out.vertices[0].numpy(), out.joints[0].numpy()


def test_file_layout(data):
    """Plain arrays only: the restricted unpickler reads it."""
    assert data["v_template"].shape == (6890, 3)
    assert data["f"].dtype == np.int64 and data["f"].shape[1] == 3
    assert data["weights"].shape == (6890, 24)
    assert data["shapedirs"].shape == (6890, 3, 10)
    assert data["posedirs"].shape == (6890, 3, 207) and not data["posedirs"].any()
    assert data["J_regressor"].shape == (24, 6890)
    assert data["kintree_table"].tolist() == [list(SMPL_PARENTS), list(range(24))]
    assert data[GENERATOR_KEY].shape == () and str(data[GENERATOR_KEY]) == code_digest(
        "instancehmr.body.synthetic"
    )


def test_smplx_forward_batch_of_two(model):
    betas = torch.zeros(2, 10)
    betas[1, 0] = 1.0
    with torch.no_grad():
        out = model(betas=betas)  # the model's own batch-2 pose and translation parameters
    assert out.vertices.shape == (2, 6890, 3)
    assert out.joints.shape == (2, 24 + 21, 3)  # 21 extra joints read from vertex ids
    assert torch.isfinite(out.vertices).all()
    assert not torch.allclose(out.vertices[0], out.vertices[1])


def test_rest_pose_height_and_convention(model):
    v, j = run(model)
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 <= height <= 1.85
    assert np.linalg.norm(j[J["pelvis"]]) < 0.05
    for left, right in [("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_wrist", "right_wrist")]:  # fmt: skip
        assert j[J[left], 0] > 0.05 and j[J[right], 0] < -0.05
    nose = v[LANDMARK_VERTEX_IDS["nose"]]
    assert nose[2] > j[J["head"], 2] + 0.05  # faces +z
    assert j[J["head"], 1] > j[J["neck"], 1] > j[J["spine3"], 1] > j[J["pelvis"], 1]
    assert j[J["left_ankle"], 1] < j[J["left_knee"], 1] < j[J["left_hip"], 1]
    # T-pose: arms horizontal
    assert abs(j[J["left_wrist"], 1] - j[J["left_shoulder"], 1]) < 0.03


def test_joint_regressor_reproduces_rest_joints(data):
    regressor = data["J_regressor"]
    assert (regressor >= 0).all()
    np.testing.assert_allclose(regressor.sum(1), 1.0, atol=1e-5)
    assert ((regressor > 0).sum(1) < 400).all()  # sparse rows
    np.testing.assert_allclose(regressor @ data["v_template"], rest_joints(), atol=1e-3)


def test_landmark_vertices_on_the_right_body_parts(data, model):
    ids = SMPLX_VERTEX_IDS["smplh"]
    assert {k: v for k, v in LANDMARK_VERTEX_IDS.items() if k in ids} == ids
    v, j = run(model)
    at = {name: v[i] for name, i in LANDMARK_VERTEX_IDS.items()}
    head = j[J["head"]]
    assert abs(at["nose"][0]) < 0.01 and at["nose"][2] > 0.1
    for side, sign in (("l", 1), ("r", -1)):
        eye, ear = at[f"{side}eye"], at[f"{side}ear"]
        assert sign * eye[0] > 0.015 and eye[2] > 0.07 and eye[1] > at["nose"][1]
        assert (
            sign * ear[0] > 0.07
            and abs(ear[2] - head[2]) < 0.05
            and abs(ear[1] - at["nose"][1]) < 0.04
        )
        wrist, hand = (
            j[J[f"{'left' if side == 'l' else 'right'}_wrist"]],
            j[J[f"{'left' if side == 'l' else 'right'}_hand"]],
        )
        tips = [at[f"{side}{f}"] for f in ("index", "middle", "ring", "pinky")]
        for tip in tips:
            assert sign * (tip[0] - hand[0]) > 0.08 and abs(tip[1] - wrist[1]) < 0.03
        assert tips[0][2] > tips[1][2] > tips[2][2] > tips[3][2]  # index at the thumb side (front)
        thumb = at[f"{side}thumb"]
        assert thumb[2] > wrist[2] + 0.05 and sign * (thumb[0] - wrist[0]) > 0.03
    for side, name in (("L", "left"), ("R", "right")):
        ankle = j[J[f"{name}_ankle"]]
        big, small, heel = at[f"{side}BigToe"], at[f"{side}SmallToe"], at[f"{side}Heel"]
        for toe in (big, small):
            assert toe[2] > ankle[2] + 0.15 and toe[1] < ankle[1] - 0.03
        assert abs(big[0]) < abs(small[0])  # big toe on the inside
        assert heel[2] < ankle[2] - 0.04 and heel[1] < ankle[1] - 0.05
    top = v[LANDMARK_VERTEX_IDS["head_top"]]
    assert top[1] == pytest.approx(v[:, 1].max(), abs=0.005)


def test_skinning_weights(data):
    weights = data["weights"]
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
    assert (weights > 0).sum(0).min() > 0  # every joint drives some vertices


def test_elbow_bend_moves_only_that_forearm(model):
    v0, j0 = run(model)
    v1, j1 = run(model, {J["left_elbow"]: (0.0, -np.pi / 2, 0.0)})
    wrist = J["left_wrist"]
    assert np.linalg.norm(j1[wrist] - j0[wrist]) > 0.15
    assert j1[wrist, 2] > j0[wrist, 2] + 0.15  # forearm swings forward
    left_hand = v0[:, 0] > 0.72
    assert np.linalg.norm(v1[left_hand] - v0[left_hand], axis=1).min() > 0.1
    right_arm = v0[:, 0] < -0.2
    np.testing.assert_allclose(v1[right_arm], v0[right_arm], atol=1e-6)
    upper_arm = (v0[:, 0] > 0.2) & (v0[:, 0] < 0.35)
    np.testing.assert_allclose(v1[upper_arm], v0[upper_arm], atol=1e-6)
    # no vertex moves further than a rigid 90-degree swing about the elbow would take it
    reach = np.linalg.norm(v0 - j0[J["left_elbow"]], axis=1)
    assert (np.linalg.norm(v1 - v0, axis=1) <= reach * np.sqrt(2) + 1e-4).all()


@pytest.mark.parametrize(
    "body_pose",
    [
        {J["left_elbow"]: (0.0, -1.6, 0.0)},
        {J["left_knee"]: (1.6, 0.0, 0.0)},
        {J["left_hip"]: (-1.6, 0.0, 0.0)},
        {J["left_shoulder"]: (0.0, 0.0, -1.3), J["right_shoulder"]: (0.0, 0.0, 1.3)},
        {J["neck"]: (0.5, 0.0, 0.0), J["head"]: (0.3, 0.5, 0.0)},
        {J["spine1"]: (0.4, 0.0, 0.0), J["spine2"]: (0.3, 0.3, 0.0), J["spine3"]: (0.0, 0.0, 0.3)},
    ],
)
def test_posing_bends_without_tearing(model, data, body_pose):
    f = data["f"]
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    v0, _ = run(model)
    v1, _ = run(model, body_pose)
    stretch = np.linalg.norm(v1[edges[:, 0]] - v1[edges[:, 1]], axis=1) / np.linalg.norm(
        v0[edges[:, 0]] - v0[edges[:, 1]], axis=1
    )
    assert stretch.max() < 2.5


def test_mesh_is_closed_with_consistent_outward_winding(data):
    v, f = data["v_template"].astype(np.float64), data["f"]
    assert len(v) == 6890 and f.min() == 0 and f.max() == 6889
    assert len(np.unique(f)) == 6890  # every vertex is used
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    assert area.min() > 1e-8
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = {tuple(e) for e in edges.tolist()}
    assert len(directed) == len(edges)  # no directed edge twice: consistent winding
    assert all((b, a) in directed for a, b in directed)  # closed surfaces
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert volume > 0.03  # outward normals, roughly a person's volume in m^3


def test_every_beta_changes_the_body_and_the_joints(model, data):
    v0, j0 = run(model)
    start, end = data["f"].ravel(), data["f"][:, [1, 2, 0]].ravel()  # every edge of every face
    rest = np.linalg.norm(v0[start] - v0[end], axis=1)
    for k in range(10):
        betas = [0.0] * 10
        betas[k] = 2.0
        v, _ = run(model, betas=betas)
        assert np.abs(v - v0).max() > 0.01, f"beta {k}"
        for sign in (1, -1):  # smooth fields: no edge collapses or tears at beta +-2
            v, _ = run(model, betas=[sign * beta for beta in betas])
            ratio = np.linalg.norm(v[start] - v[end], axis=1) / rest
            assert ratio.min() > 0.3 and ratio.max() < 2.0, f"beta {k} = {2 * sign}"
    tall, j_tall = run(model, betas=[2.0])
    short, _ = run(model, betas=[-2.0])
    height = lambda verts: verts[:, 1].max() - verts[:, 1].min()  # noqa: E731
    assert height(tall) - height(v0) > 0.05 and height(v0) - height(short) > 0.05
    assert j_tall[J["head"], 1] > j0[J["head"], 1] + 0.03
    assert j_tall[J["left_ankle"], 1] < j0[J["left_ankle"], 1] - 0.03
    _, j_arms = run(model, betas=[0, 0, 0, 0, 2.0])
    assert j_arms[J["left_wrist"], 0] > j0[J["left_wrist"], 0] + 0.03
    assert abs(j_arms[J["left_knee"], 0] - j0[J["left_knee"], 0]) < 1e-3


def test_shape_directions_are_distinct(data):
    dirs = data["shapedirs"].reshape(-1, 10).astype(np.float64)
    unit = dirs / np.linalg.norm(dirs, axis=0)
    cosine = np.abs(unit.T @ unit) - np.eye(10)
    assert cosine.max() < 0.9


def test_h36m_regressor(model_path, data):
    """Written in the real J_regressor_h36m.npy's row order (left leg in rows 1-3)."""
    regressor = np.load(model_path.parent / H36M_REGRESSOR_FILE, allow_pickle=False)
    assert regressor.shape == (17, 6890) and len(H36M17) == 17
    assert (regressor >= 0).all()
    np.testing.assert_allclose(regressor.sum(1), 1.0, atol=1e-5)
    h = dict(zip(H36M_REGRESSOR_ROWS, regressor @ data["v_template"], strict=True))
    smpl = dict(zip(SMPL24, rest_joints(), strict=True))
    assert (
        h["left_hip"][0] > smpl["left_hip"][0] + 0.01
        and h["right_hip"][0] < smpl["right_hip"][0] - 0.01
    )
    assert h["head_top"][1] > data["v_template"][:, 1].max() - 0.03
    assert h["pelvis"][1] < h["spine"][1] < h["thorax"][1] < h["neck_nose"][1] < h["head_top"][1]
    for name in ("knee", "ankle", "shoulder", "elbow", "wrist"):
        for side in ("left", "right"):
            assert np.linalg.norm(h[f"{side}_{name}"] - smpl[f"{side}_{name}"]) < 0.03


def test_generation_is_deterministic():
    first = build_synthetic_smpl()
    second = build_synthetic_smpl()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert build_h36m_regressor().shape == (17, 6890)


def test_cache_is_generated_once_and_refreshed_when_the_generator_code_changes(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("INSTANCEHMR_CACHE", str(tmp_path))
    assert synthetic_body_dir() == tmp_path / "body"
    path = ensure_synthetic_body()
    assert path == tmp_path / "body" / "SMPL_NEUTRAL.pkl"
    assert (path.parent / H36M_REGRESSOR_FILE).is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == [H36M_REGRESSOR_FILE, path.name]
    stamp = path.stat().st_mtime_ns
    assert ensure_synthetic_body() == path and path.stat().st_mtime_ns == stamp

    current = code_digest("instancehmr.body.synthetic")
    stale = load_pickle(path)
    stale[GENERATOR_KEY] = np.array("0123456789abcdef")  # made by other code
    path.write_bytes(pickle.dumps(stale, protocol=4))
    os.utime(path, ns=(stamp, stamp))
    ensure_synthetic_body()
    assert str(load_pickle(path)[GENERATOR_KEY]) == current
    path.write_bytes(b"corrupt")
    assert str(load_pickle(ensure_synthetic_body())[GENERATOR_KEY]) == current


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("INSTANCEHMR_CACHE", raising=False)
    assert synthetic_body_dir() == Path.home() / ".cache" / "instancehmr" / "body"
