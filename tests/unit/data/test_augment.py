"""Augmentation: the image and every label move together, flips swap sides, 3-D stays consistent."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import roma
import torch

from instancehmr.body.joint_sets import CANONICAL_INDEX, NUM_CANONICAL, flip_permutation
from instancehmr.data.augment import (
    Augmentation,
    apply_augmentation,
    augment_persons,
    augmentation_affine,
    identity_augmentation,
    rotation_3d,
    sample_augmentation,
)
from instancehmr.data.schema import (
    VIS_OCCLUDED,
    VIS_OUT_OF_FRAME,
    VIS_UNLABELLED,
    VIS_VISIBLE,
    Person,
)
from instancehmr.geometry import letterbox

H, W, S = 150, 220, 160  # landscape image, square network input
LW, RW = CANONICAL_INDEX["left_wrist"], CANONICAL_INDEX["right_wrist"]
#: Dots: joint -> (x, y) in the original image, and a colour only that joint's dot has.
DOTS = {
    "left_wrist": ((150.3, 60.6), (255, 0, 0)),
    "right_wrist": ((60.8, 62.2), (0, 255, 0)),
    "head": ((104.5, 30.0), (0, 0, 255)),
    "left_ankle": ((130.0, 120.4), (255, 255, 0)),
    "right_ankle": ((80.6, 118.9), (0, 255, 255)),
}
SIGMA = 1.5  # dot radius (Gaussian sigma), original pixels


def _dot_image() -> np.ndarray:
    """Black image with a Gaussian dot of its own colour at each joint of ``DOTS``."""
    ys, xs = np.mgrid[0:H, 0:W]
    image = np.zeros((H, W, 3))
    for (x, y), colour in DOTS.values():
        blob = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * SIGMA**2))
        image += blob[..., None] * np.array(colour)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _dot_person() -> Person:
    kp = np.zeros((NUM_CANONICAL, 2), np.float32)
    vis = np.zeros(NUM_CANONICAL, np.int8)
    for name, ((x, y), _) in DOTS.items():
        kp[CANONICAL_INDEX[name]] = (x, y)
        vis[CANONICAL_INDEX[name]] = VIS_VISIBLE
    box = np.array([60.0, 30.0, 151.0, 121.0], np.float32)
    return Person(kp, vis, box)


def _dot_at(image: np.ndarray, xy: np.ndarray, radius: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Brightest pixel and intensity centroid near ``xy``, and the colour there."""
    cx, cy = round(float(xy[0])), round(float(xy[1]))
    y0, x0 = max(cy - radius, 0), max(cx - radius, 0)
    patch = image[y0 : cy + radius + 1, x0 : cx + radius + 1].astype(np.float64)
    intensity = patch.sum(-1)
    peak = np.unravel_index(intensity.argmax(), intensity.shape)
    ys, xs = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
    centroid = np.array([(xs * intensity).sum(), (ys * intensity).sum()]) / intensity.sum()
    return np.array([x0, y0]) + centroid, patch[peak]


def _assert_dots_follow(image: np.ndarray, person: Person, aug: Augmentation) -> int:
    """Each labelled in-frame output joint sits on a dot whose colour is the colour drawn at the
    joint that label now describes. Returns how many dots were checked."""
    perm = flip_permutation() if aug.flip else np.arange(NUM_CANONICAL)
    checked = 0
    for name in DOTS:
        j = CANONICAL_INDEX[name]
        xy = person.keypoints_2d[j]
        if person.keypoints_2d_vis[j] == VIS_OUT_OF_FRAME:
            assert not ((xy >= -0.5) & (xy < S - 0.5)).all()
            continue
        assert person.keypoints_2d_vis[j] == VIS_VISIBLE
        if not ((xy > 5) & (xy < S - 6)).all():
            continue  # the dot is cut by the border: its centroid is biased
        centroid, colour = _dot_at(image, xy)
        drawn_at = next(n for n in DOTS if CANONICAL_INDEX[n] == perm[j])
        expected = np.array(DOTS[drawn_at][1], np.float64)
        assert colour.max() > 60, f"{name}: no dot at {xy}"
        cosine = colour @ expected / (np.linalg.norm(colour) * np.linalg.norm(expected))
        assert cosine > 0.97, f"{name}: colour {colour} is not the {drawn_at} dot's"
        np.testing.assert_allclose(centroid, xy, atol=0.35, err_msg=name)
        checked += 1
    return checked


CENTER = ((W - 1) / 2, (H - 1) / 2)
DETERMINISTIC = {
    "identity": identity_augmentation(H, W),
    "crop": Augmentation((120.0, 70.0), 150.0),
    "rotation": Augmentation(CENTER, float(W), rotation_deg=27.0),
    "flip": Augmentation(CENTER, float(W), flip=True),
    "all": Augmentation((100.0, 80.0), 170.0, rotation_deg=-22.0, flip=True),
    "zoom out": Augmentation((110.0, 70.0), 300.0, rotation_deg=12.0, flip=True),
}
RANDOM_CFG = SimpleNamespace(
    crop_scale=[0.5, 1.1],
    rotation_deg=40.0,
    rotation_prob=0.7,
    flip_prob=0.5,
    color_jitter=0.0,
    color_jitter_prob=0.0,
)


@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_a_dot_drawn_at_a_joint_moves_with_the_joint(name):
    aug = DETERMINISTIC[name]
    image, (person,) = apply_augmentation(_dot_image(), [_dot_person()], aug, S)
    assert image.shape == (S, S, 3) and image.dtype == np.uint8
    assert _assert_dots_follow(image, person, aug) == len(DOTS)


def test_dots_follow_joints_under_random_augmentations():
    checked, flips, rotations = 0, 0, 0
    for seed in range(24):
        aug = sample_augmentation(np.random.default_rng(seed), H, W, RANDOM_CFG)
        image, (person,) = apply_augmentation(_dot_image(), [_dot_person()], aug, S)
        checked += _assert_dots_follow(image, person, aug)
        flips += aug.flip
        rotations += aug.rotation_deg != 0
    assert checked > 60 and flips > 3 and rotations > 3  # the draws did exercise everything


def test_after_a_flip_left_labels_name_what_looks_like_a_left_joint():
    # The person faces the camera: their left wrist (red dot) is on the image's right side.
    person = _dot_person()
    assert person.keypoints_2d[LW, 0] > person.keypoints_2d[RW, 0]
    aug = Augmentation(CENTER, float(W), flip=True)
    image, (flipped,) = apply_augmentation(_dot_image(), [person], aug, S)
    # In the mirrored image a person facing the camera still has "left" on the image's right,
    # and the joint there is the physical right wrist: the green dot.
    assert flipped.keypoints_2d[LW, 0] > flipped.keypoints_2d[RW, 0]
    _, colour_at_left_label = _dot_at(image, flipped.keypoints_2d[LW])
    _, colour_at_right_label = _dot_at(image, flipped.keypoints_2d[RW])
    assert colour_at_left_label.argmax() == 1 and colour_at_left_label[0] < 20  # green
    assert colour_at_right_label.argmax() == 0 and colour_at_right_label[1] < 20  # red
    # The red dot (physical left wrist) moved to where the image's mirror puts it.
    np.testing.assert_allclose(flipped.keypoints_2d[RW, 0], S - 1 - _letterboxed(person)[LW, 0])


def _letterboxed(person: Person) -> np.ndarray:
    affine = letterbox(H, W, S).numpy().astype(np.float64)
    return person.keypoints_2d @ affine[:, :2].T + affine[:, 2]


@pytest.mark.parametrize(("height", "width"), [(150, 220), (220, 150), (64, 64), (33, 100)])
def test_identity_augmentation_is_the_letterbox(height, width):
    aug = identity_augmentation(height, width)
    expected = letterbox(height, width, S).numpy()
    np.testing.assert_allclose(augmentation_affine(aug, S), expected, atol=1e-5)
    no_change = SimpleNamespace(
        crop_scale=[1.0, 1.0],
        rotation_deg=30.0,
        rotation_prob=0.0,
        flip_prob=0.0,
        color_jitter=0.1,
        color_jitter_prob=0.0,
    )
    sampled = sample_augmentation(np.random.default_rng(3), height, width, no_change)
    np.testing.assert_allclose(augmentation_affine(sampled, S), expected, atol=1e-5)
    assert sampled.color is None and not sampled.flip and sampled.rotation_deg == 0


def test_labelled_keypoints_pushed_out_of_frame_are_coded_not_lost():
    person = _dot_person()
    person.keypoints_2d_vis[CANONICAL_INDEX["head"]] = VIS_OCCLUDED
    person.keypoints_2d_vis[CANONICAL_INDEX["right_ankle"]] = VIS_OCCLUDED
    aug = Augmentation((140.0, 95.0), 80.0)  # keeps the right: left wrist and ankle
    (out,) = augment_persons([person], aug, S)
    affine = augmentation_affine(aug, S)
    vis = out.keypoints_2d_vis
    for name, code in [
        ("left_wrist", VIS_VISIBLE),
        ("left_ankle", VIS_VISIBLE),
        ("right_wrist", VIS_OUT_OF_FRAME),
        ("head", VIS_OUT_OF_FRAME),
        ("right_ankle", VIS_OUT_OF_FRAME),
    ]:
        j = CANONICAL_INDEX[name]
        assert vis[j] == code, name
        expected = person.keypoints_2d[j] @ affine[:, :2].T + affine[:, 2]
        np.testing.assert_allclose(out.keypoints_2d[j], expected, rtol=1e-6)  # position kept
    unlabelled = person.keypoints_2d_vis == VIS_UNLABELLED
    assert (vis[unlabelled] == VIS_UNLABELLED).all() and not out.keypoints_2d[unlabelled].any()
    # A joint already out of frame stays so, even where the augmented input covers its position.
    person.keypoints_2d_vis[CANONICAL_INDEX["head"]] = VIS_OUT_OF_FRAME
    (out,) = augment_persons([person], identity_augmentation(H, W), S)
    assert out.keypoints_2d_vis[CANONICAL_INDEX["head"]] == VIS_OUT_OF_FRAME


def test_the_box_is_the_extent_of_its_transformed_corners():
    person = _dot_person()
    aug = Augmentation((100.0, 80.0), 170.0, rotation_deg=30.0, flip=True)
    (out,) = augment_persons([person], aug, S)
    affine = augmentation_affine(aug, S)
    x0, y0, x1, y1 = person.box
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ affine[:, :2].T + affine[:, 2]
    np.testing.assert_allclose(out.box, [*corners.min(0), *corners.max(0)], rtol=1e-6)
    assert out.box[0] < out.box[2] and out.box[1] < out.box[3]


def _posed_person(body, seed: int = 0) -> tuple[Person, torch.Tensor]:
    """A person posed with the body model: 3-D joints (camera frame), SMPL parameters and 2-D
    keypoints projected with a pinhole camera (f = 300, principal point at CENTER)."""
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(24, 3, generator=g, dtype=torch.float64) * 0.3
    pose[0] = torch.tensor([np.pi, 0, 0]) + 0.3 * torch.randn(3, generator=g, dtype=torch.float64)
    betas = torch.randn(10, generator=g, dtype=torch.float64)
    transl = np.array([0.3, -0.2, 4.0])
    joints = _run_body(body, pose.numpy().reshape(72), betas.numpy(), transl)
    uv = 300 * joints[:, :2] / joints[:, 2:] + np.array(CENTER)
    vis = np.full(NUM_CANONICAL, VIS_VISIBLE, np.int8)
    person = Person(
        keypoints_2d=uv.astype(np.float32),
        keypoints_2d_vis=vis,
        box=np.concatenate([uv.min(0), uv.max(0)]).astype(np.float32),
        keypoints_3d=joints.astype(np.float32),
        keypoints_3d_valid=np.ones(NUM_CANONICAL, bool),
        smpl_pose=pose.numpy().reshape(72).astype(np.float32),
        smpl_betas=betas.numpy().astype(np.float32),
        smpl_transl=transl.astype(np.float32),
        smpl_source="gt",
    )
    return person, betas


def _run_body(body, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray) -> np.ndarray:
    """(48, 3) camera-frame joints of SMPL parameters (smplx convention: transl added last)."""
    rot = roma.rotvec_to_rotmat(torch.as_tensor(pose, dtype=torch.float32).view(24, 3))
    with torch.no_grad():
        out = body(rot[None, 0], rot[None, 1:], torch.as_tensor(betas, dtype=torch.float32)[None])
    return out.joints[0].double().numpy() + np.asarray(transl, np.float64)


def _rest_pelvis(body, betas: np.ndarray) -> np.ndarray:
    return _run_body(body, np.zeros(72), betas, np.zeros(3))[CANONICAL_INDEX["pelvis"]]


@pytest.mark.parametrize(
    "aug",
    [
        Augmentation(CENTER, float(W), flip=True),
        Augmentation(CENTER, float(W), rotation_deg=25.0),
        Augmentation(CENTER, float(W), rotation_deg=-35.0, flip=True),
    ],
    ids=["flip", "rotation", "rotation+flip"],
)
def test_the_body_model_on_the_augmented_pose_gives_the_augmented_joints(body, aug):
    """flip_pose's (a, -b, -c) mirror of the camera-frame global orientation is the camera-frame
    reflection x -> -x, and the rotation left-multiplies the global orientation with the same
    matrix that rotates the 3-D joints: the body model run on the augmented SMPL parameters
    reproduces the augmented 3-D joints (flip permutation included), up to the translation
    (M R3 - I) j0 that smpl_transl cannot carry without the body's rest pelvis j0."""
    person, betas = _posed_person(body)
    (out,) = augment_persons([person], aug, S)
    posed = _run_body(body, out.smpl_pose, out.smpl_betas, out.smpl_transl)
    j0 = _rest_pelvis(body, betas.numpy())
    offset = (rotation_3d(aug) - np.eye(3)) @ j0
    np.testing.assert_allclose(posed + offset, out.keypoints_3d, atol=2e-4)
    # The mirrored body really is a mirror image: relative to the pelvis, x changes sign.
    if aug.flip and aug.rotation_deg == 0:
        rel = person.keypoints_3d - person.keypoints_3d[0]
        rel_out = out.keypoints_3d - out.keypoints_3d[0]
        np.testing.assert_allclose(rel_out, (rel * [-1, 1, 1])[flip_permutation()], atol=1e-6)


def test_rotation_is_the_same_rigid_motion_in_2d_and_3d(body):
    """With the principal point at the crop centre the 3-D motion is exact: the augmented 3-D
    joints project onto the augmented 2-D keypoints (rotation sign and flip included)."""
    person, _ = _posed_person(body, seed=1)
    for aug in [
        Augmentation(CENTER, 180.0, rotation_deg=30.0),
        Augmentation(CENTER, 200.0, rotation_deg=-20.0, flip=True),
        Augmentation(CENTER, 240.0, flip=True),
    ]:
        (out,) = augment_persons([person], aug, S)
        scale = S / aug.crop_side
        uv = 300 * scale * out.keypoints_3d[:, :2] / out.keypoints_3d[:, 2:] + (S - 1) / 2
        np.testing.assert_allclose(uv, out.keypoints_2d, atol=1e-3)


def test_flipping_twice_restores_everything(body):
    person, _ = _posed_person(body, seed=2)
    kp = person.keypoints_2d
    inside = (kp - kp.mean(0)) * 0.5 + (S - 1) / 2  # every joint in frame: nothing is coded out
    person = dataclasses.replace(person, keypoints_2d=inside.astype(np.float32))
    square = Augmentation(((S - 1) / 2, (S - 1) / 2), float(S), flip=True)  # image already S x S
    image = np.random.default_rng(0).integers(0, 256, (S, S, 3), dtype=np.uint8)
    once_image, once = apply_augmentation(image, [person], square, S)
    twice_image, (twice,) = apply_augmentation(once_image, once, square, S)
    np.testing.assert_array_equal(twice_image, image)
    assert not np.array_equal(once_image, image)
    for field in dataclasses.fields(Person):
        a, b = getattr(twice, field.name), getattr(person, field.name)
        if isinstance(a, np.ndarray):
            if field.name == "smpl_pose":  # axis-angle: compare the rotations
                a, b = (roma.rotvec_to_rotmat(torch.tensor(v).view(24, 3)) for v in (a, b))
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=field.name)
        else:
            assert a == b, field.name


def test_colour_jitter_keeps_shape_dtype_and_labels():
    image = _dot_image()
    image[::7] = 90  # some grey texture so contrast and saturation matter
    aug = Augmentation((100.0, 80.0), 170.0, rotation_deg=-22.0, flip=True)
    jittered = dataclasses.replace(aug, color=(1.1, 0.9, 1.1))
    plain_image, (plain,) = apply_augmentation(image, [_dot_person()], aug, S)
    out_image, (out,) = apply_augmentation(image, [_dot_person()], jittered, S)
    assert out_image.shape == (S, S, 3) and out_image.dtype == np.uint8
    assert not np.array_equal(out_image, plain_image)
    for field in dataclasses.fields(Person):
        a, b = getattr(out, field.name), getattr(plain, field.name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, field.name
    # The padding stays zero (jitter happens before the warp).
    corner = apply_augmentation(image, [], dataclasses.replace(jittered, rotation_deg=0.0), S)[0]
    assert not corner[:2].any()


def test_inputs_are_not_mutated(body):
    person, _ = _posed_person(body, seed=3)
    copy = dataclasses.replace(
        person,
        **{
            f.name: np.copy(getattr(person, f.name))
            for f in dataclasses.fields(Person)
            if isinstance(getattr(person, f.name), np.ndarray)
        },
    )
    image = _dot_image()
    image_copy = image.copy()
    aug = Augmentation((100.0, 80.0), 120.0, rotation_deg=10.0, flip=True, color=(1.1, 1.1, 0.9))
    _, (out,) = apply_augmentation(image, [person], aug, S)
    np.testing.assert_array_equal(image, image_copy)
    assert out is not person
    for field in dataclasses.fields(Person):
        a, b = getattr(person, field.name), getattr(copy, field.name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, field.name


def test_sampling_stays_in_range_and_is_reproducible():
    cfg = SimpleNamespace(
        crop_scale=[0.6, 1.0],
        rotation_deg=30.0,
        rotation_prob=0.2,
        flip_prob=0.5,
        color_jitter=0.1,
        color_jitter_prob=0.2,
    )
    for height, width in [(150, 220), (40, 400)]:
        rng = np.random.default_rng(7)
        augs = [sample_augmentation(rng, height, width, cfg) for _ in range(2000)]
        longer = max(height, width)
        sides = np.array([a.crop_side for a in augs]) / longer
        assert sides.min() >= 0.6 and sides.max() <= 1.0
        boxes = np.stack([a.crop_box for a in augs])
        # every crop overlaps the image, and stays inside the letterboxed square
        assert (boxes[:, 0] < width - 0.5).all() and (boxes[:, 2] > -0.5).all()
        assert (boxes[:, 1] < height - 0.5).all() and (boxes[:, 3] > -0.5).all()
        pad = np.array([width - longer, height - longer]) / 2 - 0.5
        assert (boxes[:, :2] >= pad - 1e-9).all() and (boxes[:, 2:] <= pad + longer + 1e-9).all()
        rotations = np.array([a.rotation_deg for a in augs])
        assert np.abs(rotations).max() <= 30 and 0.15 < (rotations != 0).mean() < 0.25
        assert 0.45 < np.mean([a.flip for a in augs]) < 0.55
        colours = np.array([a.color for a in augs if a.color is not None])
        assert 0.15 < len(colours) / len(augs) < 0.25
        assert colours.min() >= 0.9 and colours.max() <= 1.1
    again = sample_augmentation(np.random.default_rng(7), 150, 220, cfg)
    assert again == sample_augmentation(np.random.default_rng(7), 150, 220, cfg)


def test_the_experiment_config_drives_sampling():
    from instancehmr.config import load_config

    repo = Path(__file__).resolve().parents[3]
    cfg = load_config(repo / "experiments" / "base.yaml").data.augment
    aug = sample_augmentation(np.random.default_rng(0), H, W, cfg)
    lo, hi = cfg.crop_scale
    assert lo * W <= aug.crop_side <= hi * W
