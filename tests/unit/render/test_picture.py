"""The epoch's picture: a titled ground-truth panel beside a titled prediction panel per image,
large enough to read, with the skeleton and the meshes where the people are."""

from __future__ import annotations

import numpy as np
import torch

from instancehmr.render.picture import PANEL, SKELETON_COLOUR, TITLE, validation_picture


def test_each_image_gets_truth_beside_prediction(body):
    images = np.full((2, 64, 64, 3), 90, np.uint8)
    joints = np.zeros((1, 24, 2))
    joints[0, :, 0], joints[0, :, 1] = 20.0, np.linspace(10, 50, 24)  # a vertical line at x = 20
    visible = np.ones((1, 24), bool)
    with torch.no_grad():
        out = body(torch.diag(torch.tensor([1.0, -1.0, -1.0]))[None], torch.eye(3).repeat(1, 23, 1, 1),
                   torch.zeros(1, 10))  # fmt: skip
    vertices = (out.vertices - out.joints[:, :1]).numpy()
    camera = np.array([[0.8, 0.3, 0.0]])  # right of centre
    picture = validation_picture(images, [joints, joints[:0]], [visible, visible[:0]],
                                 [vertices, vertices[:0]], [camera, camera[:0]], body.faces)  # fmt: skip
    assert picture.shape == (2 * (TITLE + PANEL), 2 * PANEL, 3)
    truth = picture[TITLE : TITLE + PANEL, :PANEL]
    skeleton = (truth == SKELETON_COLOUR).all(axis=2)
    columns = np.flatnonzero(skeleton.any(axis=0))
    assert skeleton.sum() > 200 and abs(columns.mean() - (20.5 * PANEL / 64 - 0.5)) < 3
    found = picture[TITLE : TITLE + PANEL, PANEL:]
    drawn = (found != 90).any(axis=2)
    assert drawn.mean() > 0.02 and np.flatnonzero(drawn.any(axis=0)).mean() > PANEL / 2
    assert (picture[:TITLE] != 32).any()  # the titles are written
    assert (picture[2 * TITLE + PANEL :, PANEL:] == 90).all()  # nobody found: the image as it is
