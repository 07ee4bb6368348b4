"""Labels from the depth buffer: out of frame, occluded by another person, self-occluded,
visible; occlusion fractions; boxes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from instancehmr.body.joint_sets import CANONICAL_INDEX, FACE_VERTEX_JOINTS
from instancehmr.data.schema import (
    VIS_OCCLUDED_BY_PERSON,
    VIS_OUT_OF_FRAME,
    VIS_SELF_OCCLUDED,
    VIS_VISIBLE,
)
from instancehmr.data.synthetic.labels import (
    SURFACE_JOINTS,
    face_parts,
    joint_neighbourhoods,
    joint_visibility,
    label_people,
    occlusion_fractions,
)
from instancehmr.data.synthetic.scene import ARCHETYPES, CrowdGenerator, pose_people
from instancehmr.render.mesh import MeshRenderer, project

SIZE = 256
K = np.array([[240.0, 0, (SIZE - 1) / 2], [0, 240.0, (SIZE - 1) / 2], [0, 0, 1]])
J = CANONICAL_INDEX
TRUNK = [J[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
ON_SURFACE = {*SURFACE_JOINTS.tolist(), J["head_top"]}  # mesh vertices


@pytest.fixture(scope="module")
def renderer(body):
    return MeshRenderer(body.faces)


@pytest.fixture(scope="module")
def parts(body):
    return face_parts(body)


def people(body, placements):
    """Vertices (N, V, 3) and joints (N, 48, 3) of people (archetype, yaw degrees, pelvis)."""
    poses, shifts = [], []
    for archetype, yaw, _ in placements:
        pose = ARCHETYPES[archetype].copy()
        upright = Rotation.from_euler("xy", [180, yaw], degrees=True)
        pose[0] = (upright * Rotation.from_rotvec(pose[0])).as_rotvec()
        poses.append(pose)
    poses = np.stack(poses).astype(np.float32)
    zero = np.zeros((len(poses), 3))
    _, joints = pose_people(body, poses, np.zeros((len(poses), 10)), zero)
    shifts = np.array([p[2] for p in placements]) - joints[:, J["pelvis"]]
    return pose_people(body, poses, np.zeros((len(poses), 10)), shifts)


def codes(body, renderer, parts, placements):
    vertices, joints = people(body, placements)
    buffers = renderer.render(vertices, K, SIZE, SIZE)
    return joint_visibility(joints, K, buffers, parts), buffers, joints


def test_neighbourhoods():
    near = joint_neighbourhoods()
    wrist, elbow, hand = J["left_wrist"], J["left_elbow"], J["left_hand"]
    assert near[wrist, [wrist, elbow, hand]].all() and not near[wrist, J["spine2"]]
    assert near[J["nose"], J["head"]] and near[J["h36m_left_wrist"], wrist]
    assert near[J["upper_neck"], [J["neck"], J["head"]]].all()
    assert all(near[j].any() for j in range(near.shape[0]))


def test_person_alone_facing_the_camera(body, renderer, parts):
    vis, buffers, _ = codes(body, renderer, parts, [("stand", 0, [0, 0, 3.0])])
    assert not (vis == VIS_OCCLUDED_BY_PERSON).any() and not (vis == VIS_OUT_OF_FRAME).any()
    assert (vis[0, TRUNK] == VIS_VISIBLE).all()
    assert (vis[0, [J[n] for n in FACE_VERTEX_JOINTS]] == VIS_VISIBLE).all()
    assert occlusion_fractions(buffers).tolist() == [0.0]


def test_back_view_hides_the_face(body, renderer, parts):
    vis, _, _ = codes(body, renderer, parts, [("stand", 180, [0, 0, 3.0])])
    assert (vis[0, [J["nose"], J["left_eye"], J["right_eye"]]] == VIS_SELF_OCCLUDED).all()
    assert (vis[0, [J["left_ear"], J["right_ear"], J["head_top"]]] == VIS_VISIBLE).all()


def test_wrists_behind_the_torso_are_self_occluded(body, renderer, parts):
    vis, _, _ = codes(body, renderer, parts, [("arms_crossed", 180, [0, 0, 3.0])])
    wrists = [J["left_wrist"], J["right_wrist"]]
    assert (vis[0, wrists] == VIS_SELF_OCCLUDED).all()
    assert (vis[0, [J["left_knee"], J["right_knee"]]] == VIS_VISIBLE).all()


def test_person_fully_behind_another(body, renderer, parts):
    placements = [("stand", 0, [0, 0, 6.0]), ("stand", 0, [0, 0, 2.5])]
    vis, buffers, _ = codes(body, renderer, parts, placements)
    occlusion = occlusion_fractions(buffers)
    assert occlusion[0] > 0.9 and occlusion[1] == 0
    assert (vis[0, TRUNK] == VIS_OCCLUDED_BY_PERSON).all()
    assert (vis[0] == VIS_OCCLUDED_BY_PERSON).mean() > 0.8
    assert not (vis[1] == VIS_OCCLUDED_BY_PERSON).any()


def test_out_of_frame_joints(body, renderer, parts):
    vis, _, joints = codes(body, renderer, parts, [("star", 0, [-1.3, 0.2, 3.0])])
    uv = project(joints.astype(np.float64), K)
    outside = ((uv < -0.5) | (uv >= SIZE - 0.5)).any(-1)
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(vis == VIS_OUT_OF_FRAME, outside)


def test_visible_joints_lie_on_their_person(generator_scenes):
    for buffers, persons in generator_scenes:
        for p, person in enumerate(persons):
            pixel = np.floor(person.keypoints_2d + 0.5).astype(int)
            visible = person.keypoints_2d_vis == VIS_VISIBLE
            for j in np.flatnonzero(visible):
                x, y = pixel[j]
                if j in ON_SURFACE:  # within a pixel of the silhouette
                    window = buffers.person[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                    assert (window == p).any()
                else:
                    assert buffers.person[y, x] == p
            hidden = person.keypoints_2d_vis == VIS_OCCLUDED_BY_PERSON
            for x, y in pixel[hidden]:
                assert buffers.person[y, x] not in (p, -1)


@pytest.fixture(scope="module")
def generator_scenes(body):
    generator, parts = CrowdGenerator(body), face_parts(body)
    out = []
    for i in range(6):
        scene = generator.sample(np.random.default_rng([5, i]), SIZE, 6, "severe")
        _, buffers = generator.draw(scene)
        persons = label_people(scene, buffers, parts)
        assert len(persons) == len(scene.people.pose)  # every person has pixels in frame
        out.append((buffers, persons))
    return out


def test_labels_of_sampled_scenes(generator_scenes):
    seen = set()
    for buffers, persons in generator_scenes:
        occlusion = occlusion_fractions(buffers)
        for p, person in enumerate(persons):
            assert person.occlusion == pytest.approx(occlusion[p])
            assert 0 <= person.occlusion <= 1 and person.smpl_source == "gt"
            x0, y0, x1, y1 = person.box
            assert 0 <= x0 < x1 <= SIZE - 1 and 0 <= y0 < y1 <= SIZE - 1
            mine = np.argwhere(buffers.person == p)
            assert (mine[:, ::-1] >= [x0 - 1, y0 - 1]).all()
            assert (mine[:, ::-1] <= [x1 + 1, y1 + 1]).all()
            seen |= set(person.keypoints_2d_vis.tolist())
    assert {VIS_VISIBLE, VIS_OCCLUDED_BY_PERSON, VIS_SELF_OCCLUDED} <= seen
