import torch

from instancehmr.geometry import (
    apply_affine,
    invert_affine,
    letterbox,
    normalized_to_pixels,
    weak_perspective_project,
)
from instancehmr.model.decode import decode_people, find_centers
from instancehmr.model.smpl_params import param_channels


def planted(batch=2, size=16):
    center = torch.full((batch, 1, size, size), -10.0)
    params = torch.zeros(batch, param_channels("axis_angle"), size, size)
    params[:, 3] = 1.0  # 6-D orientation = identity columns
    params[:, 6] = 1.0
    people = [(0, 3, 5, 4.0, 0.5), (0, 12, 9, 2.0, -0.3), (1, 7, 14, 3.0, 1.0)]
    for b, x, y, logit, beta0 in people:
        center[b, 0, y, x] = logit
        params[b, 0, y, x] = 2.0  # camera scale raw -> 1.1 ** 2
        params[b, 1, y, x] = x / size
        params[b, 72, y, x] = beta0
    center[0, 0, 5, 4] = 3.5  # a lower neighbour of (3, 5): suppressed by NMS
    center[1, 0, 0, 0] = -2.0  # score 0.12, below the threshold
    return center, params, people


def test_find_centers_nms_topk_threshold():
    center, _, _people = planted()
    b, xy, score = find_centers(center, kernel=5, max_people=64, threshold=0.2)
    assert b.tolist() == [0, 0, 1]
    assert xy.tolist() == [[3, 5], [12, 9], [7, 14]]
    assert torch.allclose(score, torch.sigmoid(torch.tensor([4.0, 2.0, 3.0])))
    _b1, xy1, _ = find_centers(center, max_people=1)
    assert xy1.tolist() == [[3, 5], [7, 14]]


def test_decode_reads_planted_parameters_and_maps_back(body):
    center, params, people = planted()
    transforms = torch.stack([letterbox(480, 640, 128), letterbox(300, 200, 128)])
    out = decode_people({"center_heatmap": center, "param_map": params}, body, 128, transforms)
    assert len(out) == 3 and out.vertices.shape == (3, 6890, 3) and out.joints.shape == (3, 48, 3)
    assert torch.allclose(out.betas[:, 0], torch.tensor([p[4] for p in people]))
    assert torch.allclose(out.camera[:, 0], torch.full((3,), 1.1**2))
    assert torch.allclose(out.camera[:, 1], torch.tensor([p[1] / 16 for p in people]))
    assert torch.allclose(out.joints[:, 0], torch.zeros(3, 3), atol=1e-6)  # pelvis-centred
    assert torch.allclose(out.pose[:, :3], torch.zeros(3, 3), atol=1e-5)  # identity orientation
    input_px = normalized_to_pixels(weak_perspective_project(out.joints, out.camera), 128)
    expected = apply_affine(input_px, invert_affine(transforms)[out.batch_index])
    assert torch.allclose(out.joints_2d, expected, atol=1e-4)
    # The second image is 300 x 200: its letterbox pads x; mapped joints land in its frame.
    assert out.joints_2d.shape == (3, 48, 2)


def test_a_batch_where_nobody_is_found_decodes_to_no_people(body):
    center, params, _ = planted()
    out = decode_people({"center_heatmap": center - 100, "param_map": params}, body, 128)
    assert (
        len(out) == 0 and out.vertices.shape == (0, 6890, 3) and out.joints_2d.shape == (0, 48, 2)
    )
