import numpy as np

from instancehmr.data.targets import center_heatmap, center_radius, draw_gaussian, joint_heatmaps


def test_center_peaks_sit_at_the_centers_with_adaptive_radius():
    centers = np.array([[10.2, 20.7], [40.0, 5.0]])
    heat = center_heatmap(centers, np.array([[0.2, 0.4], [1.0, 1.6]]), 64)
    assert heat.shape == (1, 64, 64) and heat.dtype == np.float32
    assert heat[0, 21, 10] == 1.0 and heat[0, 5, 40] == 1.0 and (heat == 1.0).sum() == 2
    small, large = center_radius(np.array([[0.2, 0.4], [1.0, 1.6]]), 64)
    assert (small, large) == (2, 5)  # int(|wh/2| * 4 + 2)
    assert heat[0, 5, 38] > heat[0, 21, 8] > 0  # the bigger person's Gaussian is wider


def test_joint_heatmaps_skip_invisible_joints_and_take_the_max():
    joints = np.array([[[3.0, 3.0], [5.0, 5.0]], [[3.0, 4.0], [1.0, 1.0]]])
    visible = np.array([[True, True], [True, False]])
    heat = joint_heatmaps(joints, visible, 16)
    assert heat.shape == (2, 16, 16)
    assert heat[0, 3, 3] == 1.0 and heat[0, 4, 3] == 1.0  # both people's joint 0
    assert heat[1, 5, 5] == 1.0 and heat[1, 1, 1] < 1.0  # person 2's joint 1 is invisible


def test_off_map_centers_draw_nothing():
    heat = np.zeros((8, 8), np.float32)
    draw_gaussian(heat, np.array([-3.0, 4.0]), 1.0, 2)
    assert not heat.any()
