"""Scene sampling: plausible poses within the joint limits, people standing on the ground, in
frame, never interpenetrating, overlapping as much as the occlusion level asks; determinism."""

from __future__ import annotations

import numpy as np
import pytest

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.body.pose import JOINT_LIMITS
from instancehmr.data.synthetic.scene import (
    ARCHETYPES,
    OCCLUSION_AMOUNTS,
    CrowdGenerator,
    occlusion_amount,
    pose_people,
    sample_body_poses,
    sample_camera,
)
from instancehmr.render.mesh import transform

SIZE = 128


@pytest.fixture(scope="module")
def generator(body):
    return CrowdGenerator(body)


def scenes(generator, occlusion, count=12, seed=0):
    return [
        generator.sample(np.random.default_rng([seed, i]), SIZE, 6, occlusion) for i in range(count)
    ]


def test_occlusion_levels_and_bad_values():
    assert [occlusion_amount(k) for k in ("none", "light", "moderate", "severe")] == sorted(
        OCCLUSION_AMOUNTS.values()
    )
    assert occlusion_amount(0.3) == 0.3 and occlusion_amount(1) == 1.0
    for bad in ("heavy", -0.1, 1.5, True, None):
        with pytest.raises(ValueError, match="occlusion"):
            occlusion_amount(bad)


def test_poses_stay_within_the_joint_limits():
    pose = sample_body_poses(np.random.default_rng(0), 500)
    body = pose[:, 1:]
    assert (body >= JOINT_LIMITS[1:, :, 0] - 1e-9).all()
    assert (body <= JOINT_LIMITS[1:, :, 1] + 1e-9).all()
    assert (pose[:, 22:] == 0).all()
    assert len(ARCHETYPES) >= 10
    # noise on top of the archetypes: no two poses alike, none far from upright
    assert np.unique(pose.round(3), axis=0).shape[0] == 500
    assert np.degrees(np.linalg.norm(pose[:, 0], axis=1)).max() < 70


def test_camera_field_of_view():
    camera = sample_camera(np.random.default_rng(1), 512)
    fov = np.degrees(2 * np.arctan(256 / camera.intrinsics[0, 0]))
    assert 50 <= fov <= 60
    np.testing.assert_allclose(camera.intrinsics[:2, 2], [255.5, 255.5])
    np.testing.assert_allclose(camera.rotation @ camera.rotation.T, np.eye(3), atol=1e-12)


def test_sampling_is_deterministic(generator):
    a, b = (generator.sample(np.random.default_rng(7), SIZE, 6, 0.5) for _ in range(2))
    c = generator.sample(np.random.default_rng(8), SIZE, 6, 0.5)
    np.testing.assert_array_equal(a.people.vertices, b.people.vertices)
    np.testing.assert_array_equal(a.background, b.background)
    np.testing.assert_array_equal(a.looks.albedo, b.looks.albedo)
    assert a.background.shape != c.background.shape or (a.background != c.background).any()


def test_people_stand_on_the_ground_in_frame_apart(generator):
    for scene in scenes(generator, "severe"):
        camera, people = scene.camera, scene.people
        n = len(people.pose)
        assert 1 <= n <= 6 and people.vertices.shape == (n, 6890, 3)
        world = transform(people.vertices.astype(np.float64), camera.rotation.T)
        np.testing.assert_allclose(world[..., 1].max(1), camera.height, atol=1e-4)
        pelvis = people.joints[:, CANONICAL_INDEX["pelvis"]].astype(np.float64)
        uv = pelvis[:, :2] / pelvis[:, 2:] * camera.intrinsics[0, 0] + camera.intrinsics[:2, 2]
        assert ((uv >= 0) & (uv < SIZE)).all()
        assert (people.vertices[..., 2] > 0.5).all()
        low, high = world[..., [0, 2]].min(1), world[..., [0, 2]].max(1)  # ground footprints
        for i in range(n):
            for j in range(i):
                apart = (low[i] >= high[j]) | (low[j] >= high[i])
                assert apart.any(), "two people's footprints intersect"


def test_smpl_parameters_regenerate_the_people(generator, body):
    people = scenes(generator, "moderate", count=3)[2].people
    vertices, joints = pose_people(body, people.pose, people.betas, people.transl)
    np.testing.assert_array_equal(vertices, people.vertices)
    np.testing.assert_array_equal(joints, people.joints)
    assert people.pose.dtype == np.float32 and people.betas.dtype == np.float32
    assert (np.abs(people.betas) <= 2.5).all()


def test_occlusion_level_sets_how_much_people_overlap(generator):
    def overlap(level):
        pixels = []
        for scene in scenes(generator, level, count=16, seed=3):
            buffers = generator.renderer.render(
                scene.people.vertices, scene.camera.intrinsics, SIZE, SIZE
            )
            hidden = buffers.alone_pixels - buffers.visible_pixels(len(buffers.alone_pixels))
            pixels.append(hidden.sum() / buffers.alone_pixels.sum())
        return np.mean(pixels)

    none, light, severe = overlap("none"), overlap("light"), overlap("severe")
    assert none < 0.01 < light < severe
    assert severe > 0.1


def test_drawn_image(generator):
    scene = scenes(generator, "light", count=1)[0]
    image, buffers = generator.draw(scene)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert scene.background.shape == (SIZE, SIZE, 3)
    assert (buffers.person >= 0).any() and image.std() > 5
