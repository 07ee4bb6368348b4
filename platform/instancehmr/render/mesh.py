"""Depth-buffer rendering of posed bodies with Embree ray casting (embreex, trimesh's backend).

A pinhole camera with intrinsics K (3, 3) looks down +z of the camera frame (x right, y down,
metres); pixel centres sit at integer coordinates. Each person is ray cast alone, in a scene of
its own, over the padded bounding box of its projected vertices; the people are then composited
by depth. One pass so gives both the scene's first-hit buffers and each person's silhouette as if
alone (the denominator of the occlusion fraction).

No rasteriser among the platform's dependencies gives per-pixel triangle ids and depth without an
OpenGL context, hence ray casting; Embree does the BVH and the traversal, this module the camera,
the compositing and the shading. Speed, all exact:

* Only triangles facing the camera are handed to Embree (meshes are closed and wound counter-
  clockwise seen from outside, as SMPL's are, so the first hit always enters a surface).
* embreex copies mesh buffers element by element through Python indexing; object arrays, whose
  elements index without boxing, make that about 2.5x faster than float32 / int32 arrays.
* Point transforms go through ``np.einsum`` rather than BLAS, whose thread pool would otherwise
  spin on a second core after every call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from embreex import rtcore, rtcore_scene
from embreex.mesh_construction import TriangleMesh
from scipy import sparse


@dataclass
class RenderBuffers:
    """First hits per pixel of an (H, W) image.

    person (H, W) int32 index of the person hit (-1 background); depth (H, W) float32 camera z
    of the hit (inf background); triangle (H, W) int32 face id (-1); barycentric (H, W, 2)
    float32 (u, v) of the hit in its face (weights 1 - u - v, u, v of its three vertices);
    normal (H, W, 3) float32 unit smooth outward normal (0 background);
    alone_pixels (N,) int64 silhouette pixels of each person rendered alone;
    boxes (N, 4) float32 x0 y0 x1 y1 of each person's projected vertices (not clipped).
    """

    person: np.ndarray
    depth: np.ndarray
    triangle: np.ndarray
    barycentric: np.ndarray
    normal: np.ndarray
    alone_pixels: np.ndarray
    boxes: np.ndarray

    def visible_pixels(self, n_people: int) -> np.ndarray:
        """(N,) pixels where each person is the first surface hit."""
        return np.bincount(self.person[self.person >= 0], minlength=n_people)


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points (..., 3) -> (..., 3) ``matrix (3, 3) @ point`` for each point."""
    return np.einsum("ij,...j->...i", np.asarray(matrix, points.dtype), points)


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) -> pixel coordinates (..., 2) through K (3, 3)."""
    uvw = transform(points, intrinsics)
    return uvw[..., :2] / uvw[..., 2:]


def pixel_rays(intrinsics: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(P, 3) float32 ray directions through pixels (xs, ys), scaled to z = 1, so that the ray
    parameter of a hit is its depth."""
    inv = np.linalg.inv(intrinsics).astype(np.float32)
    xs, ys = np.asarray(xs, np.float32)[:, None], np.asarray(ys, np.float32)[:, None]
    rays = xs * inv[:, 0] + ys * inv[:, 1] + inv[:, 2]
    return rays / rays[:, 2:]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class MeshRenderer:
    """Ray casts people who share one closed triangle topology ``faces`` (F, 3), wound
    counter-clockwise seen from outside."""

    def __init__(self, faces: np.ndarray, pad: int = 2):
        self.faces = np.asarray(faces, np.int64)
        self.pad = pad
        self._face_tuples = np.empty(len(self.faces), object)
        self._face_tuples[:] = [tuple(f) for f in self.faces.tolist()]
        n_vertices = int(self.faces.max()) + 1
        rows = self.faces.reshape(-1)
        cols = np.repeat(np.arange(len(self.faces)), 3)
        #: (V, F) vertex-face incidence: summing face normals gives area-weighted vertex normals.
        self._incidence = sparse.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_vertices, len(self.faces))
        )
        self._device = rtcore.EmbreeDevice()

    def render(
        self, vertices: np.ndarray, intrinsics: np.ndarray, height: int, width: int
    ) -> RenderBuffers:
        """Render N people, vertices (N, V, 3) in the camera frame (all in front of it)."""
        person = np.full((height, width), -1, np.int32)
        depth = np.full((height, width), np.inf, np.float32)
        triangle = np.full((height, width), -1, np.int32)
        bary = np.zeros((height, width, 2), np.float32)
        normal = np.zeros((height, width, 3), np.float32)
        alone = np.zeros(len(vertices), np.int64)
        pixels = project(vertices, intrinsics)
        boxes = np.concatenate([pixels.min(1), pixels.max(1)], axis=1).astype(np.float32)
        for p, verts in enumerate(vertices):
            x0, y0 = np.maximum(np.floor(boxes[p, :2]).astype(int) - self.pad, 0)
            x1 = min(int(np.ceil(boxes[p, 2])) + self.pad + 1, width)
            y1 = min(int(np.ceil(boxes[p, 3])) + self.pad + 1, height)
            if x0 >= x1 or y0 >= y1:  # outside the image
                continue
            ys, xs = np.mgrid[y0:y1, x0:x1].reshape(2, -1)
            rays = pixel_rays(intrinsics, xs, ys)
            face_normals, hit = self._cast(verts, rays)
            alone[p] = len(hit["face"])
            closer = hit["depth"] < depth[ys[hit["ray"]], xs[hit["ray"]]]
            at = hit["ray"][closer]
            yy, xx, faces, uv = ys[at], xs[at], hit["face"][closer], hit["uv"][closer]
            person[yy, xx] = p
            depth[yy, xx] = hit["depth"][closer]
            triangle[yy, xx] = faces
            bary[yy, xx] = uv
            normal[yy, xx] = self._smooth_normals(face_normals, faces, uv)
        return RenderBuffers(person, depth, triangle, bary, normal, alone, boxes)

    def _cast(self, vertices: np.ndarray, rays: np.ndarray):
        """Cast rays (P, 3) from the camera centre at one mesh (V, 3) -> its face normals
        (F, 3) and the hits: ray index, face id, (u, v) and depth of each."""
        tri = vertices[self.faces]
        face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        front = np.flatnonzero(np.einsum("fc,fc->f", face_normals, tri[:, 0]) < 0)
        scene = rtcore_scene.EmbreeScene(self._device)
        TriangleMesh(scene, vertices.astype(object), self._face_tuples[front])
        out = scene.run(np.zeros((len(rays), 3), np.float32), rays, output=1)
        ray = np.flatnonzero(out["primID"] >= 0)
        hit = {
            "ray": ray,
            "face": front[out["primID"][ray]],
            "uv": np.stack([out["u"][ray], out["v"][ray]], axis=1),
            "depth": out["tfar"][ray],
        }
        return face_normals, hit

    def _smooth_normals(self, face_normals: np.ndarray, faces: np.ndarray, uv: np.ndarray):
        """(P, 3) float32 unit vertex normals interpolated at hits (face ids, barycentrics)."""
        vertex_normals = self._incidence @ face_normals  # area-weighted
        corners = _unit(vertex_normals)[self.faces[faces]]  # (P, 3 vertices, 3)
        w = np.concatenate([1 - uv.sum(1, keepdims=True), uv], axis=1)
        return _unit(np.einsum("pk,pkc->pc", w, corners)).astype(np.float32)


def interpolate(values: np.ndarray, faces: np.ndarray, buffers: RenderBuffers) -> np.ndarray:
    """Per-vertex ``values`` (N, V, C) at the hit pixels -> (P, C), P = hits in row-major order
    (the order of ``image[buffers.person >= 0]``)."""
    hit = buffers.person >= 0
    corners = faces[buffers.triangle[hit]]  # (P, 3)
    uv = buffers.barycentric[hit]
    w = np.concatenate([1 - uv.sum(1, keepdims=True), uv], axis=1)
    return np.einsum("pk,pkc->pc", w, values[buffers.person[hit][:, None], corners])


def shade(
    buffers: RenderBuffers,
    albedo: np.ndarray,
    background: np.ndarray,
    light: np.ndarray,
    ambient: float,
) -> np.ndarray:
    """Lambert-shaded people over a background.

    albedo (P, 3) in [0, 1] at the hit pixels (see :func:`interpolate`), background (H, W, 3)
    uint8, light (3,) unit direction towards the light (camera frame), ambient in [0, 1].
    Returns (H, W, 3) uint8.
    """
    hit = buffers.person >= 0
    lambert = np.clip(np.einsum("pc,c->p", buffers.normal[hit], light), 0, None)
    lit = albedo * (ambient + (1 - ambient) * lambert)[:, None]
    image = background.copy()
    image[hit] = np.clip(lit * 255 + 0.5, 0, 255).astype(np.uint8)
    return image
