"""Predicted meshes drawn over their images (the picture MLflow shows each epoch).

The weak-perspective camera (s, tx, ty) is turned into an equivalent pinhole camera with a long
focal length, and the meshes are ray cast with the platform's Embree renderer.
"""

from __future__ import annotations

import numpy as np

from instancehmr.render.mesh import MeshRenderer, shade

FOCAL = 5000.0  # pixels: nearly orthographic, so the picture matches the weak-perspective fit
COLOURS = np.array(
    [
        [0.95, 0.55, 0.35],
        [0.35, 0.65, 0.95],
        [0.55, 0.9, 0.45],
        [0.9, 0.4, 0.8],
        [0.95, 0.85, 0.35],
        [0.5, 0.85, 0.85],
    ]
)


def weak_to_pinhole(camera: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """camera (N, 3) = (s, tx, ty) over a square input of side ``size`` -> translations (N, 3)
    of pelvis-centred meshes and intrinsics K (3, 3) that project them to the same pixels."""
    s, tx, ty = camera[:, 0], camera[:, 1], camera[:, 2]
    depth = FOCAL / (s * size / 2)
    transl = np.stack([tx / s, ty / s, depth], axis=1)
    c = size / 2 - 0.5
    return transl, np.array([[FOCAL, 0.0, c], [0.0, FOCAL, c], [0.0, 0.0, 1.0]])


def draw_meshes(
    image: np.ndarray,
    vertices: np.ndarray,
    camera: np.ndarray,
    faces: np.ndarray,
    alpha: float = 0.8,
    affine: np.ndarray | None = None,
    input_size: int | None = None,
) -> np.ndarray:
    """Blend meshes over an RGB image (H, W, 3) uint8. vertices (N, V, 3) pelvis-centred in the
    camera frame; camera (N, 3) weak perspective over the square network input of side
    ``input_size``, which is ``image`` itself unless ``affine`` (2, 3) maps the image's pixels to
    that input (a letterbox: scale and shift, no rotation). Returns (H, W, 3) uint8."""
    if len(vertices) == 0:
        return image.copy()
    height, width = image.shape[:2]
    size = input_size or height
    transl, k = weak_to_pinhole(camera.astype(np.float64), size)
    if affine is not None:  # input pixels -> image pixels: K' = A^-1 K
        scale = affine[0, 0]
        k = k.copy()
        k[0, :] = (k[0, :] - affine[0, 2] * k[2, :]) / scale
        k[1, :] = (k[1, :] - affine[1, 2] * k[2, :]) / scale
    buffers = MeshRenderer(faces).render(
        vertices.astype(np.float64) + transl[:, None], k, height, width
    )
    hit = buffers.person >= 0
    albedo = COLOURS[buffers.person[hit] % len(COLOURS)]
    meshes = shade(buffers, albedo, image, np.array([0.0, -0.3, -1.0]) / np.hypot(0.3, 1.0), 0.35)
    out = image.astype(np.float32)
    out[hit] = alpha * meshes[hit] + (1 - alpha) * out[hit]
    return out.astype(np.uint8)
