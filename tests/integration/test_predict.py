"""``instancehmr predict`` as a user runs it, on a tiny untrained checkpoint: a folder of
photos (one corrupt, one of nobody), a short video; the servable MLflow model in plain Python
and behind ``mlflow models serve``; the Ray batch path; the exported network."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from servers import free_port, wait_until_up

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny untrained checkpoint that finds people everywhere (threshold 0) and a folder of
    photos of mixed sizes and kinds; MLflow lands here."""
    from instancehmr.config import load_config, to_yaml
    from instancehmr.model import build_model
    from instancehmr.model.checkpoint import TrainingState, save_training_state

    root = tmp_path_factory.mktemp("predict")
    cfg = load_config(
        REPO / "experiments" / "quickstart.yaml",
        ["model.input_size=64", "model.map_size=8", "model.head_channels=16",
         "model.embedding_dim=16", "decode.center_threshold=0.0", "decode.max_people=3",
         f"tracking.tracking_uri=sqlite:///{root / 'mlflow.db'}"],
    )  # fmt: skip
    torch.manual_seed(0)
    (root / "ckpt").mkdir()
    save_training_state(
        root / "ckpt", TrainingState(model=build_model(cfg).state_dict(), config=to_yaml(cfg))
    )
    photos = root / "photos"
    (photos / "more").mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(photos / "wide.jpg"), rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
    cv2.imwrite(
        str(photos / "more" / "tall.png"), rng.integers(0, 255, (120, 70, 3), dtype=np.uint8)
    )
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    old = Path.cwd()
    os.chdir(root)
    yield root
    os.chdir(old)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_a_folder_writes_results_meshes_and_overlays(workdir, capsys):
    import trimesh

    from instancehmr.cli import main

    # exit 1: one input (broken.jpg) failed, the others were predicted
    assert main(["predict", "ckpt", "photos", "--out", "out", "--mesh", "glb", "--overlay"]) == 1
    printed = capsys.readouterr()
    assert "2 images and 0 video frames, 6 people" in printed.out
    assert "photos/broken.jpg: not a decodable image" in printed.err
    lines = read_lines(workdir / "out" / "predictions.jsonl")
    assert [Path(line["image"]).name for line in lines] == ["tall.png", "wide.jpg"]
    assert [len(line["people"]) for line in lines] == [3, 3]
    for line in lines:  # 2-D joints are in the original image's pixels
        joints = np.array([p["joints_2d"] for p in line["people"]])
        assert joints.shape == (3, 24, 2)
    meshes = sorted((workdir / "out" / "meshes").glob("*.glb"))
    assert len(meshes) == 2
    scene = trimesh.load(meshes[0], force="scene")
    assert [len(g.vertices) for g in scene.geometry.values()] == [6890] * 3
    overlay = cv2.imread(str(workdir / "out" / "overlays" / "00001_wide.png"))
    assert overlay.shape == (90, 160, 3)
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert summary["images"] == 2 and len(summary["failed"]) == 1


def test_an_image_of_nobody_gives_an_empty_list(workdir):
    from instancehmr.cli import main

    assert main(["predict", "ckpt", "photos/wide.jpg", "--out", "nobody",
                 "decode.center_threshold=1.0"]) == 0  # fmt: skip
    (line,) = read_lines(workdir / "nobody" / "predictions.jsonl")
    assert line["people"] == []


def test_a_short_video_gives_a_record_per_frame_and_an_mp4(workdir):
    from instancehmr.cli import main

    writer = cv2.VideoWriter(
        str(workdir / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 8, (96, 64)
    )
    for i in range(6):
        writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
    writer.release()
    assert main(["predict", "ckpt", "clip.mp4", "--out", "video", "--overlay", "--every", "2"]) == 0
    lines = read_lines(workdir / "video" / "predictions.jsonl")
    assert [line["frame"] for line in lines] == [0, 2, 4]
    capture = cv2.VideoCapture(str(workdir / "video" / "overlays" / "clip.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "ckpt", "nowhere/"], "nowhere/: no such file or folder"),
        (["predict", "ckpt", "photos", "--mesh", "fbx"], "known: obj, ply, glb"),
        (["predict", "ckpt", "photos/broken.jpg"], "nothing could be predicted"),
        (["predict", "models:/nothing@champion", "photos"], "nothing"),
    ],
)
def test_bad_input_gets_one_clear_error(workdir, capsys, argv, message):
    from instancehmr.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.fixture(scope="module")
def registered(workdir):
    """The checkpoint logged as a servable model and registered as ``tiny@champion``."""
    import mlflow

    from instancehmr.config import config_from_yaml
    from instancehmr.model.checkpoint import load_training_state
    from instancehmr.track.models import log_model
    from instancehmr.track.runs import use_tracking_uri

    cfg = config_from_yaml(load_training_state(workdir / "ckpt").config, "ckpt",
                           ["tracking.registered_model_name=tiny"])  # fmt: skip
    use_tracking_uri(cfg)
    mlflow.set_experiment("predict")  # not an experiment id left active by an earlier test
    with mlflow.start_run() as run:
        version = log_model(cfg, run.info.run_id, str(workdir / "ckpt"), register=True)
    return cfg.tracking.tracking_uri, version


def encoded(path: Path) -> bytes:
    return path.read_bytes()


def test_the_registered_model_predicts_through_the_cli_and_in_plain_python(workdir, registered):
    """The served model loads in a fresh interpreter where ``instancehmr`` is not installed
    (its code travels in the model) and finds the same people as ``instancehmr predict``."""
    from instancehmr.cli import main

    uri, _ = registered
    assert main(["predict", "models:/tiny@champion", "photos/wide.jpg", "--out", "registry"]) == 0
    (line,) = read_lines(workdir / "registry" / "predictions.jsonl")
    script = (
        "import sys, json, pandas as pd\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'instancehmr' not in repr(f).lower()]\n"
        "import mlflow\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "model = mlflow.pyfunc.load_model('models:/tiny@champion')\n"
        "import instancehmr; assert 'site-packages' not in instancehmr.__file__\n"
        "assert 'code' in instancehmr.__file__, instancehmr.__file__\n"
        "out = model.predict(pd.DataFrame({'image': [open('photos/wide.jpg', 'rb').read(), b'x']}))\n"
        "print(json.dumps(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=workdir, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    served, broken = json.loads(done.stdout.strip().splitlines()[-1])
    assert broken["people"] == [] and "not a decodable image" in broken["error"]
    assert len(served["people"]) == len(line["people"]) == 3
    for mine, theirs in zip(served["people"], line["people"], strict=True):
        assert np.allclose(mine["joints_2d"], theirs["joints_2d"], atol=1e-3)
        assert np.allclose(mine["translation"], theirs["translation"], atol=1e-5)


def test_mlflow_models_serve_answers_a_request(workdir, registered):
    uri, _ = registered
    port = free_port()
    # As the README runs it: the environment's bin folder on PATH (MLflow starts uvicorn by name).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": path}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/tiny@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server, server.stdout.read)
        image = base64.b64encode((workdir / "photos" / "wide.jpg").read_bytes()).decode()
        body = json.dumps({"dataframe_records": [{"image": image}], "params": {"fov": 50.0}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", body.encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        started = time.monotonic()
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
        print(f"serve round trip: {time.monotonic() - started:.2f} s")
        (result,) = answer["predictions"]
        assert len(result["people"]) == 3
        assert result["focal_length"] == pytest.approx(80 / np.tan(np.radians(25)))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_ray_path_gives_the_records_of_the_local_path(workdir):
    import pyarrow.parquet as pq
    import ray

    from instancehmr.cli import main
    from instancehmr.runtime import init_ray

    init_ray(num_cpus=2)
    try:
        assert (
            main(["predict", "ckpt", "photos", "--out", "on-ray", "--ray", "--workers", "1"]) == 1
        )
    finally:
        ray.shutdown()
    assert main(["predict", "ckpt", "photos", "--out", "local"]) == 1
    local = {line["image"]: line for line in read_lines(workdir / "local" / "predictions.jsonl")}
    table = pq.read_table(workdir / "on-ray" / "predictions").to_pylist()
    records = {Path(r["image"]).name: json.loads(r["record"]) for r in table if not r["error"]}
    assert sorted(records) == ["tall.png", "wide.jpg"]
    (broken,) = [r for r in table if r["error"]]
    assert broken["image"].endswith("broken.jpg") and "not a decodable image" in broken["error"]
    for image, line in local.items():
        mine = records[Path(image).name]
        assert len(mine["people"]) == len(line["people"]) == 3
        for a, b in zip(mine["people"], line["people"], strict=True):
            assert np.allclose(a["joints_3d"], b["joints_3d"], atol=1e-4)
    summary = json.loads((workdir / "on-ray" / "summary.json").read_text())
    assert summary["images"] == 2 and summary["people"] == 6 and len(summary["failed"]) == 1


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_exported_network_gives_the_pytorch_maps(workdir, fmt):
    """Export checks itself (maps within 1e-3 of PyTorch's); here the file is run again on
    another batch and compared with the module, as a deployment would use it."""
    from instancehmr.cli import main
    from instancehmr.infer.export import OUTPUTS, _run_exported
    from instancehmr.track.models import load_model

    assert main(["export", "ckpt", "--format", fmt, "--out", f"export-{fmt}"]) == 0
    card = json.loads((workdir / f"export-{fmt}" / "export.json").read_text())
    assert card["outputs"] == list(OUTPUTS) and card["max_abs_diff_vs_pytorch"] <= 1e-3
    model = load_model("ckpt").model
    images = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
    got = _run_exported(workdir / f"export-{fmt}" / card["file"], fmt, images)
    for name, maps in zip(OUTPUTS, got, strict=True):
        assert torch.allclose(maps, expected[name], atol=1e-3), name


def test_an_unknown_export_format_is_refused(workdir, capsys):
    from instancehmr.cli import main

    assert main(["export", "ckpt", "--format", "tflite"]) == 2
    assert "known: onnx, torchscript" in capsys.readouterr().err
