"""Labels of a drawn synthetic scene, exact by construction: joints from the body model, 2-D
joints through the camera, visibility and occlusion from the render's depth buffer.

Per joint (canonical set, J = 48), at the pixel nearest to its projection:

* ``VIS_OUT_OF_FRAME``: the projection lies outside the image;
* ``VIS_OCCLUDED_BY_PERSON``: the first surface hit belongs to another person, in front of it;
* ``VIS_SELF_OCCLUDED``: the first hit is the person's own body but a part far from the joint:
  for a joint inside the body, a triangle whose dominant skinning joint is neither the joint's
  own body part(s) nor a kinematic neighbour of them; for a face keypoint on the surface (nose,
  eyes, ears), a hit more than ``SURFACE_TOLERANCE`` in front of it (the crown, a silhouette
  landmark, follows the part rule: only a part other than the head hides it);
* ``VIS_VISIBLE`` otherwise (the person's nearby surface, or nothing in front of it).

Occlusion fraction of a person: 1 - (its visible silhouette pixels) / (its silhouette pixels when
rendered alone), within the image.
"""

from __future__ import annotations

import numpy as np

from instancehmr.body.joint_sets import (
    CANONICAL,
    CANONICAL_INDEX,
    FACE_VERTEX_JOINTS,
    SMPL24,
    SMPL_PARENTS,
)
from instancehmr.body.smpl import BodyModel
from instancehmr.data.schema import (
    VIS_OCCLUDED_BY_PERSON,
    VIS_OUT_OF_FRAME,
    VIS_SELF_OCCLUDED,
    VIS_VISIBLE,
    Person,
)
from instancehmr.data.synthetic.scene import Scene
from instancehmr.render.mesh import RenderBuffers, project

SURFACE_JOINTS = np.array([CANONICAL.index(n) for n in FACE_VERTEX_JOINTS])
SURFACE_TOLERANCE = 0.04  # metres
#: Body parts (SMPL joints) of canonical joints that are not SMPL joints themselves.
_OWN_PARTS = {
    **{name: ("head",) for name in (*FACE_VERTEX_JOINTS, "head_top")},
    "upper_neck": ("neck", "head"),
    "h36m_spine": ("spine1", "spine2"),
    "h36m_thorax": ("spine3", "neck"),
    "h36m_neck_nose": ("neck", "head"),
    "h36m_head_top": ("head",),
}


def joint_neighbourhoods() -> np.ndarray:
    """(48, 24) bool: the body parts whose surface counts as near each canonical joint (its
    own parts, their parents and children)."""
    index = {name: j for j, name in enumerate(SMPL24)}
    near = np.zeros((len(CANONICAL), 24), bool)
    for c, name in enumerate(CANONICAL):
        own = [index[p] for p in _OWN_PARTS.get(name, (name.removeprefix("h36m_"),))]
        for j in own:
            near[c, j] = True
            near[c, [k for k, parent in enumerate(SMPL_PARENTS) if parent == j]] = True
            if SMPL_PARENTS[j] >= 0:
                near[c, SMPL_PARENTS[j]] = True
    return near


_NEAR = joint_neighbourhoods()


def face_parts(body: BodyModel) -> np.ndarray:
    """(F,) dominant skinning joint of each triangle (sum of its vertices' weights)."""
    weights = body.smpl.lbs_weights.numpy()
    return weights[body.faces].sum(1).argmax(1)


def joint_visibility(
    joints: np.ndarray, intrinsics: np.ndarray, buffers: RenderBuffers, face_part: np.ndarray
) -> np.ndarray:
    """(N, 48) int8 ``VIS_*`` codes of camera-frame joints (N, 48, 3) (see module doc)."""
    height, width = buffers.person.shape
    pixel = np.floor(project(joints, intrinsics) + 0.5).astype(np.int64)
    inside = (pixel >= 0).all(-1) & (pixel[..., 0] < width) & (pixel[..., 1] < height)
    x, y = np.where(inside, pixel[..., 0], 0), np.where(inside, pixel[..., 1], 0)
    hit, depth = buffers.person[y, x], buffers.depth[y, x]
    in_front = depth < joints[..., 2]
    own = hit == np.arange(len(joints))[:, None]
    part = face_part[np.maximum(buffers.triangle[y, x], 0)]
    far_part = ~_NEAR[np.arange(joints.shape[1]), part]
    far_part[:, SURFACE_JOINTS] = depth[:, SURFACE_JOINTS] < (
        joints[:, SURFACE_JOINTS, 2] - SURFACE_TOLERANCE
    )
    code = np.full(hit.shape, VIS_VISIBLE, np.int8)
    code[own & far_part & in_front] = VIS_SELF_OCCLUDED
    code[(hit >= 0) & ~own & in_front] = VIS_OCCLUDED_BY_PERSON
    code[~inside] = VIS_OUT_OF_FRAME
    return code


def occlusion_fractions(buffers: RenderBuffers) -> np.ndarray:
    """(N,) 1 - visible / alone silhouette pixels of each person (1 for no pixel at all)."""
    alone = buffers.alone_pixels
    visible = buffers.visible_pixels(len(alone))
    return 1 - visible / np.maximum(alone, 1)


def label_people(scene: Scene, buffers: RenderBuffers, face_part: np.ndarray) -> list[Person]:
    """One :class:`Person` per person of ``scene`` with silhouette pixels in the image."""
    people, intrinsics = scene.people, scene.camera.intrinsics
    keypoints_2d = project(people.joints.astype(np.float64), intrinsics).astype(np.float32)
    visibility = joint_visibility(people.joints, intrinsics, buffers, face_part)
    boxes = np.clip(buffers.boxes, 0, scene.camera.size - 1)  # projected vertices, in frame
    occlusion = occlusion_fractions(buffers)
    return [
        Person(
            keypoints_2d=keypoints_2d[i],
            keypoints_2d_vis=visibility[i],
            box=boxes[i],
            keypoints_3d=people.joints[i],
            keypoints_3d_valid=np.ones(len(CANONICAL), bool),
            smpl_pose=people.pose[i].reshape(72),
            smpl_betas=people.betas[i],
            smpl_transl=people.joints[i, CANONICAL_INDEX["pelvis"]],  # schema: camera-frame pelvis
            smpl_source="gt",
            occlusion=float(occlusion[i]),
            gender="neutral",
        )
        for i in range(len(people.pose))
        if buffers.alone_pixels[i] > 0
    ]
