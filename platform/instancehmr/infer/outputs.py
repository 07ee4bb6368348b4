"""What ``instancehmr predict`` writes under its output folder (docs/predict.md has the schema).

* ``predictions.jsonl``: a line per image or video frame, written as each one is done (a later
  failure loses nothing): ``image`` (path), ``frame`` (index in the video, or null), ``height``,
  ``width``, ``focal_length`` (pixels, the camera the translations assume) and ``people``, a
  list of :meth:`instancehmr.model.predictor.ImagePeople.records`.
* ``predictions.npz``: the same as arrays, people of all images concatenated, ``image_index``
  saying whose; per image ``images``, ``frames`` (-1 for image files), ``heights``, ``widths``,
  ``focal_lengths``; ``joint_names``.
* ``meshes/<name>.<obj|ply|glb>`` (``--mesh``): every person of an image in one file, placed by
  its translation, one colour each, in the glTF / OpenGL convention (x right, y up, z towards
  the viewer: the camera frame turned 180 degrees about x).
* ``overlays/<name>.png`` (``--overlay``): the meshes drawn over the image (beside it with
  ``--side-by-side``); for a video, ``overlays/<video>.mp4``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from instancehmr.atomic import atomic_path
from instancehmr.geometry import letterbox
from instancehmr.infer.inputs import Frame
from instancehmr.model.predictor import JOINT_NAMES, ImagePeople
from instancehmr.render.overlay import COLOURS, draw_meshes

MESH_FORMATS = ("obj", "ply", "glb")
#: Overlays are drawn with the longer side at most this many pixels.
OVERLAY_MAX_SIDE = 1920
#: Camera frame (x right, y down, z forward) -> glTF / OpenGL (x right, y up, z backward).
TO_OPENGL = np.diag([1.0, -1.0, -1.0])


def mesh_file(people: ImagePeople, faces: np.ndarray, fmt: str) -> bytes:
    """Every person's mesh in one ``fmt`` file (see the module docstring); ``glb`` and ``obj``
    keep one named object per person (``person_<i>``), ``ply`` one mesh of them all."""
    import trimesh

    meshes = []
    for i, vertices in enumerate(people.vertices):
        colour = np.append((COLOURS[i % len(COLOURS)] * 255).astype(np.uint8), 255)
        meshes.append(
            trimesh.Trimesh(
                vertices @ TO_OPENGL.T, faces, vertex_colors=np.tile(colour, (len(vertices), 1)),
                process=False,
            )
        )  # fmt: skip
    if fmt == "ply":
        return trimesh.util.concatenate(meshes).export(file_type="ply")
    scene = trimesh.Scene()
    for i, mesh in enumerate(meshes):
        scene.add_geometry(mesh, node_name=f"person_{i}", geom_name=f"person_{i}")
    data = scene.export(file_type=fmt)
    return data if isinstance(data, bytes) else data.encode()


def overlay(image: np.ndarray, people: ImagePeople, faces: np.ndarray, input_size: int,
            side_by_side: bool = False) -> np.ndarray:  # fmt: skip
    """The people's meshes drawn over ``image`` (H, W, 3) uint8 RGB with their weak-perspective
    cameras, at most ``OVERLAY_MAX_SIDE`` pixels on the longer side; the image and the drawing
    side by side with ``side_by_side``."""
    h, w = image.shape[:2]
    shrink = min(1.0, OVERLAY_MAX_SIDE / max(h, w))
    if shrink < 1:
        image = cv2.resize(
            image, (round(w * shrink), round(h * shrink)), interpolation=cv2.INTER_AREA
        )
    affine = letterbox(*image.shape[:2], input_size).double().numpy()
    pelvis_centred = people.vertices - people.translation[:, None]
    drawn = draw_meshes(image, pelvis_centred, people.camera, faces, affine=affine,
                        input_size=input_size)  # fmt: skip
    return np.concatenate([image, drawn], axis=1) if side_by_side else drawn


def image_record(source: str, frame: int | None, people: ImagePeople, vertices: bool) -> dict:
    """The JSON line of one image or video frame (module docstring)."""
    return {"image": source, "frame": frame, "height": people.height, "width": people.width,
            "focal_length": people.focal_length, "people": people.records(vertices)}  # fmt: skip


class PredictionWriter:
    """Writes each frame's people as it comes (module docstring) and the arrays at
    :meth:`close`. ``mesh``: None or one of ``MESH_FORMATS``; ``faces`` (F, 3) of the body
    model; ``input_size`` the network's; ``vertices`` puts vertices into the JSON lines too."""

    def __init__(self, out_dir: Path, faces: np.ndarray, input_size: int, mesh: str | None = None,
                 overlay: bool = False, side_by_side: bool = False, vertices: bool = False,
                 fps: dict[str, float] | None = None) -> None:  # fmt: skip
        if mesh is not None and mesh not in MESH_FORMATS:
            raise ValueError(f"--mesh {mesh}: unknown format; known: {', '.join(MESH_FORMATS)}")
        self.out, self.faces, self.input_size = Path(out_dir), faces, input_size
        self.mesh, self.draw, self.side_by_side = mesh, overlay, side_by_side
        self.vertices, self.fps = vertices, fps or {}
        self.out.mkdir(parents=True, exist_ok=True)
        self.lines = (self.out / "predictions.jsonl").open("w")
        self.images: list[dict] = []
        self.arrays: list[dict[str, np.ndarray]] = []
        self.videos: dict[str, cv2.VideoWriter] = {}
        self.people = 0

    def _name(self, frame: Frame) -> str:
        stem = Path(frame.source).stem
        if frame.frame is None:
            return f"{len(self.images):05d}_{stem}"
        return f"{stem}_{frame.frame:06d}"

    def write(self, frame: Frame, people: ImagePeople) -> None:
        """One image or video frame: its JSON line now, its mesh file and overlay if asked."""
        record = image_record(frame.source, frame.frame, people, self.vertices)
        self.lines.write(json.dumps(record) + "\n")
        self.lines.flush()
        name = self._name(frame)
        if self.mesh and len(people):
            (self.out / "meshes").mkdir(exist_ok=True)
            with atomic_path(self.out / "meshes" / f"{name}.{self.mesh}") as tmp:
                tmp.write_bytes(mesh_file(people, self.faces, self.mesh))
        if self.draw:
            drawn = overlay(frame.image, people, self.faces, self.input_size, self.side_by_side)
            if frame.frame is None:
                self._save_png(self.out / "overlays" / f"{name}.png", drawn)
            else:
                self._video(frame.source, drawn).write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        self.images.append(record | {"people": len(people)})
        self.arrays.append(people.arrays())
        self.people += len(people)

    def _save_png(self, path: Path, image: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise ValueError(f"{path}: OpenCV could not encode the overlay")
            tmp.write_bytes(data.tobytes())

    def _video(self, source: str, first: np.ndarray) -> cv2.VideoWriter:
        if source not in self.videos:
            path = self.out / "overlays" / f"{Path(source).stem}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            size = (first.shape[1], first.shape[0])
            self.videos[source] = cv2.VideoWriter(
                str(path), fourcc, self.fps.get(source, 25.0), size
            )
        return self.videos[source]

    def close(self) -> None:
        """Close the JSON lines and videos and write ``predictions.npz``."""
        self.lines.close()
        for video in self.videos.values():
            video.release()
        per_person = [n for n in ImagePeople.PER_PERSON if self.vertices or n != "vertices"]
        arrays = {
            n: np.concatenate([a[n] for a in self.arrays]) if self.arrays else np.zeros(0)
            for n in per_person
        }
        arrays["image_index"] = np.concatenate(
            [np.full(len(a["score"]), i) for i, a in enumerate(self.arrays)]
        ) if self.arrays else np.zeros(0, int)  # fmt: skip
        arrays["images"] = np.array([r["image"] for r in self.images], dtype=str)
        arrays["frames"] = np.array([-1 if r["frame"] is None else r["frame"] for r in self.images])
        for key, field in (("heights", "height"), ("widths", "width"),
                           ("focal_lengths", "focal_length")):  # fmt: skip
            arrays[key] = np.array([r[field] for r in self.images])
        arrays["joint_names"] = np.array(JOINT_NAMES)
        with atomic_path(self.out / "predictions.npz") as tmp, tmp.open("wb") as f:
            np.savez(f, **arrays)
