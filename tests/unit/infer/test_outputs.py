"""Prediction files read back: meshes with 6890 vertices per person in trimesh, JSON lines and
arrays with the documented fields, an overlay that draws the people."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch
import trimesh

from instancehmr.infer.inputs import Frame
from instancehmr.infer.outputs import PredictionWriter, mesh_file
from instancehmr.model.predictor import ImagePeople


def people_of(body, n: int) -> ImagePeople:
    """n people in a row, 3 m in front of a 60-degree camera, each a posed SMPL body."""
    with torch.no_grad():
        out = body(torch.eye(3)[None].repeat(n, 1, 1) * torch.tensor([1.0, -1.0, -1.0]),
                   torch.eye(3).repeat(n, 23, 1, 1), torch.zeros(n, 10))  # fmt: skip
    pelvis = out.joints[:, :1]
    s = 0.6
    camera = np.array([[s, -0.4 + 0.8 * i, 0.1] for i in range(n)], np.float32)
    translation = np.stack(
        [camera[:, 1] / s, camera[:, 2] / s, np.full(n, 1 / (s * np.tan(np.pi / 6)))], 1
    )
    return ImagePeople(
        height=120, width=160, focal_length=80 / np.tan(np.pi / 6),
        score=np.linspace(0.9, 0.5, n), global_orient=np.zeros((n, 3)), body_pose=np.zeros((n, 69)),
        betas=np.zeros((n, 10)), camera=camera, translation=translation.astype(np.float32),
        joints_2d=np.zeros((n, 24, 2)), joints_3d=(out.joints - pelvis)[:, :24].numpy() + translation[:, None],
        vertices=(out.vertices - pelvis).numpy() + translation[:, None],
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["obj", "glb"])
def test_mesh_files_load_back_with_every_person(body, tmp_path, fmt):
    path = tmp_path / f"people.{fmt}"
    path.write_bytes(mesh_file(people_of(body, 3), body.faces, fmt))
    split = {"split_objects": True, "group_material": False} if fmt == "obj" else {}
    scene = trimesh.load(path, force="scene", process=False, **split)
    assert sorted(len(g.vertices) for g in scene.geometry.values()) == [6890] * 3
    visuals = [
        g.visual if g.visual.kind == "vertex" else g.visual.to_color()
        for g in scene.geometry.values()
    ]
    colours = {tuple(v.vertex_colors[0][:3]) for v in visuals}
    assert len(colours) == 3  # one colour per person
    # OpenGL convention: the people stand in front of the viewer (negative z).
    vertices = np.concatenate([g.vertices for g in scene.geometry.values()])
    assert vertices[:, 2].max() < 0


def test_ply_holds_all_people_in_one_mesh(body, tmp_path):
    (tmp_path / "p.ply").write_bytes(mesh_file(people_of(body, 2), body.faces, "ply"))
    assert len(trimesh.load(tmp_path / "p.ply", process=False).vertices) == 2 * 6890


def test_writer_records_arrays_meshes_and_overlays(body, tmp_path):
    writer = PredictionWriter(tmp_path / "out", body.faces, 64, mesh="glb", overlay=True)
    image = np.full((120, 160, 3), 128, np.uint8)
    writer.write(Frame("a.jpg", image), people_of(body, 2))
    one = people_of(body, 1)
    nobody = dataclasses.replace(one, **{n: getattr(one, n)[:0] for n in ImagePeople.PER_PERSON})
    writer.write(Frame("empty.jpg", image), nobody)
    writer.close()
    lines = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").open()]
    assert [len(line["people"]) for line in lines] == [2, 0]
    assert set(lines[0]) == {"image", "frame", "height", "width", "focal_length", "people"}
    arrays = np.load(tmp_path / "out" / "predictions.npz")
    assert arrays["image_index"].tolist() == [0, 0]
    assert arrays["joints_3d"].shape == (2, 24, 3) and "vertices" not in arrays
    assert arrays["images"].tolist() == ["a.jpg", "empty.jpg"]
    assert sorted(p.name for p in (tmp_path / "out" / "meshes").iterdir()) == ["00000_a.glb"]
    overlay = cv2.imread(str(tmp_path / "out" / "overlays" / "00000_a.png"))
    assert overlay.shape == (120, 160, 3) and (overlay != 128).any(axis=2).mean() > 0.02
    empty = cv2.imread(str(tmp_path / "out" / "overlays" / "00001_empty.png"))
    assert (empty == 128).all()


def test_an_unknown_mesh_format_lists_the_known_ones(body, tmp_path):
    with pytest.raises(ValueError, match="--mesh fbx: unknown format; known: obj, ply, glb"):
        PredictionWriter(tmp_path, body.faces, 64, mesh="fbx")
