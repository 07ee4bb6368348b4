"""The predictor places planted people exactly: in original-image pixels through the letterbox,
and in the camera frame at the stated focal length (the pelvis projects where the 2-D pelvis is)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from instancehmr.body.joint_sets import CANONICAL_INDEX
from instancehmr.geometry import apply_affine, invert_affine, letterbox
from instancehmr.model.decode import people_from_params, read_params
from instancehmr.model.predictor import Predictor, focal_length, letterbox_image
from instancehmr.model.smpl_params import param_channels, split_params

MAP = 8
#: (image, map x, map y, s, tx, ty)
PLANTED = [(0, 4, 3, 0.5, 0.1, -0.2), (0, 1, 6, 0.3, -0.5, 0.4), (2, 6, 2, 0.8, 0.0, 0.0)]


class PlantedNetwork(torch.nn.Module):
    """Outputs the planted maps for any batch of up to three images."""

    def __init__(self) -> None:
        super().__init__()
        center = torch.full((3, 1, MAP, MAP), -10.0)
        params = torch.zeros(3, param_channels("axis_angle"), MAP, MAP)
        params[:, 3] = params[:, 6] = 1.0  # 6-D global orientation = identity
        for b, x, y, s, tx, ty in PLANTED:
            center[b, 0, y, x] = 4.0
            params[b, 0:3, y, x] = torch.tensor([s, tx, ty])
            params[b, 9:72:7, y, x] = 0.3
        self.register_buffer("center", center)
        self.register_buffer("params", params)

    def forward(self, images):
        n = len(images)
        return {"center_heatmap": self.center[:n], "param_map": self.params[:n]}


def test_letterbox_image_maps_pixels_by_its_affine():
    image = np.zeros((100, 50, 3), np.uint8)
    image[40, 10] = 255
    warped, affine = letterbox_image(image, 64)
    x, y = affine @ np.array([10.0, 40.0, 1.0])
    assert warped.shape == (64, 64, 3)
    assert np.unravel_index(warped[..., 0].argmax(), (64, 64)) == (round(y), round(x))


@pytest.fixture
def predictions(body, tiny_cfg):
    images = [np.zeros((100, 50, 3), np.uint8), np.zeros((30, 90, 3), np.uint8),
              np.zeros((64, 64, 3), np.uint8)]  # fmt: skip
    cfg = OmegaConf.merge(tiny_cfg, {"decode": {"center_threshold": 0.5}})
    return images, Predictor(PlantedNetwork(), body, cfg, "cpu", fov_deg=60.0)(images)


def test_planted_people_are_found_in_original_pixels(body, predictions):
    images, found = predictions
    assert [len(p) for p in found] == [2, 0, 1]  # image 1 has nobody: an empty list
    assert found[1].records() == []
    net = PlantedNetwork()
    for b, people in ((0, found[0]), (2, found[2])):
        planted = [p for p in PLANTED if p[0] == b]
        xy = torch.tensor([[p[1], p[2]] for p in planted])
        raw = read_params(net.params, torch.full((len(planted),), b), xy)
        joints_2d = people_from_params(split_params(raw, "axis_angle"), body, 64)[2]
        h, w = images[b].shape[:2]
        expected = apply_affine(joints_2d[:, :24], invert_affine(letterbox(h, w, 64)))
        for person in expected.numpy():  # each planted person is found, in original pixels
            gaps = np.abs(people.joints_2d - person).max(axis=(1, 2))
            assert gaps.min() < 1e-3, gaps
        assert people.vertices.shape == (len(planted), 6890, 3)
        assert people.global_orient == pytest.approx(np.zeros((len(planted), 3)), abs=1e-5)


def test_translation_places_the_pelvis_where_the_2d_pelvis_is(predictions):
    images, found = predictions
    pelvis = CANONICAL_INDEX["pelvis"]
    for image, people in zip(images, found, strict=True):
        h, w = image.shape[:2]
        f = focal_length(h, w, 60.0)
        assert f == pytest.approx(max(h, w) / 2 / math.tan(math.radians(30)))
        for i in range(len(people)):
            s, tx, ty = people.camera[i]
            t = people.translation[i]
            assert t == pytest.approx(
                [tx / s, ty / s, 1 / (s * math.tan(math.radians(30)))], rel=1e-5
            )
            assert people.joints_3d[i, pelvis] == pytest.approx(t, abs=1e-5)
            u = f * t[0] / t[2] + (w - 1) / 2
            v = f * t[1] / t[2] + (h - 1) / 2
            assert [u, v] == pytest.approx(people.joints_2d[i, pelvis].tolist(), abs=1e-3)


def test_records_carry_every_field_and_vertices_on_request(predictions):
    people = predictions[1][0]
    (first, _) = people.records()
    assert set(first) == {"score", "global_orient", "body_pose", "betas", "camera", "translation",
                          "joints_2d", "joints_3d"}  # fmt: skip
    assert len(first["body_pose"]) == 69 and len(first["joints_2d"]) == 24
    assert len(people.records(vertices=True)[0]["vertices"]) == 6890


def test_a_field_of_view_out_of_range_is_refused(body, tiny_cfg):
    with pytest.raises(ValueError, match="field of view"):
        Predictor(PlantedNetwork(), body, tiny_cfg, "cpu", fov_deg=180.0)
