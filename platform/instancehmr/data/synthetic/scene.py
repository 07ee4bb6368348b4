"""Sampling one synthetic crowd scene: camera, people (pose, shape, placement), looks, background.

World frame: level, camera at the origin, x right, y down (gravity), z forward, metres; the
ground is the plane y = camera height. The camera is pitched down by ``pitch`` about x, so a
world point p is p_cam = R_pitch @ p. People stand on the ground, yawed any way, posed from a
few archetypes (standing, walking, running, arms raised / forward / crossed, waving, pointing,
crouching, sitting, bending, kneeling, lunging) plus Gaussian noise clipped to
:data:`~instancehmr.body.pose.JOINT_LIMITS`.

SMPL parameters are camera-frame: ``pose[:, 0]`` is the axis-angle of the full camera-frame global
orientation and camera-frame vertices are ``BodyModel(pose, betas) + transl`` (smplx's ``transl``:
added after skinning). ``occlusion`` sets how much people overlap in the image: the gap between
neighbours, as a fraction of their widths, shrinks as it grows; overlapping people stand at
different depths with disjoint footprints, so the nearer one occludes the farther one.

Shapes: N people, V = 6890 vertices, image (H, W) = (size, size).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import roma
import torch
from scipy.spatial.transform import Rotation

from instancehmr.body.joint_sets import CANONICAL_INDEX, SMPL24, flip_permutation
from instancehmr.body.pose import JOINT_LIMITS, MIRROR_SIGN
from instancehmr.body.smpl import BodyModel
from instancehmr.render.mesh import (
    MeshRenderer,
    RenderBuffers,
    interpolate,
    project,
    shade,
    transform,
)

OCCLUSION_AMOUNTS = {"none": 0.0, "light": 0.25, "moderate": 0.5, "severe": 0.8}
FOV_DEG = (50.0, 60.0)  # horizontal field of view
CAMERA_HEIGHT = (1.0, 2.0)  # metres above the ground
PITCH_DEG = (-3.0, 15.0)  # positive looks down
DEPTH = (2.0, 6.5)  # pelvis distance along the ground, metres
BETA_CLIP = 2.5

_J = {name: i for i, name in enumerate(SMPL24)}


def occlusion_amount(value: str | float) -> float:
    """A named occlusion level (``OCCLUSION_AMOUNTS``) or a number in [0, 1] -> [0, 1]."""
    if isinstance(value, str):
        if value not in OCCLUSION_AMOUNTS:
            raise ValueError(f"occlusion '{value}' is not one of {sorted(OCCLUSION_AMOUNTS)}")
        return OCCLUSION_AMOUNTS[value]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"occlusion must be one of {sorted(OCCLUSION_AMOUNTS)} or in [0, 1]")
    return float(value)


# ---------------------------------------------------------------------------------------------
# Poses


def _rot(axes: str, *degrees: float) -> np.ndarray:
    """Axis-angle (3,) of rotations about the parent's axes ``axes``, applied in order."""
    return Rotation.from_euler(axes, degrees, degrees=True).as_rotvec()


def _mirror(rotvec: np.ndarray) -> np.ndarray:
    return rotvec * MIRROR_SIGN


def _pose(left: dict[str, np.ndarray], right: dict[str, np.ndarray] | None = None, **centre):
    """(24, 3) pose from left-side joint rotations (mirrored onto the right unless ``right``
    names the right side's own, by left-side names) and centre joints."""
    pose = np.zeros((24, 3))
    for name, rotvec in left.items():
        pose[_J[f"left_{name}"]] = rotvec
        pose[_J[f"right_{name}"]] = _mirror(rotvec)
    for name, rotvec in (right or {}).items():
        pose[_J[f"right_{name}"]] = _mirror(rotvec)
    for name, rotvec in centre.items():
        pose[_J[name]] = rotvec
    return pose


_ARM_DOWN = {"shoulder": _rot("z", -78), "elbow": _rot("y", -12)}


def _stride(swing: float, knee: float, elbow: float) -> np.ndarray:
    """Walking / running: left leg forward, right leg back (knee bent), arms swinging."""
    return _pose(
        {"hip": _rot("x", -swing), "knee": _rot("x", 8), "shoulder": _rot("zx", -78, swing),
         "elbow": _rot("y", -elbow)},
        {"hip": _rot("x", swing * 0.6), "knee": _rot("x", knee),
         "shoulder": _rot("zx", -78, -swing), "elbow": _rot("y", -elbow)},
        spine1=_rot("x", 4),
    )  # fmt: skip


def _archetypes() -> dict[str, np.ndarray]:
    """Named (24, 3) poses from left-side rotations; ``pelvis`` leans the body from upright."""
    # fmt: off
    return {
        "stand": _pose(_ARM_DOWN),
        "stand_relaxed": _pose(
            {**_ARM_DOWN, "hip": _rot("z", 6), "elbow": _rot("y", -30)},
            {"hip": _rot("z", -2), "knee": _rot("x", 12)},
            head=_rot("y", 15),
        ),
        "walk": _stride(28, 35, 25),
        "run": _stride(45, 95, 85),
        "arms_raised": _pose(
            {"collar": _rot("z", 22), "shoulder": _rot("z", 58), "elbow": _rot("y", -10)},
            head=_rot("x", -15),
        ),
        "arms_forward": _pose({"shoulder": _rot("zy", -15, -80), "elbow": _rot("y", -15)}),
        "arms_crossed": _pose(
            {"shoulder": _rot("zy", -65, -35), "elbow": _rot("xy", -30, -125)},
            spine1=_rot("x", -5),
        ),
        "wave": _pose(
            {"shoulder": _rot("xz", -60, 10), "elbow": _rot("y", -100)},
            _ARM_DOWN,
        ),
        "point": _pose(
            {"shoulder": _rot("zy", -5, -75), "elbow": _rot("y", -5)},
            _ARM_DOWN,
            head=_rot("y", 20),
        ),
        "phone": _pose(
            _ARM_DOWN,
            {"shoulder": _rot("zy", -70, -30), "elbow": _rot("xy", -40, -140)},
            head=_rot("zy", -10, -10),
        ),
        "crouch": _pose(
            {"hip": _rot("xz", -120, 10), "knee": _rot("x", 135), "ankle": _rot("x", 35),
             "shoulder": _rot("zy", -50, -60), "elbow": _rot("y", -40)},
            pelvis=_rot("x", 25), spine1=_rot("x", 10), head=_rot("x", -25),
        ),
        "sit": _pose(
            {"hip": _rot("x", -88), "knee": _rot("x", 90), "shoulder": _rot("zy", -72, -25),
             "elbow": _rot("y", -55)},
            spine1=_rot("x", 8),
        ),
        "bend": _pose(
            {"hip": _rot("x", -60), "knee": _rot("x", 10), "shoulder": _rot("zx", -80, -60)},
            pelvis=_rot("x", 50), spine1=_rot("x", 15), spine2=_rot("x", 10),
            head=_rot("x", -35),
        ),
        "kneel": _pose(
            {"hip": _rot("x", -80), "knee": _rot("x", 85), **_ARM_DOWN},
            {"hip": _rot("x", 5), "knee": _rot("x", 95), "ankle": _rot("x", 30)},
        ),
        "lunge": _pose(
            {"hip": _rot("x", -70), "knee": _rot("x", 75), "shoulder": _rot("z", -20)},
            {"hip": _rot("x", 25), "knee": _rot("x", 20), "shoulder": _rot("z", -20)},
        ),
        "star": _pose({"hip": _rot("z", 25), "shoulder": _rot("z", 35), "elbow": _rot("y", -5)}),
    }
    # fmt: on


ARCHETYPES = _archetypes()
_ARCHETYPE_POSES = np.stack(list(ARCHETYPES.values()))
_FLIP = flip_permutation(SMPL24)
#: Per-joint standard deviation (radians) of the noise added to an archetype.
_NOISE = np.array([0.0, 0.12, 0.12, 0.06, 0.12, 0.12, 0.05, 0.08, 0.08, 0.05, 0.03, 0.03,
                   0.12, 0.05, 0.05, 0.15, 0.15, 0.15, 0.2, 0.2, 0.15, 0.15, 0.0, 0.0])  # fmt: skip


def sample_body_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 24, 3) poses: an archetype, mirrored half the time, plus noise, within the limits.

    Joint 0 (pelvis) holds the body's lean from upright; hand joints 22, 23 stay zero.
    """
    pose = _ARCHETYPE_POSES[rng.integers(len(_ARCHETYPE_POSES), size=n)].copy()
    mirror = rng.random(n) < 0.5
    pose[mirror] = pose[mirror][:, _FLIP] * np.array([1.0, -1.0, -1.0])
    pose += rng.normal(size=pose.shape) * _NOISE[:, None]
    pose[:, 0] += rng.normal(size=(n, 3)) * np.deg2rad(3)
    body = np.clip(pose[:, 1:], JOINT_LIMITS[1:, :, 0], JOINT_LIMITS[1:, :, 1])
    return np.concatenate([pose[:, :1], body], axis=1)


# ---------------------------------------------------------------------------------------------
# Camera and placement


@dataclass
class Camera:
    """Pinhole camera: intrinsics (3, 3), height above the ground (m), pitch (rad, positive
    looks down), square image side ``size``."""

    intrinsics: np.ndarray
    height: float
    pitch: float
    size: int

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) world -> camera rotation."""
        return Rotation.from_euler("x", self.pitch).as_matrix()


def sample_camera(rng: np.random.Generator, size: int) -> Camera:
    """Centred principal point, 50-60 degree horizontal field of view, height and pitch."""
    fov = np.deg2rad(rng.uniform(*FOV_DEG))
    focal = size / 2 / np.tan(fov / 2)
    centre = (size - 1) / 2
    intrinsics = np.array([[focal, 0, centre], [0, focal, centre], [0, 0, 1]])
    pitch = np.deg2rad(rng.uniform(*PITCH_DEG))
    return Camera(intrinsics, float(rng.uniform(*CAMERA_HEIGHT)), float(pitch), size)


@dataclass
class PosedPeople:
    """N posed people, camera frame: pose (N, 24, 3) axis-angle (joint 0: camera-frame global
    orientation), betas (N, 10), transl (N, 3), vertices (N, V, 3), joints (N, 48, 3); float32.
    ``ground`` (N, 3) world point on the ground under each pelvis (float64)."""

    pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    ground: np.ndarray


def pose_people(body: BodyModel, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray):
    """Skin N people: pose (N, 24, 3), betas (N, 10), transl (N, 3) -> float32 vertices
    (N, V, 3) and canonical joints (N, 48, 3) in the camera frame."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same floats whatever the caller's thread count
    try:
        rotmats = roma.rotvec_to_rotmat(torch.as_tensor(pose, dtype=torch.float32))
        with torch.no_grad():
            betas = torch.as_tensor(betas, dtype=torch.float32)
            out = body(rotmats[:, 0], rotmats[:, 1:], betas)
    finally:
        torch.set_num_threads(threads)
    shift = np.asarray(transl, np.float32)[:, None]
    return out.vertices.numpy() + shift, out.joints.numpy() + shift


def _overlaps(rng: np.random.Generator, n: int, amount: float) -> np.ndarray:
    """(n,) overlap of neighbouring people's boxes, as a fraction of the narrower width;
    negative values are gaps."""
    if amount == 0:
        return -rng.uniform(0.05, 0.3, n)
    return np.clip(rng.uniform(amount - 0.3, amount + 0.2, n), -0.2, 0.95)


def sample_people(
    rng: np.random.Generator,
    body: BodyModel,
    camera: Camera,
    n: int,
    occlusion: float,
    core: np.ndarray,
) -> PosedPeople:
    """Pose, shape and place ``n`` people on the ground in front of ``camera``; the overlap
    of people is measured on their ``core`` (V,) vertices (trunk and head)."""
    pose = sample_body_poses(rng, n)
    betas = np.clip(rng.normal(size=(n, body.num_betas)), -BETA_CLIP, BETA_CLIP)
    yaw = Rotation.from_euler("y", rng.uniform(0, 2 * np.pi, (n, 1)))
    upright = Rotation.from_euler("x", np.pi) * yaw * Rotation.from_rotvec(pose[:, 0])
    pose[:, 0] = (Rotation.from_matrix(camera.rotation) * upright).as_rotvec()
    pose, betas = pose.astype(np.float32), betas.astype(np.float32)
    vertices, joints = pose_people(body, pose, betas, np.zeros((n, 3)))
    world = transform(vertices.astype(np.float64), camera.rotation.T)
    pelvis = transform(joints[:, CANONICAL_INDEX["pelvis"]].astype(np.float64), camera.rotation.T)
    rel = world - pelvis[:, None]
    pelvis_y = camera.height - rel[..., 1].max(1)  # lowest vertex on the ground (y down)
    x_range = np.stack([rel[..., 0].min(1), rel[..., 0].max(1)], 1)
    z_range = np.stack([rel[..., 2].min(1), rel[..., 2].max(1)], 1)
    core_x = rel[:, core, 0]
    spacing = x_range if occlusion == 0 else np.stack([core_x.min(1), core_x.max(1)], 1)
    depth, lateral = _layout(rng, camera, pelvis_y, x_range, spacing, occlusion)
    depth, lateral = _separate(camera, pelvis_y, depth, lateral, x_range, z_range)
    target = np.stack([lateral, pelvis_y, depth], 1)  # pelvis, world
    transl = transform(target - pelvis, camera.rotation).astype(np.float32)
    ground = np.stack([lateral, np.full(n, camera.height), depth], 1)
    return PosedPeople(
        pose, betas, transl, vertices + transl[:, None], joints + transl[:, None], ground
    )


def _camera_depth(camera: Camera, height: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Camera z of world points at (y = height, z = depth) (x does not matter)."""
    return np.sin(camera.pitch) * height + np.cos(camera.pitch) * depth


def _layout(rng, camera, pelvis_y, x_range, spacing, occlusion):
    """(N,) pelvis depths and lateral positions (world). People stand side by side in a random
    order, the ``spacing`` (N, 2) lateral extent of each overlapping the next one's by the
    sampled fraction; the row is pushed back until every pelvis is in frame vertically and the
    row (full extents ``x_range`` (N, 2)) fits the width, then shifted randomly in the frame
    (now and then cropped at the sides, every pelvis in frame)."""
    n, size = len(pelvis_y), camera.size
    focal, cx = camera.intrinsics[0, 0], camera.intrinsics[0, 2]
    s, c = np.sin(camera.pitch), np.cos(camera.pitch)
    m = 0.85 * (size / 2) / focal  # bound on |y_cam / z_cam| of a pelvis
    depth = np.maximum(rng.uniform(*DEPTH, n), pelvis_y * (c - m * s) / (s + m * c))
    order, overlap = rng.permutation(n), _overlaps(rng, n - 1, occlusion)

    def row(depth):  # pelvis columns and full box edges (N, 2), pixels
        scale = focal / _camera_depth(camera, pelvis_y, depth)
        width = (spacing[:, 1] - spacing[:, 0]) * scale
        edge = np.zeros(n)  # left end of each spacing extent
        for k, (a, b) in enumerate(itertools.pairwise(order)):
            edge[b] = edge[a] + width[a] - overlap[k] * min(width[a], width[b])
        centre = edge - spacing[:, 0] * scale
        return centre, centre[:, None] + x_range * scale[:, None]

    centre, edges = row(depth)
    depth = depth * max(1.0, np.ptp(edges) / (0.92 * size))
    centre, edges = row(depth)
    lo, hi = 0.04 * size - edges.min(), 0.96 * size - edges.max()
    if hi < lo or rng.random() < 0.2:
        lo, hi = 0.05 * size - centre.min(), 0.95 * size - centre.max()
    centre += rng.uniform(lo, max(lo, hi))
    return depth, (centre - cx) * _camera_depth(camera, pelvis_y, depth) / focal


def _separate(camera, pelvis_y, depth, lateral, x_range, z_range):
    """Push people back along their lines of sight (same pelvis pixel) until no two ground
    footprints (x, z boxes) intersect: bodies never interpenetrate. The nearest person that
    clashes with someone nearer moves first, behind all of them."""
    depth, lateral = depth.copy(), lateral.copy()
    pixel = lateral / _camera_depth(camera, pelvis_y, depth)
    for _ in range(len(depth) ** 2):
        x = lateral[:, None] + x_range  # (N, 2)
        z = depth[:, None] + z_range
        clash = (x[:, None, 0] < x[None, :, 1]) & (x[None, :, 0] < x[:, None, 1])
        clash &= (z[:, None, 0] < z[None, :, 1]) & (z[None, :, 0] < z[:, None, 1])
        rank = np.argsort(np.argsort(depth, kind="stable"))
        clash &= rank[:, None] < rank[None, :]  # [i, j]: i nearer than j
        if not clash.any():
            break
        b = np.flatnonzero(clash.any(0))[np.argmin(depth[clash.any(0)])]
        depth[b] = (z[clash[:, b], 1] - z_range[b, 0]).max() + 0.05
        lateral[b] = pixel[b] * _camera_depth(camera, pelvis_y[b], depth[b])
    return depth, lateral


# ---------------------------------------------------------------------------------------------
# Looks: per-vertex colours by body region, light


SKIN, HAIR, TORSO, UPPER_ARM, FOREARM, HIPS, THIGH, SHIN, SHOE = range(9)
_REGION_OF_PART = {
    "pelvis": HIPS, "left_hip": THIGH, "spine1": TORSO, "left_knee": SHIN, "spine2": TORSO,
    "left_ankle": SHOE, "spine3": TORSO, "left_foot": SHOE, "neck": SKIN, "left_collar": TORSO,
    "head": SKIN, "left_shoulder": UPPER_ARM, "left_elbow": FOREARM, "left_wrist": SKIN,
    "left_hand": SKIN,
}  # fmt: skip
_SKIN_RANGE = np.array([[0.97, 0.82, 0.71], [0.33, 0.21, 0.15]])  # light .. dark
_HAIR = np.array([[0.08, 0.06, 0.05], [0.3, 0.18, 0.1], [0.75, 0.6, 0.35], [0.6, 0.6, 0.6]])


def body_regions(body: BodyModel) -> np.ndarray:
    """(V,) clothing region of each vertex (``SKIN`` ... ``SHOE``) from its dominant skinning
    joint; hair is the top and back of the head."""
    part = body.smpl.lbs_weights.argmax(1).numpy()
    by_joint = np.array([_REGION_OF_PART[n.replace("right_", "left_")] for n in SMPL24])
    region = by_joint[part]
    rest = body.smpl.v_template.numpy()
    head_y = rest[part == _J["head"], 1]
    top = head_y.min() + 0.62 * np.ptp(head_y)
    back = (rest[:, 2] < -0.03) & (rest[:, 1] > head_y.min() + 0.3 * np.ptp(head_y))
    region[(part == _J["head"]) & ((rest[:, 1] > top) | back)] = HAIR
    return region


@dataclass
class Looks:
    """Per-vertex albedo (N, V, 3) in [0, 1], light direction (3,) towards the light (camera
    frame, unit) and ambient share in [0, 1]."""

    albedo: np.ndarray
    light: np.ndarray
    ambient: float


def _cloth(rng: np.random.Generator, n: int, dark: float = 0.0) -> np.ndarray:
    """(n, 3) RGB garment colours: any hue, mostly muted, some dark or light."""
    hsv = np.stack(
        [rng.uniform(0, 360, n), rng.beta(1.2, 2.0, n), rng.uniform(0.15, 1.0, n) * (1 - dark)],
        axis=1,
    ).astype(np.float32)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def sample_looks(rng: np.random.Generator, regions: np.ndarray, rest: np.ndarray, n: int) -> Looks:
    """Skin tone, hair, shirt (plain or striped, long / short / no sleeves), trousers or
    shorts and shoes per person; ``rest`` (V, 3) rest-pose vertices place the stripes."""
    skin = _SKIN_RANGE[0] + rng.random((n, 1)) * (_SKIN_RANGE[1] - _SKIN_RANGE[0])
    skin *= rng.uniform(0.92, 1.05, (n, 3))
    hair = _HAIR[rng.integers(len(_HAIR), size=n)] * rng.uniform(0.8, 1.2, (n, 1))
    bald = rng.random(n) < 0.1
    hair[bald] = skin[bald]
    shirt, stripe, trousers = _cloth(rng, n), _cloth(rng, n), _cloth(rng, n, dark=0.3)
    shoes = _cloth(rng, n, dark=0.5)
    colours = np.zeros((n, 9, 3))
    colours[:, SKIN], colours[:, HAIR], colours[:, SHOE] = skin, hair, shoes
    colours[:, [TORSO, UPPER_ARM, FOREARM]] = shirt[:, None]
    colours[:, [HIPS, THIGH, SHIN]] = trousers[:, None]
    sleeves = rng.random(n)
    colours[sleeves < 0.45, FOREARM] = skin[sleeves < 0.45]
    colours[sleeves < 0.08, UPPER_ARM] = skin[sleeves < 0.08]
    shorts = rng.random(n) < 0.25
    colours[shorts, SHIN] = skin[shorts]
    albedo = colours[:, regions]  # (N, V, 3)
    striped = (rng.random(n) < 0.3)[:, None] & np.isin(regions, (TORSO, UPPER_ARM))[None]
    phase = np.sin(rest[:, 1] * rng.uniform(40, 120, (n, 1)))  # horizontal stripes
    albedo = np.where((striped & (phase > 0))[..., None], stripe[:, None], albedo)
    light = np.array([rng.uniform(-1, 1), rng.uniform(-1.2, -0.1), -rng.uniform(0.4, 1.2)])
    return Looks(
        albedo=np.clip(albedo, 0, 1).astype(np.float32),
        light=(light / np.linalg.norm(light)).astype(np.float32),
        ambient=float(rng.uniform(0.25, 0.5)),
    )


# ---------------------------------------------------------------------------------------------
# Backgrounds: a textured ground plane seen by the scene's camera, and behind the people either
# a textured wall (indoors) or a sky with clouds above a skyline (outdoors).

_TEXTURE = 128  # texture side, pixels


def _noise(rng: np.random.Generator, size: int, octaves=(4, 8, 16, 32)) -> np.ndarray:
    """(size, size) smooth fractal noise in [0, 1]."""
    out = np.zeros((size, size), np.float32)
    for k, cells in enumerate(octaves):
        grid = rng.random((cells, cells)).astype(np.float32)
        out += cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC) / 2**k
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _texture(rng: np.random.Generator) -> np.ndarray:
    """(T, T, 3) float32 pattern: checker, tiles, planks, bricks, noise or blobs."""
    t = _TEXTURE
    a, b = _cloth(rng, 1)[0], _cloth(rng, 1)[0]
    kind = rng.integers(6)
    yy, xx = np.mgrid[0:t, 0:t]
    cells = int(rng.choice([2, 4, 8]))
    if kind == 0:  # checker
        mix = ((xx * cells // t + yy * cells // t) % 2).astype(np.float32)
    elif kind == 1:  # tiles with grout lines
        mix = (((xx * cells) % t < 3) | ((yy * cells) % t < 3)).astype(np.float32)
    elif kind == 2:  # planks: stripes with per-plank shade and grain
        plank = xx * cells * 2 // t
        mix = rng.random(cells * 2)[plank] * 0.6 + 0.4 * _noise(rng, t, (2, 32, 64))
    elif kind == 3:  # bricks
        row = yy * cells * 2 // t
        shifted = (xx + (row % 2) * t // (2 * cells)) * cells % t
        mix = (((yy * cells * 2) % t < 3) | (shifted < 3)).astype(np.float32)
    elif kind == 4:  # noise: grass, asphalt, carpet, plaster
        mix = _noise(rng, t)
    else:  # soft blobs
        mix = np.zeros((t, t), np.float32)
        for _ in range(12):
            centre = rng.integers(0, t, 2).tolist()
            axes = rng.integers(4, t // 3, 2).tolist()
            cv2.ellipse(mix, centre, axes, rng.uniform(0, 180), 0, 360, rng.random(), -1)
        mix = cv2.GaussianBlur(mix, (0, 0), 3)
    grain = 1 + 0.15 * (_noise(rng, t, (16, 64)) - 0.5)
    return ((a + mix[..., None] * (b - a)) * grain[..., None]).astype(np.float32)


def _sample(texture: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Texture (T, T[, C]) at float32 texel coordinates (u, v) of any range, tiled with
    mirrored copies (seamless)."""
    tile = np.concatenate([texture, texture[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[::-1]], axis=0)
    return cv2.remap(tile, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def sample_background(
    rng: np.random.Generator, camera: Camera, far: float, ground: np.ndarray
) -> np.ndarray:
    """(H, W, 3) uint8 RGB background for ``camera``: a textured ground plane with soft
    contact shadows around ``ground`` (N, 3) world points, and beyond ``far`` metres a wall or
    a skyline; random blurred shapes, a colour shift, a blur. Drawn at half resolution."""
    half = camera.size // 2
    k = np.diag([0.5, 0.5, 1.0]) @ camera.intrinsics
    k[:2, 2] -= 0.25  # pixel centres stay at integers
    to_world = (camera.rotation.T @ np.linalg.inv(k)).astype(np.float32)
    pixels = np.arange(half, dtype=np.float32)[:, None]
    d = (pixels * to_world[:, 0] + to_world[:, 2])[None] + (pixels * to_world[:, 1])[:, None]
    down = np.maximum(d[..., 1], 1e-6)
    t_ground = np.where(d[..., 1] > 1e-6, camera.height / down, np.inf).astype(np.float32)
    reach = np.minimum(t_ground, 300.0)
    gx, gz = reach * d[..., 0], reach * d[..., 2]
    texels = np.float32(_TEXTURE / rng.uniform(1.0, 6.0))  # per metre
    floor = _sample(_texture(rng), gx * texels, gz * texels)
    _shadows(floor, gx, gz, ground, camera, k)
    distance = far + rng.uniform(1.0, 10.0)
    if rng.random() < 0.5:  # indoors: a wall
        t_far = distance / np.maximum(d[..., 2], 1e-6)
        texels = np.float32(_TEXTURE / rng.uniform(0.5, 3.0))
        behind = _sample(_texture(rng), t_far * d[..., 0] * texels, t_far * d[..., 1] * texels)
    else:
        behind = _sky(rng, d, distance)
        t_far = np.full_like(t_ground, np.inf)
    haze = rng.uniform(0.5, 1.0, 3).astype(np.float32)
    fog = 1 - np.exp(t_ground * np.float32(-1 / rng.uniform(20, 80)))[..., None]
    floor += fog * (haze - floor)
    image = np.where((t_ground < t_far)[..., None], floor, behind)
    _clutter(rng, image)
    image *= (rng.uniform(0.8, 1.15, 3) * rng.uniform(0.7, 1.2)).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.5))
    image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    return cv2.resize(image, (camera.size, camera.size), interpolation=cv2.INTER_LINEAR)


def _shadows(floor, gx, gz, ground, camera, intrinsics, radius=0.3) -> None:
    """Darken ``floor`` (h, w, 3) in place with a Gaussian blob of sigma ``radius`` (m) around
    each ``ground`` (N, 3) point; gx, gz (h, w) ground coordinates of the pixels. Only the
    window where a blob exceeds 1% is computed."""
    corners = np.array([[dx, 0, dz] for dx in (-3, 3) for dz in (-3, 3)]) * radius
    for point in ground:
        pixels = project(transform(point + corners, camera.rotation), intrinsics)
        (x0, y0), (x1, y1) = np.floor(pixels.min(0)), np.ceil(pixels.max(0)) + 1
        window = np.s_[max(int(y0), 0) : max(int(y1), 0), max(int(x0), 0) : max(int(x1), 0)]
        square = np.square(gx[window] - point[0]) + np.square(gz[window] - point[2])
        floor[window] *= 1 - 0.45 * np.exp(square * np.float32(-0.5 / radius**2))[..., None]


def _clutter(rng: np.random.Generator, image: np.ndarray) -> None:
    """Blend up to 8 random blurred shapes (ellipses, boxes, strokes) into ``image`` in place."""
    for _ in range(int(rng.integers(0, 9))):
        side = int(rng.integers(8, image.shape[0] // 2))
        mask = np.zeros((side, side), np.float32)
        middle, half = (side // 2, side // 2), side // 4
        kind = rng.integers(3)
        if kind == 0:
            axes = rng.integers(2, half + 1, 2).tolist()
            cv2.ellipse(mask, middle, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        elif kind == 1:
            cv2.rectangle(mask, tuple(rng.integers(0, half, 2).tolist()), middle, 1.0, -1)
        else:
            points = rng.integers(half, side - half, (int(rng.integers(2, 5)), 1, 2))
            cv2.polylines(mask, [points.astype(np.int32)], False, 1.0, int(rng.integers(1, 6)))
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.5, 3.0))[..., None]
        y, x = rng.integers(-side // 2, image.shape[0] - side // 2, 2)
        region = image[max(y, 0) : y + side, max(x, 0) : x + side]
        mask = mask[max(-y, 0) :, max(-x, 0) :][: region.shape[0], : region.shape[1]]
        region += mask * rng.uniform(0.3, 0.9) * (_cloth(rng, 1)[0] - region)


def _sky(rng: np.random.Generator, d: np.ndarray, distance: float) -> np.ndarray:
    """(h, w, 3) float32 sky with clouds above a skyline of buildings or hills ``distance``
    metres away; d (h, w, 3) world directions."""
    elevation = -d[..., 1] / np.sqrt(np.einsum("...c,...c->...", d, d))
    horizon, zenith = rng.uniform(0.6, 1.0, (2, 3)).astype(np.float32) * [[1], [0.8]]
    sky = horizon + np.clip(elevation * 2.5, 0, 1)[..., None] * (zenith - horizon)
    up = np.float32(20) / np.maximum(-d[..., 1], 1e-3)  # texels on a cloud layer
    cover = np.clip(_sample(_noise(rng, _TEXTURE), d[..., 0] * up, d[..., 2] * up) * 2 - 1, 0, 1)
    sky += (cover * rng.uniform(0, 0.8))[..., None] * (1 - sky)
    columns = d.shape[1]
    heights = rng.uniform(1, 15, int(rng.integers(4, 30)))  # metres, one per block
    blocks = np.repeat(heights, -(-columns // len(heights)))[:columns].astype(np.float32)
    if rng.random() < 0.5:  # hills or trees rather than buildings
        blocks = cv2.GaussianBlur(blocks[None], (0, 9), 4)[0]
    skyline = np.arctan2(blocks, distance * 3)[None]
    rows, cols = np.mgrid[0 : d.shape[0], 0:columns].astype(np.float32) * rng.uniform(0.5, 2.0)
    block = _sample(_texture(rng), cols, rows) * np.float32(rng.uniform(0.4, 0.9))
    block += rng.uniform(0.2, 0.6) * (horizon - block)  # aerial haze
    return np.where((elevation < skyline)[..., None], block, sky).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Scenes


@dataclass
class Scene:
    """Everything one image is drawn from; ``background`` (H, W, 3) uint8 RGB, ``blur`` the
    sigma (pixels) of the final softening."""

    camera: Camera
    people: PosedPeople
    looks: Looks
    background: np.ndarray
    blur: float


#: Body parts whose lateral extent measures how much neighbours overlap (trunk and head).
_CORE_PARTS = (
    "pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
)  # fmt: skip


class CrowdGenerator:
    """Samples and draws scenes with one body model (and what every scene reuses)."""

    def __init__(self, body: BodyModel):
        self.body = body
        self.renderer = MeshRenderer(body.faces)
        self.regions = body_regions(body)
        self.rest = body.smpl.v_template.numpy()
        part = body.smpl.lbs_weights.argmax(1).numpy()
        self.core = np.isin(part, [_J[n] for n in _CORE_PARTS])

    def sample(
        self, rng: np.random.Generator, size: int, max_people: int, occlusion: str | float
    ) -> Scene:
        """A scene of 1..``max_people`` people; ``occlusion`` a level or a number in [0, 1]."""
        amount = occlusion_amount(occlusion)
        camera = sample_camera(rng, size)
        n = int(rng.integers(1, max_people + 1))
        people = sample_people(rng, self.body, camera, n, amount, self.core)
        looks = sample_looks(rng, self.regions, self.rest, n)
        far = float(people.ground[:, 2].max()) + 1.0
        background = sample_background(rng, camera, far, people.ground)
        return Scene(camera, people, looks, background, float(rng.uniform(0.4, 0.8)))

    def draw(self, scene: Scene) -> tuple[np.ndarray, RenderBuffers]:
        """(H, W, 3) uint8 RGB image and the render buffers of ``scene``."""
        size = scene.camera.size
        buffers = self.renderer.render(scene.people.vertices, scene.camera.intrinsics, size, size)
        albedo = interpolate(scene.looks.albedo, self.renderer.faces, buffers)
        image = shade(buffers, albedo, scene.background, scene.looks.light, scene.looks.ambient)
        return cv2.GaussianBlur(image, (0, 0), scene.blur), buffers  # anti-aliasing, softness
