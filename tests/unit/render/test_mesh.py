"""Depth-buffer rendering: exact first hits (against a plain Embree cast of every triangle),
depth = camera z, compositing by depth, silhouettes alone, shading."""

from __future__ import annotations

import numpy as np
import pytest
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh
from scipy.spatial.transform import Rotation

from instancehmr.data.synthetic.scene import ARCHETYPES, pose_people
from instancehmr.render.mesh import (
    MeshRenderer,
    interpolate,
    pixel_rays,
    project,
    shade,
)

SIZE = 128
K = np.array([[120.0, 0, (SIZE - 1) / 2], [0, 120.0, (SIZE - 1) / 2], [0, 0, 1]])


def person(body, where, archetype="walk", yaw=30.0):
    """(1, V, 3) vertices of a posed person with its pelvis at ``where`` (camera frame)."""
    pose = ARCHETYPES[archetype].copy()
    upright = Rotation.from_euler("xy", [180, yaw], degrees=True)
    pose[0] = (upright * Rotation.from_rotvec(pose[0])).as_rotvec()
    vertices, joints = pose_people(body, pose[None], np.zeros((1, 10)), np.zeros((1, 3)))
    shift = np.asarray(where, np.float32) - joints[:, 0]
    return vertices + shift[:, None]


@pytest.fixture(scope="module")
def renderer(body):
    return MeshRenderer(body.faces)


def test_pixel_rays_invert_the_projection():
    xs, ys = np.array([0.0, 10.5, 127.0]), np.array([3.0, 64.0, 127.0])
    points = pixel_rays(K, xs, ys).astype(np.float64) * np.array([[2.0], [5.0], [0.5]])
    np.testing.assert_allclose(project(points, K), np.stack([xs, ys], 1), atol=1e-4)
    np.testing.assert_allclose(points[:, 2], [2.0, 5.0, 0.5], rtol=1e-6)


def test_first_hits_equal_a_plain_cast_of_every_triangle(body, renderer):
    vertices = person(body, [0.1, 0.0, 3.0])
    buffers = renderer.render(vertices, K, SIZE, SIZE)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].reshape(2, -1)
    scene = rtcore_scene.EmbreeScene()
    TriangleMesh(scene, vertices[0], body.faces.astype(np.int32))
    rays = pixel_rays(K, xs, ys)
    out = scene.run(np.zeros_like(rays), rays, output=1)
    hit = out["primID"].reshape(SIZE, SIZE) >= 0
    np.testing.assert_array_equal(buffers.person >= 0, hit)
    assert hit.sum() > 500
    np.testing.assert_array_equal(buffers.triangle[hit], out["primID"].reshape(SIZE, SIZE)[hit])
    np.testing.assert_allclose(buffers.depth[hit], out["tfar"].reshape(SIZE, SIZE)[hit], rtol=1e-6)
    assert np.isinf(buffers.depth[~hit]).all() and (buffers.triangle[~hit] == -1).all()
    assert buffers.alone_pixels.tolist() == [hit.sum()]


def test_hit_points_lie_on_their_pixel_at_their_depth(body, renderer):
    vertices = person(body, [0.0, 0.2, 2.5], "arms_crossed", yaw=-40)
    buffers = renderer.render(vertices, K, SIZE, SIZE)
    points = interpolate(vertices.astype(np.float64), renderer.faces, buffers)  # (P, 3)
    ys, xs = np.nonzero(buffers.person >= 0)
    np.testing.assert_allclose(points[:, 2], buffers.depth[ys, xs], rtol=1e-5)
    np.testing.assert_allclose(project(points, K), np.stack([xs, ys], 1), atol=1e-3)
    normals = buffers.normal[ys, xs]
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    facing = np.einsum("pc,pc->p", normals, points) < 0
    assert facing.mean() > 0.95  # smooth normals face the camera but at grazing silhouettes


def test_nearer_person_wins_and_silhouettes_alone_are_kept(body, renderer):
    front = person(body, [0.0, 0.0, 3.0], "stand", yaw=0)
    back = person(body, [0.15, 0.0, 4.0], "stand", yaw=0)
    buffers = renderer.render(np.concatenate([back, front]), K, SIZE, SIZE)
    alone_back = renderer.render(back, K, SIZE, SIZE)
    alone_front = renderer.render(front, K, SIZE, SIZE)
    np.testing.assert_array_equal(alone_front.person >= 0, buffers.person == 1)
    both = (alone_back.person >= 0) & (alone_front.person >= 0)
    assert both.sum() > 100 and (buffers.person[both] == 1).all()
    assert buffers.alone_pixels.tolist() == [
        alone_back.alone_pixels[0],
        alone_front.alone_pixels[0],
    ]
    visible = buffers.visible_pixels(2)
    assert visible[0] == (alone_back.person >= 0).sum() - both.sum()
    assert visible[1] == buffers.alone_pixels[1]


def test_person_outside_the_image_is_skipped(body, renderer):
    buffers = renderer.render(person(body, [30.0, 0.0, 3.0]), K, SIZE, SIZE)
    assert buffers.alone_pixels.tolist() == [0] and (buffers.person == -1).all()


def test_shading_keeps_the_background_and_lights_the_people(body, renderer):
    vertices = person(body, [0.0, 0.0, 3.0])
    buffers = renderer.render(vertices, K, SIZE, SIZE)
    background = np.full((SIZE, SIZE, 3), 7, np.uint8)
    albedo = interpolate(np.ones((1, vertices.shape[1], 3), np.float32), renderer.faces, buffers)
    image = shade(buffers, albedo, background, np.array([0.0, 0.0, -1.0]), ambient=0.3)
    hit = buffers.person >= 0
    assert (image[~hit] == 7).all()
    assert image[hit].min() >= 0.3 * 255 - 1 and image[hit].max() >= 250
