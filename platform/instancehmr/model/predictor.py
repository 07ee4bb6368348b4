"""People in anyone's images: letterbox, run the network, decode, and place each person in the
original image's pixels and in a camera frame (docs/method.md#decoding).

The network predicts a weak-perspective camera (s, tx, ty) over its square input. Read as a
pinhole camera with a field of view ``fov`` over the original image's longer side L (focal
length f = (L / 2) / tan(fov / 2) pixels, principal point at the image centre), the same
projection puts a person's pelvis at the camera-frame translation
t = (tx / s, ty / s, 1 / (s tan(fov / 2))) metres: x right, y down, z forward (OpenCV's camera
frame). The true focal length of a photo is unknown; depth scales with the one assumed. ROMP and
BEV state theirs the same way (a fixed field of view of 60 degrees).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np
import torch

from instancehmr.body.joint_sets import SMPL24
from instancehmr.geometry import letterbox
from instancehmr.model.decode import decode_people
from instancehmr.model.network import to_model_input

#: Field of view (degrees) over the original image's longer side, when none is given.
DEFAULT_FOV_DEG = 60.0
#: Predictions carry the SMPL-24 joints (``body.joint_sets.SMPL24`` order).
JOINT_NAMES = SMPL24


def letterbox_image(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """image (H, W, 3) uint8 -> the network's (size, size, 3) uint8 input and the (2, 3)
    float64 affine from original pixels to input pixels (:func:`instancehmr.geometry.letterbox`:
    longer side scaled to ``size``, the shorter one zero-padded, centred). A downscaled image is
    low-pass filtered first (Gaussian, sigma = (1 / scale - 1) / 2, as scikit-image's
    anti-aliasing), so that large photos do not alias."""
    h, w = image.shape[:2]
    affine = letterbox(h, w, size).double().numpy()
    scale = affine[0, 0]
    if scale < 1:
        image = cv2.GaussianBlur(image, (0, 0), (1 / scale - 1) / 2)
    warped = cv2.warpAffine(
        image, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return warped, affine


def focal_length(height: int, width: int, fov_deg: float) -> float:
    """Focal length in pixels of a camera with field of view ``fov_deg`` over the longer side."""
    return max(height, width) / 2 / math.tan(math.radians(fov_deg) / 2)


@dataclass
class ImagePeople:
    """Everyone found in one image of ``height`` x ``width`` pixels, n people, by descending
    score:

    * score (n,) center confidence in (0, 1);
    * global_orient (n, 3), body_pose (n, 69): SMPL axis-angle, radians; betas (n, B);
    * camera (n, 3): the weak-perspective camera (s, tx, ty) over the letterboxed square input;
    * translation (n, 3): the pelvis in the camera frame, metres (module docstring), for the
      camera of ``focal_length`` pixels with its principal point at the image centre;
    * joints_2d (n, 24, 2): SMPL-24 joints in original-image pixels (x, y);
    * joints_3d (n, 24, 3), vertices (n, 6890, 3): metres, camera frame.
    """

    height: int
    width: int
    focal_length: float
    score: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    camera: np.ndarray
    translation: np.ndarray
    joints_2d: np.ndarray
    joints_3d: np.ndarray
    vertices: np.ndarray

    #: Per-person array fields, in record order.
    PER_PERSON = ("score", "global_orient", "body_pose", "betas", "camera", "translation",
                  "joints_2d", "joints_3d", "vertices")  # fmt: skip

    def __len__(self) -> int:
        return len(self.score)

    def records(self, vertices: bool = False) -> list[dict]:
        """One JSON-ready dict per person: the per-person fields (``vertices`` only when asked),
        nested lists of floats."""
        names = [n for n in self.PER_PERSON if vertices or n != "vertices"]
        return [{n: getattr(self, n)[i].tolist() for n in names} for i in range(len(self))]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as an array (the per-person ones with a leading person axis)."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}


class Predictor:
    """The network and its decoding over batches of images of any size: ``model`` (eval mode)
    and ``body`` on ``device``, decoded as ``cfg.decode`` says, cameras read at ``fov_deg``."""

    def __init__(self, model, body, cfg, device="cpu", fov_deg: float = DEFAULT_FOV_DEG) -> None:
        if not 0 < fov_deg < 180:
            raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
        self.model, self.body, self.cfg = model.eval().to(device), body.to(device), cfg
        self.device, self.fov_deg = device, fov_deg

    @torch.no_grad()
    def __call__(self, images: Sequence[np.ndarray]) -> list[ImagePeople]:
        """images: (H, W, 3) uint8 RGB arrays, each its own size -> one ImagePeople each."""
        if not images:
            return []
        size, d = self.cfg.model.input_size, self.cfg.decode
        inputs, affines = zip(*(letterbox_image(im, size) for im in images), strict=True)
        batch = torch.from_numpy(np.stack(inputs)).to(self.device)
        outputs = self.model(to_model_input(batch))
        transforms = torch.from_numpy(np.stack(affines)).float().to(self.device)
        people = decode_people(
            outputs, self.body, size, transforms, self.cfg.model.pose_representation,
            d.nms_kernel, d.max_people, d.center_threshold,
        )  # fmt: skip
        camera = people.camera.double()
        s = camera[:, 0].clamp_min(1e-6)
        tan = math.tan(math.radians(self.fov_deg) / 2)
        translation = torch.stack([camera[:, 1] / s, camera[:, 2] / s, 1 / (s * tan)], 1)
        placed = translation[:, None].float()
        per_person = {
            "score": people.score,
            "global_orient": people.pose[:, :3],
            "body_pose": people.pose[:, 3:],
            "betas": people.betas,
            "camera": people.camera,
            "translation": translation.float(),
            "joints_2d": people.joints_2d[:, : len(JOINT_NAMES)],
            "joints_3d": people.joints[:, : len(JOINT_NAMES)] + placed,
            "vertices": people.vertices + placed,
        }
        per_person = {k: v.cpu().numpy() for k, v in per_person.items()}
        index = people.batch_index.cpu().numpy()
        return [
            ImagePeople(
                height=im.shape[0],
                width=im.shape[1],
                focal_length=focal_length(im.shape[0], im.shape[1], self.fov_deg),
                **{k: v[index == i] for k, v in per_person.items()},
            )
            for i, im in enumerate(images)
        ]
