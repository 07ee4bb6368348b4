"""Both protocols on planted predictions whose ground truth is known exactly."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from instancehmr.body.joint_sets import NUM_CANONICAL
from instancehmr.body.model_file import read_smpl_file
from instancehmr.body.smpl import BodyModel
from instancehmr.data.schema import GENDERS
from instancehmr.eval.benchmarks import H36M_PAIRS, SMPL24_PAIRS
from instancehmr.eval.protocols import GroundTruthMeshes, MeshScorer, PersonErrors, merge
from instancehmr.geometry import pixels_to_normalized
from instancehmr.model.decode import people_from_params, read_params
from instancehmr.model.smpl_params import param_channels, split_params

SIZE, MAP = 128, 16
DECODE = SimpleNamespace(nms_kernel=5, max_people=8, center_threshold=0.2)
#: (image, x, y, camera scale raw, tx, body-pose offset, beta0) per planted person.
PEOPLE = [
    (0, 4, 5, 9.0, -0.4, 0.3, 0.5),
    (0, 11, 9, 9.0, 0.4, -0.2, -1.0),
    (1, 8, 8, 11.0, 0.0, 0.1, 1.5),
]


def planted_outputs(batch: int = 2):
    center = torch.full((batch, 1, MAP, MAP), -10.0)
    params = torch.zeros(batch, param_channels("axis_angle"), MAP, MAP)
    params[:, 3] = params[:, 6] = 1.0  # 6-D global orientation = identity
    for b, x, y, scale, tx, bend, beta0 in PEOPLE:
        center[b, 0, y, x] = 4.0
        params[b, 0, y, x] = scale
        params[b, 1, y, x] = tx
        params[b, 9:72:7, y, x] = bend
        params[b, 72, y, x] = beta0
    return {"center_heatmap": center, "param_map": params}


def batch_from_predictions(outputs, body, genders=(0, 0, 0)):
    """Ground truth equal to what the planted parameters decode to (pipeline layout)."""
    n = 2
    b_idx = torch.tensor([p[0] for p in PEOPLE])
    xy = torch.tensor([[p[1], p[2]] for p in PEOPLE])
    params = split_params(read_params(outputs["param_map"], b_idx, xy), "axis_angle")
    _, joints, joints_2d = people_from_params(params, body, SIZE)
    slot = torch.tensor([0, 1, 0])
    batch = {
        "images": torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8),
        "person_mask": torch.zeros(2, n, dtype=torch.bool),
        "centers": torch.zeros(2, n, 2),
        "keypoints_2d": torch.zeros(2, n, NUM_CANONICAL, 2),
        "keypoints_2d_mask": torch.zeros(2, n, NUM_CANONICAL, dtype=torch.bool),
        "keypoints_3d": torch.zeros(2, n, NUM_CANONICAL, 3),
        "keypoints_3d_mask": torch.zeros(2, n, NUM_CANONICAL, dtype=torch.bool),
        "pose": torch.zeros(2, n, 72),
        "pose_mask": torch.zeros(2, n, dtype=torch.bool),
        "betas": torch.zeros(2, n, 10),
        "betas_mask": torch.zeros(2, n, dtype=torch.bool),
        "occlusion": torch.tensor([[0.0, 0.3], [0.8, float("nan")]]),
        "gender": torch.zeros(2, n, dtype=torch.int8),
    }
    for i, (b, s) in enumerate(zip(b_idx.tolist(), slot.tolist(), strict=True)):
        batch["person_mask"][b, s] = True
        batch["centers"][b, s] = xy[i].float()
        batch["keypoints_2d"][b, s] = pixels_to_normalized(joints_2d[i], SIZE)
        batch["keypoints_2d_mask"][b, s] = True
        batch["keypoints_3d"][b, s] = joints[i]
        batch["keypoints_3d_mask"][b, s] = True
        batch["pose"][b, s] = params.axis_angle()[i]
        batch["pose_mask"][b, s] = batch["betas_mask"][b, s] = True
        batch["betas"][b, s] = params.betas[i]
        batch["gender"][b, s] = genders[i]
    return batch


@pytest.mark.parametrize("protocol", ["gt-centers", "detected"])
def test_predictions_equal_to_the_ground_truth_give_zero_errors(body, protocol):
    outputs = planted_outputs()
    scorer = MeshScorer(body, SIZE, "axis_angle", DECODE)
    errors = scorer.for_protocol(protocol)(outputs, batch_from_predictions(outputs, body))
    summary = errors.summary()
    assert summary["people"] == 3 and summary["recall"] == 1.0
    for key in ("mpjpe", "pa_mpjpe", "mpvpe"):
        assert summary[key] == pytest.approx(0.0, abs=1e-2), key


def test_detected_counts_a_miss_and_its_errors_cover_found_people_only(body):
    outputs = planted_outputs()
    batch = batch_from_predictions(outputs, body)
    outputs["center_heatmap"][1, 0, 8, 8] = -10.0  # the model no longer finds image 1's person
    errors = MeshScorer(body, SIZE, "axis_angle", DECODE).detected(outputs, batch)
    summary = errors.summary()
    assert summary["recall"] == pytest.approx(2 / 3) and summary["mpjpe"] == pytest.approx(
        0, abs=1e-2
    )
    levels = errors.by_occlusion()
    assert levels["heavy"]["people"] == 1 and levels["heavy"]["recall"] == 0.0
    assert levels["none"]["recall"] == 1.0


def test_a_known_offset_of_one_joint_gives_its_share_of_mpjpe(body):
    outputs = planted_outputs()
    batch = batch_from_predictions(outputs, body)
    batch["keypoints_3d"][0, 0, 5] += torch.tensor([0.0, 0.24, 0.0])  # right knee, 24 cm
    errors = MeshScorer(body, SIZE, "axis_angle", DECODE).at_gt_centers(outputs, batch)
    assert errors.column("mpjpe")[0] == pytest.approx(240.0 / 24, abs=0.05)


def test_h36m_pairs_compare_the_regressed_joints_with_panoptic_style_labels(body):
    outputs = planted_outputs()
    batch = batch_from_predictions(outputs, body)
    # Panoptic labels live in SMPL-named slots: copy the H36M joints there, then unlabel the rest.
    gt = batch["keypoints_3d"].clone()
    gt[..., H36M_PAIRS.gt_indices, :] = batch["keypoints_3d"][..., H36M_PAIRS.pred_indices, :]
    mask = torch.zeros_like(batch["keypoints_3d_mask"])
    mask[..., H36M_PAIRS.gt_indices] = batch["person_mask"][..., None]
    batch.update(keypoints_3d=gt, keypoints_3d_mask=mask)
    scorer = MeshScorer(body, SIZE, "axis_angle", DECODE, H36M_PAIRS)
    assert scorer.at_gt_centers(outputs, batch).summary()["mpjpe"] == pytest.approx(0, abs=1e-2)
    # Against SMPL-24 those slots hold other joints: the error is no longer zero.
    assert (
        MeshScorer(body, SIZE, "axis_angle", DECODE, SMPL24_PAIRS)
        .at_gt_centers(outputs, batch)
        .summary()["mpjpe"]
        > 5
    )


def panoptic_batch(outputs, body):
    """Panoptic-style labels: the predictions' Human3.6M joints in the Panoptic slots, the
    other slots unlabelled and holding NaN."""
    batch = batch_from_predictions(outputs, body)
    gt = torch.full_like(batch["keypoints_3d"], float("nan"))
    gt[..., H36M_PAIRS.gt_indices, :] = batch["keypoints_3d"][..., H36M_PAIRS.pred_indices, :]
    mask = torch.zeros_like(batch["keypoints_3d_mask"])
    mask[..., H36M_PAIRS.gt_indices] = batch["person_mask"][..., None]
    batch.update(keypoints_3d=gt, keypoints_3d_mask=mask)
    return batch


def test_panoptic_mpjpe_follows_the_17_joint_protocol_and_keeps_the_labelled_mean(body):
    """Person 0: all 14 Panoptic joints labelled, one 17 cm off: 170 / 17 = 10 mm under the
    protocol (CRMH, ROMP), 170 / 14 over its labelled joints. Person 1: root + 6 labelled (the
    others NaN), one 34 cm off: 20 mm and 340 / 7. Person 2: exact."""
    outputs = planted_outputs()
    batch = panoptic_batch(outputs, body)
    slots = H36M_PAIRS.gt_indices
    batch["keypoints_3d"][0, 0, slots[5]] += torch.tensor([0.0, 0.17, 0.0])
    batch["keypoints_3d"][0, 1, slots[3]] += torch.tensor([0.34, 0.0, 0.0])
    batch["keypoints_3d_mask"][0, 1, slots[7:]] = False
    batch["keypoints_3d"][0, 1, slots[7:]] = float("nan")
    errors = MeshScorer(body, SIZE, "axis_angle", DECODE, H36M_PAIRS).at_gt_centers(
        outputs, batch, np.array(["Haggling", "Pizza"])
    )
    assert errors.column("mpjpe") == pytest.approx([10.0, 20.0, 0.0], abs=0.02)
    assert errors.column("mpjpe_labelled") == pytest.approx([170 / 14, 340 / 7, 0.0], abs=0.02)
    assert np.isfinite(errors.column("pa_mpjpe")).all()
    protocol, labelled = errors.by_group(), errors.labelled_joints().by_group()
    # Haggling holds people 0 and 1 (image 0), Pizza person 2; the mean is over the groups.
    assert protocol["Haggling"]["mpjpe"] == pytest.approx(15.0, abs=0.02)
    assert protocol["mean"]["mpjpe"] == pytest.approx(7.5, abs=0.02)
    assert labelled["Haggling"]["mpjpe"] == pytest.approx(30.357, abs=0.02)
    assert labelled["mean"]["mpjpe"] == pytest.approx(15.179, abs=0.02)


def test_gendered_meshes_use_each_persons_body(body, tmp_path, monkeypatch):
    from instancehmr.body.synthetic import ensure_synthetic_body

    data = read_smpl_file(ensure_synthetic_body())
    data["v_template"] = data["v_template"] * 1.1
    np.savez(tmp_path / "SMPL_FEMALE.npz", **data)
    regressor = ensure_synthetic_body().parent / "J_regressor_h36m.npy"
    female = BodyModel(tmp_path / "SMPL_FEMALE.npz", regressor)
    meshes = GroundTruthMeshes({"neutral": body, "female": female})
    outputs = planted_outputs()
    codes = (GENDERS.index("female"), GENDERS.index("male"), GENDERS.index("neutral"))
    batch = batch_from_predictions(outputs, body, codes)
    scorer = MeshScorer(body, SIZE, "axis_angle", DECODE, meshes=meshes)
    mpvpe = scorer.at_gt_centers(outputs, batch).column("mpvpe")
    assert mpvpe[0] > 10  # the female GT mesh is 10 % larger than the neutral prediction
    assert mpvpe[1] == pytest.approx(0, abs=1e-2)  # no male model given: the neutral one
    assert mpvpe[2] == pytest.approx(0, abs=1e-2)


def test_groups_and_their_unweighted_mean():
    errors = PersonErrors(
        found=[np.array([True, True, False, True])],
        mpjpe=[np.array([100.0, 200.0, np.nan, 60.0])],
        pa_mpjpe=[np.full(4, 50.0)],
        mpvpe=[np.full(4, np.nan)],
        occlusion=[np.full(4, np.nan)],
        group=[np.array(["Mafia", "Mafia", "Pizza", "Pizza"])],
    )
    groups = merge([errors]).by_group()
    assert list(groups) == ["Mafia", "Pizza", "mean"]
    assert groups["Mafia"]["mpjpe"] == 150.0 and groups["Pizza"]["mpjpe"] == 60.0
    assert groups["mean"]["mpjpe"] == 105.0 and groups["mean"]["people"] == 4
    assert groups["mean"]["recall"] == pytest.approx(0.75)


def test_unknown_protocol_is_refused(body):
    with pytest.raises(ValueError, match="unknown protocol 'oracle'"):
        MeshScorer(body, SIZE, "axis_angle", DECODE).for_protocol("oracle")
