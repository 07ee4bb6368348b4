"""The embedded synthetic SMPL-format body model.

The SMPL model files are licensed and cannot be shipped or downloaded here, and no public library
generates an SMPL-topology body, so this module builds one by hand: a person made of smooth closed
tubes (torso with neck, head with nose and ears, arms, hands with thumbs, legs, feet), stored in
SMPL's file format so that unmodified smplx skins it. It guarantees SMPL's sizes and conventions:
6890 vertices; 24 joints in SMPL's order with SMPL's kinematic tree; y up, facing +z, the person's
left at +x; a T-pose rest pose with the pelvis at the origin, 1.72 m tall; smooth skinning weights;
10 shape directions (metres per unit beta) that each visibly change the body; a joint regressor
that reproduces the rest joints and follows shape changes; the vertex ids that smplx reads extra
joints from (nose, eyes, ears, fingertips, toes, heels) and the crown vertex (412) placed on the
matching body part. There are no pose correctives: ``posedirs`` is all zeros. It is not a
statistical model of people and says nothing about real body shapes.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import nnls

from instancehmr.atomic import atomic_path
from instancehmr.body.joint_sets import (
    H36M17,
    H36M_REGRESSOR_ROWS,
    LANDMARK_VERTEX_IDS,
    SMPL24,
    SMPL_PARENTS,
)
from instancehmr.body.model_file import NUM_POSE_BASIS, NUM_VERTICES
from instancehmr.body.safe_pickle import load_pickle
from instancehmr.provenance import code_digest

#: Key of the cached files' generator in ``SMPL_NEUTRAL.pkl``: the digest of this module's code
#: (:func:`instancehmr.provenance.code_digest`), so an edit to the generator regenerates them.
GENERATOR_KEY = "generator_code"
SMPL_FILE = "SMPL_NEUTRAL.pkl"  # plain numpy arrays: unmodified smplx.SMPL(model_path=dir) loads it
H36M_REGRESSOR_FILE = "J_regressor_h36m.npy"
NUM_BETAS = 10


_J = {name: i for i, name in enumerate(SMPL24)}
_MIRROR = np.array([-1.0, 1.0, 1.0])

# Rest joints of the centre line and the left side (right = mirrored), metres.
_CENTRE_JOINTS = {
    "pelvis": (0.0, 0.0, 0.0),
    "spine1": (0.0, 0.11, -0.025),
    "spine2": (0.0, 0.24, -0.03),
    "spine3": (0.0, 0.31, -0.02),
    "neck": (0.0, 0.505, -0.025),
    "head": (0.0, 0.6, 0.01),
}
_LEFT_JOINTS = {
    "hip": (0.085, -0.09, 0.0),
    "knee": (0.1, -0.46, 0.005),
    "ankle": (0.09, -0.865, -0.03),
    "foot": (0.105, -0.915, 0.095),
    "collar": (0.075, 0.42, -0.015),
    "shoulder": (0.175, 0.44, -0.025),
    "elbow": (0.43, 0.44, -0.03),
    "wrist": (0.68, 0.44, -0.035),
    "hand": (0.765, 0.44, -0.04),
}


def rest_joints() -> np.ndarray:
    """(24, 3) rest-pose joint locations, metres."""
    joints = np.zeros((24, 3))
    for name, pos in _CENTRE_JOINTS.items():
        joints[_J[name]] = pos
    for name, pos in _LEFT_JOINTS.items():
        joints[_J[f"left_{name}"]] = pos
        joints[_J[f"right_{name}"]] = np.asarray(pos) * _MIRROR
    return joints


# ---------------------------------------------------------------------------------------------
# Geometry: closed tubes swept along a straight axis, super-elliptic cross-sections.


@dataclass(frozen=True)
class _Tube:
    """A closed surface: rings of ``segments`` vertices between two poles.

    Point = origin + s*axis + (c1 + a*X) e1 + (c2 + b*Y) e2 with (X, Y) a unit super-ellipse of
    exponent ``power``; profiles are given at ``knots`` (first and last = poles, a = b = 0 there).
    """

    name: str
    side: int  # +1 left, -1 right, 0 centre
    origin: tuple[float, float, float]
    axis: tuple[float, float, float]
    e1: tuple[float, float, float]
    e2: tuple[float, float, float]
    knots: tuple[float, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]
    c1: tuple[float, ...]
    c2: tuple[float, ...]
    power: tuple[float, ...]
    rings: int
    segments: int
    front_density: float = 0.0  # > 0 puts more of each ring's vertices toward +e2 (the face)


def _mirrored(tube: _Tube, name: str) -> _Tube:
    flip = tuple(np.asarray(v) * _MIRROR for v in (tube.origin, tube.axis, tube.e1, tube.e2))
    return replace(
        tube, name=name, side=-tube.side, origin=flip[0], axis=flip[1], e1=flip[2], e2=flip[3]
    )


def _const(value: float, n: int) -> tuple[float, ...]:
    return (value,) * n


def _part_specs() -> list[_Tube]:
    x, y, z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    neg_y = (0.0, -1.0, 0.0)
    o = (0.0, 0.0, 0.0)
    torso = _Tube(
        "torso", 0, o, y, x, z,
        knots=(-0.15, -0.13, -0.09, -0.04, 0.03, 0.1, 0.17, 0.25, 0.32, 0.39, 0.44, 0.475, 0.5, 0.53, 0.59, 0.625),
        a=(0, 0.07, 0.158, 0.172, 0.165, 0.148, 0.138, 0.148, 0.16, 0.172, 0.175, 0.14, 0.08, 0.058, 0.052, 0),
        b=(0, 0.055, 0.095, 0.105, 0.1, 0.095, 0.093, 0.1, 0.11, 0.105, 0.09, 0.075, 0.065, 0.058, 0.055, 0),
        c1=_const(0.0, 16),
        c2=(0.0, 0.0, -0.016, -0.02, -0.008, 0.0, 0.0, 0.005, 0.008, 0.0, -0.01, -0.015, -0.02, -0.018, -0.005, 0.0),
        power=(2.3, 2.3, 2.4, 2.4, 2.2, 2.1, 2.0, 2.3, 2.6, 2.8, 2.8, 2.6, 2.2, 2.0, 2.0, 2.0),
        rings=43, segments=40,
    )  # fmt: skip
    head = _Tube(
        "head", 0, o, y, x, z,
        knots=(0.555, 0.565, 0.59, 0.62, 0.655, 0.69, 0.73, 0.76, 0.785),
        a=(0, 0.035, 0.055, 0.065, 0.07, 0.074, 0.074, 0.06, 0),
        b=(0, 0.035, 0.065, 0.0835, 0.094, 0.097, 0.094, 0.0725, 0),
        c1=_const(0.0, 9),
        c2=(0.04, 0.035, 0.025, 0.0135, 0.006, 0.0, -0.004, -0.0075, -0.01),
        power=_const(2.0, 9),
        rings=33, segments=36, front_density=0.5,
    )  # fmt: skip
    ear = _Tube(
        "ear_l", 1, (0.076, 0.0, -0.005), y, x, z,
        knots=(0.635, 0.645, 0.665, 0.69, 0.7),
        a=(0, 0.007, 0.008, 0.007, 0),
        b=(0, 0.012, 0.017, 0.014, 0),
        c1=_const(0.0, 5), c2=_const(0.0, 5), power=_const(2.0, 5),
        rings=8, segments=8,
    )  # fmt: skip
    arm = _Tube(
        "arm_l", 1, o, x, y, z,
        knots=(0.09, 0.12, 0.175, 0.23, 0.3, 0.4, 0.43, 0.48, 0.6, 0.67, 0.7),
        a=(0, 0.05, 0.058, 0.05, 0.045, 0.037, 0.035, 0.04, 0.03, 0.022, 0),
        b=(0, 0.055, 0.058, 0.05, 0.045, 0.038, 0.037, 0.04, 0.033, 0.03, 0),
        c1=_const(0.44, 11),
        c2=(-0.02, -0.02, -0.025, -0.025, -0.025, -0.03, -0.03, -0.03, -0.033, -0.035, -0.035),
        power=_const(2.0, 11),
        rings=36, segments=16,
    )  # fmt: skip
    hand = _Tube(
        "hand_l", 1, o, x, y, z,
        knots=(0.655, 0.68, 0.72, 0.77, 0.8, 0.85, 0.875),
        a=(0, 0.02, 0.022, 0.018, 0.013, 0.011, 0),
        b=(0, 0.03, 0.042, 0.043, 0.04, 0.036, 0),
        c1=(0.44, 0.44, 0.44, 0.438, 0.436, 0.434, 0.434),
        c2=(-0.035, -0.035, -0.037, -0.04, -0.04, -0.04, -0.04),
        power=_const(2.6, 7),
        rings=17, segments=16,
    )  # fmt: skip
    thumb_dir = np.array([0.55, -0.15, 0.82]) / np.linalg.norm([0.55, -0.15, 0.82])
    thumb_e1 = np.cross(thumb_dir, x)
    thumb_e1 /= np.linalg.norm(thumb_e1)
    thumb = _Tube(
        "thumb_l", 1, (0.7, 0.435, -0.01), tuple(thumb_dir), tuple(thumb_e1),
        tuple(np.cross(thumb_dir, thumb_e1)),
        knots=(0.0, 0.02, 0.05, 0.07, 0.082),
        a=(0, 0.013, 0.012, 0.01, 0), b=(0, 0.013, 0.012, 0.01, 0),
        c1=_const(0.0, 5), c2=_const(0.0, 5), power=_const(2.0, 5),
        rings=7, segments=7,
    )  # fmt: skip
    leg = _Tube(
        "leg_l", 1, o, neg_y, x, z,
        knots=(-0.05, 0.0, 0.09, 0.2, 0.33, 0.42, 0.46, 0.52, 0.58, 0.7, 0.82, 0.865, 0.905),
        a=(0, 0.075, 0.09, 0.082, 0.066, 0.055, 0.052, 0.05, 0.053, 0.043, 0.032, 0.032, 0),
        b=(0, 0.066, 0.085, 0.083, 0.07, 0.058, 0.053, 0.052, 0.058, 0.045, 0.033, 0.035, 0),
        c1=(0.08, 0.082, 0.085, 0.09, 0.095, 0.099, 0.1, 0.1, 0.099, 0.096, 0.092, 0.09, 0.09),
        c2=(0.0, 0.0, -0.005, -0.003, 0.0, 0.003, 0.005, 0.0, -0.012, -0.01, -0.015, -0.025, -0.03),
        power=_const(2.0, 13),
        rings=44, segments=18,
    )  # fmt: skip
    foot = _Tube(
        "foot_l", 1, o, z, x, y,
        knots=(-0.1, -0.08, -0.03, 0.03, 0.09, 0.14, 0.175),
        a=(0, 0.03, 0.037, 0.042, 0.048, 0.042, 0),
        b=(0, 0.035, 0.045, 0.035, 0.022, 0.016, 0),
        c1=(0.09, 0.09, 0.09, 0.095, 0.1, 0.103, 0.105),
        c2=(-0.905, -0.905, -0.895, -0.905, -0.918, -0.924, -0.924),
        power=_const(2.4, 7),
        rings=14, segments=16,
    )  # fmt: skip
    left = [ear, arm, hand, thumb, leg, foot]
    right = [_mirrored(t, t.name[:-2] + "_r") for t in left]
    return [torso, head, *left, *right]


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _step(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smooth 0 -> 1 as u goes from lo to hi (lo > hi reverses the direction)."""
    return _smoothstep((u - lo) / (hi - lo))


@dataclass
class _Mesh:
    """All tubes concatenated, with per-vertex bookkeeping for weights and shape fields."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    part: np.ndarray  # (V,) index into the part list
    axial: np.ndarray  # (V,) s along the part axis
    centre: np.ndarray  # (V, 3) axis centre of the vertex's ring
    unit: np.ndarray  # (V, 2) (X, Y) on the unit cross-section, 0 at poles


def _sample_tube(t: _Tube) -> tuple[np.ndarray, ...]:
    knots = np.asarray(t.knots)
    a2 = PchipInterpolator(knots, np.square(t.a))
    b2 = PchipInterpolator(knots, np.square(t.b))
    c1, c2 = PchipInterpolator(knots, t.c1), PchipInterpolator(knots, t.c2)
    power = PchipInterpolator(knots, t.power)
    # Rings at equal arc length along the meridian (s, mean radius, centre).
    fine = np.linspace(knots[0], knots[-1], 4001)
    radius = 0.5 * (np.sqrt(np.maximum(a2(fine), 0)) + np.sqrt(np.maximum(b2(fine), 0)))
    step = np.sqrt(
        np.diff(fine) ** 2 + np.diff(radius) ** 2 + np.diff(c1(fine)) ** 2 + np.diff(c2(fine)) ** 2
    )
    arc = np.concatenate([[0.0], np.cumsum(step)])
    s = np.interp(np.linspace(0, arc[-1], t.rings + 2)[1:-1], arc, fine)
    a, b = np.sqrt(np.maximum(a2(s), 1e-10)), np.sqrt(np.maximum(b2(s), 1e-10))
    phi = 2 * np.pi * np.arange(t.segments) / t.segments
    theta = phi - t.front_density * np.sin(phi - np.pi / 2)
    e = 2.0 / power(s)[:, None]
    unit_x = np.sign(np.cos(theta)) * np.abs(np.cos(theta)) ** e
    unit_y = np.sign(np.sin(theta)) * np.abs(np.sin(theta)) ** e
    origin, axis, e1, e2 = (np.asarray(v, dtype=float) for v in (t.origin, t.axis, t.e1, t.e2))
    ring_centre = origin + s[:, None] * axis + c1(s)[:, None] * e1 + c2(s)[:, None] * e2
    ring = (
        ring_centre[:, None]
        + (a[:, None] * unit_x)[..., None] * e1
        + (b[:, None] * unit_y)[..., None] * e2
    )
    ends = knots[[0, -1]]
    poles = origin + ends[:, None] * axis + c1(ends)[:, None] * e1 + c2(ends)[:, None] * e2
    vertices = np.concatenate([poles[:1], ring.reshape(-1, 3), poles[1:]])
    axial = np.concatenate([ends[:1], np.repeat(s, t.segments), ends[1:]])
    centre = np.concatenate([poles[:1], np.repeat(ring_centre, t.segments, axis=0), poles[1:]])
    unit = np.concatenate(
        [np.zeros((1, 2)), np.stack([unit_x.ravel(), unit_y.ravel()], 1), np.zeros((1, 2))]
    )
    faces = _tube_faces(t.rings, t.segments)
    volume = np.einsum(
        "ij,ij->i", vertices[faces[:, 0]], np.cross(vertices[faces[:, 1]], vertices[faces[:, 2]])
    ).sum()
    if volume < 0:
        faces = faces[:, ::-1]
    return vertices, faces, axial, centre, unit


def _tube_faces(rings: int, segments: int) -> np.ndarray:
    j = np.arange(segments)
    jn = (j + 1) % segments
    last = 1 + rings * segments
    faces = [np.stack([np.zeros(segments, int), 1 + jn, 1 + j], 1)]
    for r in range(rings - 1):
        lo, hi = 1 + r * segments, 1 + (r + 1) * segments
        faces.append(np.stack([lo + j, lo + jn, hi + jn], 1))
        faces.append(np.stack([lo + j, hi + jn, hi + j], 1))
    lo = 1 + (rings - 1) * segments
    faces.append(np.stack([np.full(segments, last), lo + j, lo + jn], 1))
    return np.concatenate(faces)


def _face_details(mesh: _Mesh, head: int) -> None:
    """Nose and eye sockets on the head tube (in place)."""
    on = mesh.part == head
    v = mesh.vertices[on]
    front = _step(mesh.unit[on, 1], 0.3, 0.9)
    nose = 0.018 * np.exp(-0.5 * ((v[:, 0] / 0.012) ** 2 + ((v[:, 1] - 0.652) / 0.018) ** 2))
    nose *= 0.6 + 0.4 * _step(v[:, 1], 0.675, 0.64)  # tip lower than the bridge
    sockets = sum(
        -0.007 * np.exp(-0.5 * (((v[:, 0] - sx) / 0.014) ** 2 + ((v[:, 1] - 0.69) / 0.011) ** 2))
        for sx in (-0.033, 0.033)
    )
    mesh.vertices[on, 2] += front * (nose + sockets)


def _build_mesh() -> tuple[_Mesh, list[_Tube]]:
    specs = _part_specs()
    verts, faces, part, axial, centre, unit = [], [], [], [], [], []
    offset = 0
    for i, spec in enumerate(specs):
        v, f, s, c, u = _sample_tube(spec)
        verts.append(v)
        faces.append(f + offset)
        part.append(np.full(len(v), i))
        axial.append(s)
        centre.append(c)
        unit.append(u)
        offset += len(v)
    mesh = _Mesh(
        np.concatenate(verts), np.concatenate(faces), np.concatenate(part),
        np.concatenate(axial), np.concatenate(centre), np.concatenate(unit),
    )  # fmt: skip
    if len(mesh.vertices) != NUM_VERTICES:
        raise AssertionError(
            f"synthetic body has {len(mesh.vertices)} vertices, not {NUM_VERTICES}"
        )
    _face_details(mesh, [spec.name for spec in specs].index("head"))
    return mesh, specs


def _part_labels(specs: list[_Tube], part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V,) part kind (torso, head, ear, arm, hand, thumb, leg, foot) and (V,) side (+1 left,
    -1 right, 0 centre) per vertex."""
    kind = np.array([spec.name.split("_")[0] for spec in specs])[part]
    return kind, np.array([spec.side for spec in specs])[part]


def _side_ids(side: int, names: tuple[str, ...]) -> list[int]:
    prefix = "left_" if side > 0 else "right_"
    return [_J[name] if name in _CENTRE_JOINTS else _J[prefix + name] for name in names]


# ---------------------------------------------------------------------------------------------
# Skinning weights: each vertex follows its segment's bone, blending with the next bone across a
# joint. Chains give the weights as a function of one coordinate; the torso mixes the spine chain
# with the arm chain (shoulders) and the leg chain (hips).


def _chain(u: np.ndarray, bones: list[int], cuts: tuple, widths: tuple) -> np.ndarray:
    """(N, 24) weights: bones[k] before cuts[k], bones[k+1] after, blended over cut +- width."""
    ramps = [_step(u, c - w, c + w) for c, w in zip(cuts, widths, strict=True)]
    weights = np.zeros((len(u), 24))
    weights[:, bones[0]] += 1 - ramps[0]
    for k in range(1, len(bones) - 1):
        weights[:, bones[k]] += ramps[k - 1] - ramps[k]
    weights[:, bones[-1]] += ramps[-1]
    return weights


def _spine_chain(p: np.ndarray) -> np.ndarray:
    bones = _side_ids(0, ("pelvis", "spine1", "spine2", "spine3", "neck", "head"))
    return _chain(p[:, 1], bones, (0.11, 0.24, 0.31, 0.505, 0.585), (0.05, 0.04, 0.025, 0.03, 0.02))


def _sided(p: np.ndarray, side: np.ndarray, chain) -> np.ndarray:
    """Apply a one-sided chain to each vertex with its side (+1 left, -1 right)."""
    return np.where((side > 0)[:, None], chain(p, 1), chain(p, -1))


def _arm_chain(p: np.ndarray, side: int) -> np.ndarray:
    bones = _side_ids(side, ("spine3", "collar", "shoulder", "elbow", "wrist", "hand"))
    cuts, widths = (0.05, 0.175, 0.43, 0.68, 0.76), (0.025, 0.045, 0.04, 0.025, 0.02)
    return _chain(side * p[:, 0], bones, cuts, widths)


def _leg_chain(p: np.ndarray, side: int) -> np.ndarray:
    bones = _side_ids(side, ("pelvis", "hip", "knee", "ankle"))
    return _chain(-p[:, 1], bones, (0.035, 0.46, 0.865), (0.085, 0.06, 0.03))


def _skinning_weights(p: np.ndarray, kind: np.ndarray, side: np.ndarray) -> np.ndarray:
    weights = np.zeros((len(p), 24))
    torso = kind == "torso"
    q = p[torso]
    q_side = np.where(q[:, 0] >= 0, 1, -1)
    m_leg = (_step(np.abs(q[:, 0]), 0.0, 0.12) * _step(q[:, 1], 0.06, 0.0))[:, None]
    m_arm = (_step(np.abs(q[:, 0]), 0.04, 0.1) * _step(q[:, 1], 0.3, 0.4))[:, None]
    arm_chain = _sided(q, q_side, _arm_chain)
    # Below the shoulder the chest side stays with the collar when the arm moves.
    keep = _step(q[:, 1], 0.37, 0.44)
    for sign in (1, -1):
        collar, *limb = _side_ids(sign, ("collar", "shoulder", "elbow", "wrist", "hand"))
        rows = np.nonzero(q_side == sign)[0]
        arm_chain[rows, collar] += arm_chain[np.ix_(rows, limb)].sum(1) * (1 - keep[rows])
        arm_chain[np.ix_(rows, limb)] *= keep[rows, None]
    weights[torso] = (
        (1 - m_leg - m_arm) * _spine_chain(q)
        + m_leg * _sided(q, q_side, _leg_chain)
        + m_arm * arm_chain
    )
    weights[np.isin(kind, ("head", "ear")), _J["head"]] = 1.0
    arm = np.isin(kind, ("arm", "hand", "thumb"))
    weights[arm] = _sided(p[arm], side[arm], _arm_chain)
    leg = np.isin(kind, ("leg", "foot"))
    weights[leg] = _sided(p[leg], side[leg], _leg_chain)
    toes = _step(p[:, 2], 0.065, 0.125)
    for sign in (1, -1):
        ankle, toe = _side_ids(sign, ("ankle", "foot"))
        rows = (kind == "foot") & (side == sign)
        weights[rows, toe] = weights[rows, ankle] * toes[rows]
        weights[rows, ankle] *= 1 - toes[rows]
    return weights


# ---------------------------------------------------------------------------------------------
# Shape space: 10 smooth displacement fields, metres per unit beta.


def _integral(u: np.ndarray, grid: np.ndarray, slope: np.ndarray, zero: float) -> np.ndarray:
    """Integral of ``slope`` (sampled on ``grid``) from ``zero`` to u."""
    f = np.concatenate([[0.0], np.cumsum(0.5 * (slope[1:] + slope[:-1]) * np.diff(grid))])
    return np.interp(u, grid, f) - np.interp(zero, grid, f)


def _shape_directions(mesh: _Mesh, kind: np.ndarray, side: np.ndarray) -> np.ndarray:
    """(V, 3, 10): height, girth, shoulders-vs-hips, legs-vs-torso, arm length, head size,
    chest depth, belly, limb thickness, neck length."""
    p = mesh.vertices
    x, y, z = p.T
    sgn = np.where(kind == "torso", np.sign(x), side)  # limbs: the part's side, not x's sign
    radial = p - mesh.centre
    torso, head = kind == "torso", np.isin(kind, ("head", "ear"))
    arm, leg = np.isin(kind, ("arm", "hand", "thumb")), np.isin(kind, ("leg", "foot"))
    dirs = np.zeros((len(p), 3, NUM_BETAS))

    # 0: height, scaled about the pelvis (vertical more than horizontal).
    dirs[:, :, 0] = 0.035 * p * np.array([0.35, 1.0, 0.35])

    # 1: girth / weight: cross-sections grow, limbs move out with the torso.
    girth = {"torso": 0.08, "arm": 0.07, "leg": 0.07, "hand": 0.02, "thumb": 0.02, "foot": 0.02}
    k = np.array([girth.get(name, 0.02) for name in kind])
    k[torso] -= 0.04 * _step(y[torso], 0.46, 0.52)
    dirs[:, :, 1] = k[:, None] * radial
    dirs[arm, 0, 1] += sgn[arm] * 0.08 * 0.17
    dirs[leg, 0, 1] += sgn[leg] * 0.08 * 0.085

    # 2: broad shoulders and narrow hips (negative: the reverse).
    width = 0.08 * (2 * _step(y, 0.0, 0.38) - 1)
    dirs[torso, 0, 2] = width[torso] * x[torso]
    dirs[arm, 0, 2] = sgn[arm] * 0.08 * 0.175
    dirs[leg, 0, 2] = -sgn[leg] * 0.08 * 0.1

    # 3: long legs and a short torso; the feet move with the ankles.
    grid = np.linspace(-1.0, 1.0, 2001)
    slope = 0.05 * _step(grid, -0.87, -0.84) - 0.09 * _step(grid, -0.05, 0.05)
    slope += 0.04 * _step(grid, 0.46, 0.52)
    dirs[:, 1, 3] = _integral(y, grid, slope, 0.0)

    # 4: arm length: the arm stretches from the shoulder, the hand moves rigidly.
    ramp = _step(grid, 0.15, 0.2) * _step(grid, 0.7, 0.67)
    reach = arm | (torso & (y > 0.3))
    stretch = 0.07 * _integral(np.abs(x), grid, ramp, 0.0) * _step(y, 0.3, 0.38)
    dirs[reach, 0, 4] = (sgn * stretch)[reach]

    # 5: head size, scaled about the chin.
    chin = np.array([0.0, 0.565, 0.01])
    dirs[head, :, 5] = 0.06 * (p[head] - chin)
    dirs[torso, :, 5] = 0.06 * (p[torso] - chin) * _step(y[torso], 0.54, 0.6)[:, None]

    # 6: chest depth, mostly the front.
    rel = z - mesh.centre[:, 2]
    chest = np.exp(-0.5 * ((y - 0.32) / 0.08) ** 2) * np.where(rel > 0, 1.0, 0.4)
    dirs[torso, 2, 6] = (0.12 * rel * chest)[torso]

    # 7: belly.
    belly = np.exp(-0.5 * ((y - 0.1) / 0.08) ** 2)
    front = np.maximum(mesh.unit[:, 1], 0) ** 1.5
    dirs[torso, 2, 7] = (0.025 * belly * front)[torso]
    dirs[torso, 0, 7] = (0.05 * belly * x)[torso]

    # 8: limb thickness.
    thick = {"arm": 0.1, "leg": 0.1, "hand": 0.03, "thumb": 0.03, "foot": 0.03}
    k = np.array([thick.get(name, 0.0) for name in kind])
    k[torso] = 0.05 * _step(y[torso], 0.05, -0.06)  # the hips follow the thighs
    dirs[:, :, 8] = k[:, None] * radial

    # 9: neck length: everything above the neck base moves up.
    lift = 0.02 * _step(y, 0.47, 0.6) * _step(np.abs(x), 0.12, 0.07)
    dirs[torso, 1, 9] = lift[torso]
    dirs[head, 1, 9] = 0.02
    return dirs


# ---------------------------------------------------------------------------------------------
# Joint regressors: non-negative vertex weights (rows sum to 1) on a slab of one part's rings
# around each joint, solved so that the weighted mean is the joint exactly.


def _regressor_row(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(n,) weights >= 0, sum 1, ``weights @ points == target``, as uniform as possible."""
    n = len(points)
    lam = 1e3
    system = np.concatenate([lam * np.vstack([points.T, np.ones((1, n))]), np.eye(n)])
    rhs = np.concatenate([lam * np.append(target, 1.0), np.full(n, 1.0 / n)])
    weights, _ = nnls(system, rhs, maxiter=50 * n)
    return weights / weights.sum()


def _regressor(mesh: _Mesh, specs: list[_Tube], sources: list[tuple]) -> np.ndarray:
    """sources: (part name, target (3,), slab half-thickness) per joint -> (J, V)."""
    index = {spec.name: i for i, spec in enumerate(specs)}
    rows = np.zeros((len(sources), len(mesh.vertices)))
    for j, (name, target, half) in enumerate(sources):
        spec = specs[index[name]]
        centre = np.dot(np.asarray(target) - spec.origin, spec.axis)
        pick = np.nonzero((mesh.part == index[name]) & (np.abs(mesh.axial - centre) < half))[0]
        if name == "torso" and abs(target[0]) > 0.01:  # collars: that side of the chest only
            pick = pick[mesh.vertices[pick, 0] * np.sign(target[0]) > 0.01]
        rows[j, pick] = _regressor_row(mesh.vertices[pick], np.asarray(target))
    return rows


#: The part (left side for sided joints) whose rings surround each SMPL joint.
_JOINT_PART = {
    "pelvis": "torso", "spine1": "torso", "spine2": "torso", "spine3": "torso", "neck": "torso",
    "collar": "torso", "head": "head", "hip": "leg_l", "knee": "leg_l", "ankle": "leg_l",
    "foot": "foot_l", "shoulder": "arm_l", "elbow": "arm_l", "wrist": "arm_l", "hand": "hand_l",
}  # fmt: skip


def _sources(left: dict[str, tuple], centre: dict[str, tuple], order: tuple[str, ...]) -> list:
    """(part, target, slab half-thickness) per joint of ``order``; right joints mirror left."""
    out = []
    for name in order:
        if name in centre:
            part, target, half = centre[name]
        else:
            side, base = name.split("_", 1)
            part, target, half = left[base]
            if side == "right":
                part = part.replace("_l", "_r")
                target = tuple(np.asarray(target) * _MIRROR)
        out.append((part, target, half))
    return out


def _smpl_sources() -> list:
    half = {"head": 0.02, "neck": 0.02, "ankle": 0.025, "wrist": 0.02, "hand": 0.02, "foot": 0.025}
    centre = {n: (_JOINT_PART[n], p, half.get(n, 0.03)) for n, p in _CENTRE_JOINTS.items()}
    left = {n: (_JOINT_PART[n], p, half.get(n, 0.03)) for n, p in _LEFT_JOINTS.items()}
    return _sources(left, centre, SMPL24)


def _h36m_sources() -> list:
    centre = {
        "pelvis": ("torso", (0.0, -0.075, 0.0), 0.03),  # midway between the H36M hips
        "spine": ("torso", (0.0, 0.2, -0.03), 0.03),
        "thorax": ("torso", (0.0, 0.44, -0.01), 0.03),
        "neck_nose": ("head", (0.0, 0.625, 0.05), 0.02),
        "head_top": ("head", (0.0, 0.768, -0.008), 0.02),
    }
    left = {
        "hip": ("leg_l", (0.115, -0.075, 0.0), 0.03),
        "knee": ("leg_l", (0.1, -0.465, 0.005), 0.03),
        "ankle": ("leg_l", (0.09, -0.875, -0.035), 0.025),
        "shoulder": ("arm_l", (0.18, 0.445, -0.025), 0.03),
        "elbow": ("arm_l", (0.43, 0.44, -0.03), 0.03),
        "wrist": ("arm_l", (0.68, 0.44, -0.035), 0.02),
    }
    return _sources(left, centre, H36M17)


# ---------------------------------------------------------------------------------------------
# Landmark vertices and the final vertex order.


def _landmark_targets(specs: list[_Tube]) -> dict[str, tuple[str, tuple]]:
    """Keypoint name -> (part, a point at the keypoint); the nearest part vertex is used."""
    thumb = next(s for s in specs if s.name == "thumb_l")
    thumb_tip = tuple(np.asarray(thumb.origin) + 0.3 * np.asarray(thumb.axis))
    left = {
        "eye": ("head", (0.033, 0.69, 0.11)),
        "ear": ("ear_l", (0.11, 0.667, -0.005)),
        "thumb": ("thumb_l", thumb_tip),
        "index": ("hand_l", (0.872, 0.434, -0.016)),
        "middle": ("hand_l", (0.875, 0.434, -0.032)),
        "ring": ("hand_l", (0.872, 0.434, -0.048)),
        "pinky": ("hand_l", (0.866, 0.434, -0.064)),
        "BigToe": ("foot_l", (0.08, -0.925, 0.19)),
        "SmallToe": ("foot_l", (0.135, -0.93, 0.15)),
        "Heel": ("foot_l", (0.09, -0.95, -0.12)),
    }
    targets = {"nose": ("head", (0.0, 0.652, 0.2)), "head_top": ("head", (0.0, 0.9, -0.01))}
    for key in LANDMARK_VERTEX_IDS:
        if key in targets:
            continue
        side, base = key[0].lower(), key[1:]
        part, point = left[base]
        if side == "r":
            part, point = part.replace("_l", "_r"), tuple(np.asarray(point) * _MIRROR)
        targets[key] = (part, point)
    return targets


def _vertex_order(mesh: _Mesh, specs: list[_Tube]) -> np.ndarray:
    """(V,) old vertex index for each new index, putting each landmark at its SMPL vertex id."""
    index = {spec.name: i for i, spec in enumerate(specs)}
    order = np.arange(len(mesh.vertices))
    position = np.arange(len(mesh.vertices))  # where each old vertex currently sits
    chosen = set()
    for key, (part, point) in _landmark_targets(specs).items():
        candidates = np.nonzero(mesh.part == index[part])[0]
        old = candidates[np.argmin(np.linalg.norm(mesh.vertices[candidates] - point, axis=1))]
        if old in chosen:
            raise AssertionError(f"landmark {key} shares vertex {old} with another landmark")
        chosen.add(old)
        new = LANDMARK_VERTEX_IDS[key]
        here, displaced = position[old], order[new]
        order[new], order[here] = old, displaced
        position[old], position[displaced] = new, here
    return order


def _generate() -> tuple[dict[str, np.ndarray], np.ndarray]:
    mesh, specs = _build_mesh()
    kind, side = _part_labels(specs, mesh.part)
    weights = _skinning_weights(mesh.vertices, kind, side)
    shapedirs = _shape_directions(mesh, kind, side)
    j_regressor = _regressor(mesh, specs, _smpl_sources())
    h36m = _regressor(mesh, specs, _h36m_sources())
    order = _vertex_order(mesh, specs)
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    kintree = np.stack([np.asarray(SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    model = {
        "v_template": mesh.vertices[order].astype(np.float32),
        "f": new_index[mesh.faces].astype(np.int64),
        "weights": weights[order].astype(np.float32),
        "shapedirs": shapedirs[order].astype(np.float32),
        "posedirs": np.zeros((NUM_VERTICES, 3, NUM_POSE_BASIS), np.float32),
        "J_regressor": j_regressor[:, order].astype(np.float32),
        "kintree_table": kintree,
    }
    return model, h36m[:, order].astype(np.float32)


def build_synthetic_smpl() -> dict[str, np.ndarray]:
    """The synthetic body in SMPL's format: v_template (6890, 3), f (F, 3) int64,
    weights (6890, 24), shapedirs (6890, 3, 10), posedirs (6890, 3, 207) zeros,
    J_regressor (24, 6890), kintree_table (2, 24) int64 (root parent -1); float32, metres."""
    return _generate()[0]


def build_h36m_regressor() -> np.ndarray:
    """(17, 6890) Human3.6M-17 joint regressor of the synthetic body, rows in the order of the
    real ``J_regressor_h36m.npy`` (``H36M_REGRESSOR_ROWS``), so both files read the same way."""
    return _in_file_order(_generate()[1])


def _in_file_order(h36m: np.ndarray) -> np.ndarray:
    """Rows in ``H36M17`` order -> rows in ``H36M_REGRESSOR_ROWS`` order."""
    return h36m[[H36M17.index(name) for name in H36M_REGRESSOR_ROWS]]


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        write(fh)


def write_synthetic_body(out_dir: str | Path) -> Path:
    """Write ``SMPL_NEUTRAL.pkl`` (a dict of plain arrays plus a 0-d string ``generator_code``,
    SMPL's own file layout without chumpy) and ``J_regressor_h36m.npy`` atomically into
    ``out_dir``; returns the model path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, h36m = _generate()
    h36m = _in_file_order(h36m)
    model[GENERATOR_KEY] = np.array(code_digest(__name__))
    _atomic_write(out_dir / H36M_REGRESSOR_FILE, lambda fh: np.save(fh, h36m))
    path = out_dir / SMPL_FILE
    _atomic_write(path, lambda fh: pickle.dump(model, fh, protocol=4))
    return path


def synthetic_body_dir() -> Path:
    """``$INSTANCEHMR_CACHE/body``, else ``~/.cache/instancehmr/body``."""
    root = os.environ.get("INSTANCEHMR_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "instancehmr") / "body"


def _cached_generator(path: Path) -> str | None:
    try:
        return str(load_pickle(path)[GENERATOR_KEY])
    except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError):
        return None


def ensure_synthetic_body() -> Path:
    """Path of the cached synthetic ``SMPL_NEUTRAL.pkl``, generated on first use or when the
    cached ``generator_code`` differs from this code's."""
    out_dir = synthetic_body_dir()
    path = out_dir / SMPL_FILE
    if (
        _cached_generator(path) == code_digest(__name__)
        and (out_dir / H36M_REGRESSOR_FILE).is_file()
    ):
        return path
    return write_synthetic_body(out_dir)
