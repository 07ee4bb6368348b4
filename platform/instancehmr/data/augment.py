"""Training augmentation (docs/method.md#augmentation): random square crop with zero padding,
in-plane rotation, horizontal flip with left/right swap, colour jitter; labels follow the image.

One 2x3 affine (:func:`augmentation_affine`) maps original pixels to the square network input:

1. crop: a square of side ``crop_side`` centred at ``crop_center`` (original pixels; zero padding
   wherever it leaves the image). Sampling (:func:`sample_augmentation`): the side is
   ``crop_scale`` x the image's longer side; along each axis the centre is uniform over the
   positions where the crop lies inside the letterboxed (zero-padded) square of the image (or
   contains it, for a side beyond the longer one) and the centre lies inside the image, so every
   crop overlaps the image. Side 1 x the longer side leaves one position: the letterbox itself.
2. rotation by ``rotation_deg`` about the crop centre, positive = counter-clockwise as seen on
   the screen (OpenCV's ``getRotationMatrix2D`` convention; image y points down). A pixel offset
   (dx, dy) from the centre becomes R (dx, dy) with R = [[cos a, sin a], [-sin a, cos a]].
3. resize of the crop to ``input_size`` x ``input_size``;
4. horizontal flip of the input (x -> S - 1 - x, pixel centres at integers).

Labels: 2-D keypoints and boxes go through the affine; labelled keypoints that leave the input
are coded ``VIS_OUT_OF_FRAME`` (kept, never unlabelled); a flip swaps left/right joints
(:func:`~instancehmr.body.joint_sets.flip_permutation`) so that ``left_wrist`` names the joint
that looks like a left wrist in the flipped image.

3-D labels (camera frame, x right, y down, z forward) get the matching rigid motion: the
rotation is the same 2x2 R acting on (x, y) about the optical axis, R3 = [[R, 0], [0, 1]]
(in the right-handed convention R3 = R_z(-a)), then the flip is the reflection x -> -x. Both
act on 3-D joints, on ``smpl_transl`` and on the camera-frame global orientation (R3 G, then
the mirror of :func:`~instancehmr.body.pose.flip_pose`, which for the global orientation is the
same reflection M G M, M = diag(-1, 1, 1)). The 3-D motion reproduces the 2-D one exactly for a
pinhole camera whose principal point is at the crop centre; for any other principal point the
rotation and flip happen about a different image point, so 3-D and 2-D labels then agree only
up to a translation of the person, which the root-relative 3-D losses and the weak-perspective
camera do not see.

``smpl_transl`` is smplx's ``transl`` (added after the global rotation, which turns the body
about its rest pelvis j0): transforming it as a point is exact for the mesh only up to the same
kind of translation, (R3 - I) j0 for a rotation and (M - I) j0 for a flip (zero for a body
whose rest pelvis lies on the sagittal plane). Making it exact needs j0, i.e. the body model and
the betas; augmentation does not run the body model.

Colour jitter (brightness, contrast, saturation factors, each uniform in [1 - j, 1 + j], applied
in that order as torchvision's ``adjust_*`` do, images RGB) is applied to the original image
before the warp, so the zero padding stays zero. Written here rather than taken from a library:
OpenCV warps, but no well-kept numpy library samples a crop, a rotation and a flip as one affine
that also moves the keypoints, 3-D joints and SMPL parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import roma
import torch

from instancehmr.body.joint_sets import flip_permutation
from instancehmr.body.pose import flip_pose
from instancehmr.data.schema import LABELLED_CODES, VIS_OUT_OF_FRAME, VIS_UNLABELLED, Person
from instancehmr.geometry import in_frame

_FLIP = flip_permutation()
_MIRROR = np.diag([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Augmentation:
    """Sampled parameters of one augmentation.

    crop_center (2,) x, y and crop_side: the crop square in original pixels (pixel centres at
    integers; the square spans ``crop_center +- crop_side / 2``). rotation_deg: counter-clockwise
    on screen, about the crop centre. flip: horizontal flip of the network input. color:
    (brightness, contrast, saturation) factors, or None for no colour jitter.
    """

    crop_center: tuple[float, float]
    crop_side: float
    rotation_deg: float = 0.0
    flip: bool = False
    color: tuple[float, float, float] | None = None

    @property
    def crop_box(self) -> np.ndarray:
        """(4,) x0 y0 x1 y1 edges of the crop square in original pixels."""
        (cx, cy), half = self.crop_center, self.crop_side / 2
        return np.array([cx - half, cy - half, cx + half, cy + half])


def identity_augmentation(height: int, width: int) -> Augmentation:
    """The whole image letterboxed: no crop, rotation, flip or jitter (evaluation)."""
    return Augmentation(((width - 1) / 2, (height - 1) / 2), float(max(height, width)))


def _crop_center_range(n: int, longer: int, side: float) -> tuple[float, float]:
    """Range of the crop centre along an axis of ``n`` pixels (see the module docstring)."""
    middle = (n - 1) / 2
    half_free = abs(longer - side) / 2  # centre offsets keeping crop in / around the padding
    reach = min(half_free, n / 2)  # and keeping the centre inside the image's [-0.5, n - 0.5]
    return middle - reach, middle + reach


def sample_augmentation(
    rng: np.random.Generator, height: int, width: int, augment_cfg
) -> Augmentation:
    """Draw one augmentation for an image of ``height`` x ``width`` from the ``data.augment``
    config (crop_scale [min, max], rotation_deg, rotation_prob, flip_prob, color_jitter,
    color_jitter_prob). Draws the same number of random values whatever the outcome."""
    lo, hi = (float(v) for v in augment_cfg.crop_scale)
    longer = max(height, width)
    u = rng.random(10)
    side = (lo + (hi - lo) * u[0]) * longer
    (x0, x1), (y0, y1) = (_crop_center_range(n, longer, side) for n in (width, height))
    center = (x0 + (x1 - x0) * u[1], y0 + (y1 - y0) * u[2])
    max_deg = float(augment_cfg.rotation_deg)
    rotation = (2 * u[4] - 1) * max_deg if u[3] < augment_cfg.rotation_prob else 0.0
    flip = bool(u[5] < augment_cfg.flip_prob)
    jitter = float(augment_cfg.color_jitter)
    color = None
    if u[6] < augment_cfg.color_jitter_prob and jitter > 0:
        color = tuple(float(1 - jitter + 2 * jitter * v) for v in u[7:10])
    return Augmentation((float(center[0]), float(center[1])), float(side), rotation, flip, color)


def _rotation_2d(degrees: float) -> np.ndarray:
    """(2, 2) counter-clockwise-on-screen rotation of pixel offsets (y down)."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, s], [-s, c]])


def augmentation_affine(aug: Augmentation, input_size: int) -> np.ndarray:
    """(2, 3) float64 affine from original pixels to the ``input_size`` square input:
    crop, rotation about the crop centre, resize, then horizontal flip."""
    linear = (input_size / aug.crop_side) * _rotation_2d(aug.rotation_deg)
    offset = (input_size - 1) / 2 - linear @ np.asarray(aug.crop_center, dtype=np.float64)
    affine = np.concatenate([linear, offset[:, None]], axis=1)
    if aug.flip:
        affine[0] = -affine[0]
        affine[0, 2] += input_size - 1
    return affine


def rotation_3d(aug: Augmentation) -> np.ndarray:
    """(3, 3) camera-frame motion matching the augmentation: the in-plane rotation about the
    optical axis, then the mirror x -> -x if flipped (det -1 then)."""
    rot = np.eye(3)
    rot[:2, :2] = _rotation_2d(aug.rotation_deg)
    return _MIRROR @ rot if aug.flip else rot


def _color_jitter(image: np.ndarray, factors: tuple[float, float, float]) -> np.ndarray:
    """Brightness, contrast, saturation of an RGB uint8 image: torchvision's blends (with black,
    with the mean grey level, with the grey image), each saturating to uint8."""
    brightness, contrast, saturation = factors
    out = cv2.convertScaleAbs(image, alpha=brightness)
    mean = float(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).mean())
    out = cv2.addWeighted(out, contrast, out, 0.0, mean * (1 - contrast))
    gray = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(out, saturation, gray, 1 - saturation, 0.0)


def _transform_smpl(pose: np.ndarray, aug: Augmentation) -> np.ndarray:
    """(72,) axis-angle pose, camera-frame global orientation first -> augmented pose."""
    pose_t = torch.from_numpy(np.asarray(pose, dtype=np.float64).reshape(24, 3).copy())
    if aug.rotation_deg != 0:
        rot = torch.eye(3, dtype=torch.float64)
        rot[:2, :2] = torch.from_numpy(_rotation_2d(aug.rotation_deg))
        pose_t[0] = roma.rotmat_to_rotvec(rot @ roma.rotvec_to_rotmat(pose_t[0]))
    if aug.flip:
        pose_t = flip_pose(pose_t)
    return pose_t.numpy().reshape(72).astype(np.asarray(pose).dtype)


def augment_persons(persons: list[Person], aug: Augmentation, input_size: int) -> list[Person]:
    """The labels of ``persons`` moved with the image (see the module docstring); new objects,
    inputs untouched. 2-D positions in input pixels; unlabelled 2-D keypoints stay zeros."""
    affine = augmentation_affine(aug, input_size)
    motion = rotation_3d(aug)
    out = []
    for p in persons:
        vis = np.asarray(p.keypoints_2d_vis, dtype=np.int8).copy()
        kp = np.asarray(p.keypoints_2d, dtype=np.float64) @ affine[:, :2].T + affine[:, 2]
        inside = in_frame(kp, input_size, input_size)
        vis[np.isin(vis, LABELLED_CODES) & ~inside] = VIS_OUT_OF_FRAME
        kp[vis == VIS_UNLABELLED] = 0
        kp = kp.astype(np.asarray(p.keypoints_2d).dtype)

        box = np.asarray(p.box)
        if np.any(box != 0):  # all zeros = no box (keypoint_box of an unlabelled person)
            x0, y0, x1, y1 = box.astype(np.float64)
            corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ affine[:, :2].T
            corners += affine[:, 2]
            box = np.concatenate([corners.min(0), corners.max(0)]).astype(box.dtype)
        else:
            box = box.copy()

        kp3d, valid3d = p.keypoints_3d, p.keypoints_3d_valid
        if kp3d is not None:
            kp3d = (np.asarray(kp3d, dtype=np.float64) @ motion.T).astype(np.asarray(kp3d).dtype)
            valid3d = np.asarray(valid3d).copy()
        transl = p.smpl_transl
        if transl is not None:
            transl = (motion @ np.asarray(transl, dtype=np.float64)).astype(
                np.asarray(transl).dtype
            )
        pose = None if p.smpl_pose is None else _transform_smpl(p.smpl_pose, aug)

        if aug.flip:
            kp, vis = kp[_FLIP], vis[_FLIP]
            if kp3d is not None:
                kp3d, valid3d = kp3d[_FLIP], valid3d[_FLIP]
        out.append(
            dataclasses.replace(
                p,
                keypoints_2d=kp,
                keypoints_2d_vis=vis,
                box=box,
                keypoints_3d=kp3d,
                keypoints_3d_valid=valid3d,
                smpl_pose=pose,
                smpl_betas=None if p.smpl_betas is None else np.asarray(p.smpl_betas).copy(),
                smpl_transl=transl,
            )
        )
    return out


def apply_augmentation(
    image: np.ndarray, persons: list[Person], aug: Augmentation, input_size: int
) -> tuple[np.ndarray, list[Person]]:
    """image (H, W, 3) uint8 RGB and its people -> (input_size, input_size, 3) uint8 input and
    new Person objects with labels in input pixels (bilinear warp, zero padding)."""
    if aug.color is not None:
        image = _color_jitter(image, aug.color)
    warped = cv2.warpAffine(
        image,
        augmentation_affine(aug, input_size),
        (input_size, input_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return warped, augment_persons(persons, aug, input_size)
