"""The benchmarks ``instancehmr eval`` runs: which corpus split, which metrics, which joints.

* ``mesh`` benchmarks report MPJPE / PA-MPJPE / MPVPE (mm) under both protocols of
  :mod:`instancehmr.eval.protocols`, on the joint pairs of ``joints`` (the first pair is the
  root the 3-D joints are aligned on), optionally per subset (Panoptic's sequence groups and
  their mean, the synthetic split's occlusion levels). Where the joint pairs name a
  ``protocol_joints`` count (Panoptic), MPJPE follows the benchmark's protocol and the mean over
  each person's labelled joints is reported beside it, in the ``labelled:`` subsets;
* ``keypoints`` benchmarks report OKS average precision of the mesh's projected joints mapped
  to the benchmark's joint set, against the benchmark's own annotation file, by the benchmark's
  own definition of AP (:mod:`instancehmr.eval.keypoint_ap`: COCO's for OCHuman, CrowdPose's
  for CrowdPose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from instancehmr.body.joint_sets import (
    CANONICAL_INDEX,
    COCO17,
    CROWDPOSE14,
    H36M17,
    SMPL24,
    JointSet,
)
from instancehmr.data.corpora.panoptic import sample_group
from instancehmr.eval.keypoint_ap import COCO_SIGMAS, CROWDPOSE_SIGMAS

#: gt-centers: the release's (read at each GT person's center); detected: the model's own.
PROTOCOLS = ("gt-centers", "detected")


@dataclass(frozen=True)
class JointPairs:
    """The joints a 3-D error compares: predicted and ground-truth canonical names, pairwise;
    the first pair is the root both skeletons are aligned on. ``protocol_joints``: the joint
    count the benchmark's MPJPE divides each person's summed error by (its full skeleton,
    unlabelled joints counting as zero error); None averages over the person's labelled
    joints."""

    name: str
    pred: tuple[str, ...]
    gt: tuple[str, ...]
    protocol_joints: int | None = None

    @property
    def pred_indices(self) -> list[int]:
        return [CANONICAL_INDEX[n] for n in self.pred]

    @property
    def gt_indices(self) -> list[int]:
        return [CANONICAL_INDEX[n] for n in self.gt]


#: SMPL-24 joints against SMPL-24 labels, pelvis-aligned (3DPW, synthetic).
SMPL24_PAIRS = JointPairs("smpl24", SMPL24, SMPL24)
#: Human3.6M-17 joints of the mesh against the Panoptic-19 joints that have a Human3.6M
#: counterpart (Panoptic's body center is the pelvis, its neck the thorax), pelvis-aligned, in
#: metres, MPJPE over all 17 Human3.6M joints with the three Panoptic lacks (spine, neck/nose,
#: head top) and unlabelled ones counting as zero error, per person, then per sequence group,
#: then the unweighted mean of the four groups: the protocol of CRMH
#: (github.com/JiangWenPL/multiperson: ``mmdetection/mmdet/core/utils/eval_utils.py``,
#: ``PanopticEvalHandler``; ``mmdetection/mmdet/models/utils/smpl_utils.py``, ``J24_TO_H36M``;
#: ``misc/preprocess_datasets/full/panoptic.py``: labelled = confidence > 0.1, centimetres to
#: metres), which ROMP follows (github.com/Arthur151/ROMP: ``romp/test.py``,
#: ``test_cmu_panoptic``) and the methods of the paper's Table 2 report.
PANOPTIC_ON_H36M = (
    ("pelvis", "pelvis"), ("right_hip", "right_hip"), ("right_knee", "right_knee"),
    ("right_ankle", "right_ankle"), ("left_hip", "left_hip"), ("left_knee", "left_knee"),
    ("left_ankle", "left_ankle"), ("thorax", "neck"), ("left_shoulder", "left_shoulder"),
    ("left_elbow", "left_elbow"), ("left_wrist", "left_wrist"),
    ("right_shoulder", "right_shoulder"), ("right_elbow", "right_elbow"),
    ("right_wrist", "right_wrist"),
)  # fmt: skip
H36M_PAIRS = JointPairs(
    "h36m17",
    tuple(f"h36m_{h}" for h, _ in PANOPTIC_ON_H36M),
    tuple(g for _, g in PANOPTIC_ON_H36M),
    protocol_joints=len(H36M17),
)


def panoptic_group(sample_id: str) -> str:
    """Sequence group of a CMU Panoptic sample (Haggling, Mafia, Ultimatum, Pizza)."""

    return sample_group(sample_id)


@dataclass(frozen=True)
class Benchmark:
    """``card`` and ``split`` name the data (card None: the training mix's own split, read
    through the training pipeline); ``kind`` is ``mesh`` or ``keypoints``."""

    name: str
    title: str
    card: str | None
    split: str
    kind: str
    joints: JointPairs | None = None
    #: Sample id -> subset name (reported per subset and as the mean over subsets).
    group: Callable[[str], str] | None = None
    #: Subsets by each person's occlusion fraction (the synthetic split records it).
    by_occlusion: bool = False
    keypoint_set: JointSet | None = None
    sigmas: np.ndarray | None = None
    #: ``keypoint_ap.AP_DEFINITIONS``: whose OKS scale and AP subsets (``coco``, ``crowdpose``).
    ap_definition: str | None = None


BENCHMARKS = {
    b.name: b
    for b in (
        Benchmark("3dpw-pc", "3DPW-PC", "datasets/3dpw.yaml", "pc", "mesh", SMPL24_PAIRS),
        Benchmark("3dpw", "3DPW test (protocol 3)", "datasets/3dpw.yaml", "test", "mesh",
                  SMPL24_PAIRS),
        Benchmark("ochuman", "OCHuman test", "datasets/ochuman.yaml", "test", "keypoints",
                  keypoint_set=COCO17, sigmas=COCO_SIGMAS, ap_definition="coco"),
        Benchmark("crowdpose", "CrowdPose test", "datasets/crowdpose.yaml", "test", "keypoints",
                  keypoint_set=CROWDPOSE14, sigmas=CROWDPOSE_SIGMAS, ap_definition="crowdpose"),
        Benchmark("panoptic", "CMU Panoptic", "datasets/panoptic.yaml", "test", "mesh", H36M_PAIRS,
                  group=panoptic_group),
        Benchmark("synthetic", "Synthetic crowd test", "datasets/synthetic.yaml", "test", "mesh",
                  SMPL24_PAIRS, by_occlusion=True),
    )
}  # fmt: skip


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; a ValueError listing the known ones otherwise."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark '{name}'; known: {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]
