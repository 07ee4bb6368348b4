"""Named joint sets, their mapping onto the canonical set that shards store, and left/right flips.

The canonical set (``CANONICAL``, 48 joints) is what every shard stores and every loss compares:

* 0-23: SMPL-24 joints (the body model's joint regressor), in SMPL order;
* 24-28: face keypoints at fixed mesh vertices (smplx's own vertex ids): nose, eyes, ears;
* 29: ``head_top`` (mesh vertex at the crown), 30: ``upper_neck`` (midway neck - head);
* 31-47: the Human3.6M-17 joints (``h36m_*``) from the Human3.6M vertex regressor.

A dataset joint maps onto the canonical joint with the same meaning. Where a dataset's joint only
approximates an SMPL joint (COCO's hips are lateral to SMPL's), the mapping follows the common
practice of ROMP/BEV and maps it anyway; each such case is marked in ``APPROXIMATE``. Human3.6M's
own joints are kept apart (``h36m_*``) so 3-D labels of H36M-style corpora are compared exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Imported inside the functions that use them, to keep this module light: torch.

SMPL24 = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
#: SMPL's kinematic tree: the parent of each SMPL24 joint (-1 for the root).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
H36M17 = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
#: Row order of the Human3.6M-17 vertex regressor file ``J_regressor_h36m.npy`` (SPIN's data, as
#: SPIN, CRMH, ROMP and mmhuman3d read it): the LEFT leg in rows 1-3, the right leg in rows 4-6,
#: unlike the Human3.6M-17 label order ``H36M17`` of the corpora. Rows are mapped by name.
H36M_REGRESSOR_ROWS = (
    "pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
    "spine", "thorax", "neck_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
FACE_VERTEX_JOINTS = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
#: Mesh vertex ids of SMPL's surface landmarks, by smplx's names (``vertex_ids['smplh']``), plus
#: the crown (``head_top``): face, finger tips and feet.
LANDMARK_VERTEX_IDS = {
    "nose": 332, "reye": 6260, "leye": 2800, "rear": 4071, "lear": 583, "head_top": 412,
    "rthumb": 6191, "rindex": 5782, "rmiddle": 5905, "rring": 6016, "rpinky": 6133,
    "lthumb": 2746, "lindex": 2319, "lmiddle": 2445, "lring": 2556, "lpinky": 2673,
    "LBigToe": 3216, "LSmallToe": 3226, "LHeel": 3387,
    "RBigToe": 6617, "RSmallToe": 6624, "RHeel": 6787,
}  # fmt: skip
#: Mesh vertex ids of the canonical keypoints read off the mesh: the face and the crown.
JOINT_VERTEX_IDS = {
    name: LANDMARK_VERTEX_IDS[smplx_name]
    for name, smplx_name in (
        ("nose", "nose"), ("right_eye", "reye"), ("left_eye", "leye"), ("right_ear", "rear"),
        ("left_ear", "lear"), ("head_top", "head_top"),
    )
}  # fmt: skip
CANONICAL = (*SMPL24, *FACE_VERTEX_JOINTS, "head_top", "upper_neck", *(f"h36m_{n}" for n in H36M17))
NUM_CANONICAL = len(CANONICAL)
CANONICAL_INDEX = {name: i for i, name in enumerate(CANONICAL)}
#: First canonical index of the Human3.6M-17 block.
H36M_OFFSET = CANONICAL_INDEX["h36m_pelvis"]


@dataclass(frozen=True)
class JointSet:
    """A dataset's or benchmark's joints, in its own order, and their canonical names."""

    name: str
    joints: tuple[str, ...]
    canonical: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.joints) != len(self.canonical):
            raise ValueError(
                f"joint set {self.name}: {len(self.joints)} joints, {len(self.canonical)} mapped"
            )
        unknown = [c for c in self.canonical if c not in CANONICAL_INDEX]
        if unknown:
            raise ValueError(f"joint set {self.name}: unknown canonical joints {unknown}")

    @property
    def canonical_indices(self) -> np.ndarray:
        """(J,) index into ``CANONICAL`` of each joint of this set."""
        return np.array([CANONICAL_INDEX[c] for c in self.canonical], dtype=np.int64)

    def to_canonical(self, values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scatter per-joint ``values`` (..., J, C) and ``valid`` (..., J) into the canonical set.

        Returns (..., 48, C) values (0 where unlabelled) and a (..., 48) bool mask.
        """
        if values.shape[-2] != len(self.joints):
            raise ValueError(
                f"joint set {self.name} has {len(self.joints)} joints, got an array of shape {values.shape}"
            )
        out = np.zeros((*values.shape[:-2], NUM_CANONICAL, values.shape[-1]), dtype=values.dtype)
        mask = np.zeros((*values.shape[:-2], NUM_CANONICAL), dtype=bool)
        out[..., self.canonical_indices, :] = values
        mask[..., self.canonical_indices] = valid
        return out, mask

    def from_canonical(self, values):
        """Select this set's joints from canonical (..., 48, C) values (numpy or torch)."""
        return values[..., self.canonical_indices.tolist(), :]


COCO17 = JointSet(
    "coco17",
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
)  # fmt: skip
CROWDPOSE14 = JointSet(
    "crowdpose14",
    (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "head", "neck",
    ),
    (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "head_top", "upper_neck",
    ),
)  # fmt: skip
MPII16 = JointSet(
    "mpii16",
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
        "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    ),
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "neck", "upper_neck", "head_top", "right_wrist", "right_elbow",
        "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    ),
)  # fmt: skip
LSP14 = JointSet(
    "lsp14",
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist", "neck", "head_top",
    ),
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist", "upper_neck", "head_top",
    ),
)  # fmt: skip
H36M = JointSet("h36m17", H36M17, tuple(f"h36m_{n}" for n in H36M17))
PANOPTIC19 = JointSet(
    "panoptic19",
    (
        "neck", "nose", "body_center", "left_shoulder", "left_elbow", "left_wrist", "left_hip",
        "left_knee", "left_ankle", "right_shoulder", "right_elbow", "right_wrist", "right_hip",
        "right_knee", "right_ankle", "left_eye", "left_ear", "right_eye", "right_ear",
    ),
    (
        "neck", "nose", "pelvis", "left_shoulder", "left_elbow", "left_wrist", "left_hip",
        "left_knee", "left_ankle", "right_shoulder", "right_elbow", "right_wrist", "right_hip",
        "right_knee", "right_ankle", "left_eye", "left_ear", "right_eye", "right_ear",
    ),
)  # fmt: skip
SMPL = JointSet("smpl24", SMPL24, SMPL24)
CANONICAL_SET = JointSet("canonical", CANONICAL, CANONICAL)

JOINT_SETS: dict[str, JointSet] = {
    s.name: s for s in (SMPL, COCO17, CROWDPOSE14, MPII16, LSP14, H36M, PANOPTIC19, CANONICAL_SET)
}

#: (joint set, dataset joint) pairs whose canonical target is an approximation of that joint.
APPROXIMATE = frozenset(
    {
        *(("coco17", j) for j in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")),
        *(("crowdpose14", j) for j in ("left_hip", "right_hip", "neck")),
        *(("mpii16", j) for j in ("left_hip", "right_hip", "pelvis", "thorax")),
        *(("lsp14", j) for j in ("left_hip", "right_hip", "neck")),
        *(("panoptic19", j) for j in ("neck", "body_center", "left_hip", "right_hip")),
    }
)

#: For each SMPL-24 joint heatmap channel, the canonical joints that may supply its 2-D position,
#: best first (a corpus labelling only Human3.6M joints still yields SMPL-24 heatmaps).
SMPL24_SOURCES: tuple[tuple[str, ...], ...] = tuple(
    (name, f"h36m_{name}") if f"h36m_{name}" in CANONICAL_INDEX else (name,) for name in SMPL24
)


def joint_set(name: str) -> JointSet:
    """The joint set called ``name`` (see ``JOINT_SETS``); a clear error for an unknown name."""
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise KeyError(f"unknown joint set '{name}'; known: {sorted(JOINT_SETS)}") from None


def flip_permutation(names: tuple[str, ...] = CANONICAL) -> np.ndarray:
    """(J,) index of each joint's mirror image (left <-> right) within ``names``."""
    index = {n: i for i, n in enumerate(names)}

    def mirror(name: str) -> str:
        for a, b in (("left_", "right_"), ("right_", "left_")):
            if a in name:
                return name.replace(a, b)
        return name

    return np.array([index[mirror(n)] for n in names], dtype=np.int64)


def smpl24_from_canonical(values, valid):
    """SMPL-24 joints from canonical (..., 48, C) values and (..., 48) mask (numpy arrays or
    torch tensors), each taken from the first labelled source of ``SMPL24_SOURCES``.

    Returns (..., 24, C) values and a (..., 24) mask of the same array type.
    """
    if isinstance(values, np.ndarray):
        where, out, mask = np.where, values[..., :24, :].copy(), valid[..., :24].copy()
    else:
        import torch

        where, out, mask = torch.where, values[..., :24, :].clone(), valid[..., :24].clone()
    for j, sources in enumerate(SMPL24_SOURCES):
        for name in sources[1:]:
            i = CANONICAL_INDEX[name]
            take = ~mask[..., j] & valid[..., i]
            out[..., j, :] = where(take[..., None], values[..., i, :], out[..., j, :])
            mask[..., j] |= take
    return out, mask
