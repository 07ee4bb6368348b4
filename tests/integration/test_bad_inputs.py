"""Bad input through the CLI as users type it: one line on stderr naming the file, key or field,
exit 2, no traceback and no work started; a bad annotation inside a corpus is counted, not fatal.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import scipy.sparse
import torch
import yaml
from corpus_files import write_coco_keypoints

from instancehmr.cli import main

REPO = Path(__file__).resolve().parents[2]


def one_error(capsys, argv: list[str]) -> str:
    """Run the CLI on ``argv``; assert exit 2 with a single ``instancehmr: error:`` line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("instancehmr: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lr=nan"], "optim.lr: must be a finite number, got nan"),
        (["loss.weights.cont=inf"], "loss.weights.cont: must be a finite number, got inf"),
        (["train.epochs=0"], "train.epochs: must be at least 1, got 0"),
        (["train.batch_size=7", "scaling.num_workers=2"], "7 is not a positive multiple of 2"),
        (["tracking.registered_model_name=team/hmr"], "the model registry refuses it"),
        (["train.checkpoint_metric=val/mpjep"], "did you mean 'val/mpjpe'?"),
    ],
)
def test_train_refuses_values_it_used_to_accept_before_any_work(capsys, overrides, message):
    err = one_error(capsys, ["train", "quickstart", *overrides])
    assert message in err


def test_a_body_file_declaring_an_absurd_sparse_regressor_is_refused_before_ray(capsys, tmp_path):
    from instancehmr.body.model_file import read_smpl_file
    from instancehmr.body.synthetic import H36M_REGRESSOR_FILE, ensure_synthetic_body

    synthetic = ensure_synthetic_body()
    data = dict(read_smpl_file(synthetic))
    data["J_regressor"] = scipy.sparse.csr_matrix(([1.0], ([0], [5])), shape=(24, 10**12))
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    regressor = synthetic.parent / H36M_REGRESSOR_FILE
    argv = [
        "train",
        "quickstart",
        f"body.model_path={path}",
        f"body.h36m_regressor_path={regressor}",
    ]
    err = one_error(capsys, argv)
    assert f"{path}: key 'J_regressor' has shape (24, 1000000000000), expected (24, 6890)" in err


def test_eval_of_a_checkpoint_that_is_not_one(capsys, tmp_path):
    (tmp_path / "training_state.pt").write_bytes(pickle.dumps({"model": "not weights"}) + b"x")
    err = one_error(capsys, ["eval", str(tmp_path), "synthetic"])
    assert f"{tmp_path / 'training_state.pt'}: not a loadable training checkpoint" in err
    torch.save({"model": {"w": torch.zeros(1000)}}, tmp_path / "training_state.pt")
    truncated = (tmp_path / "training_state.pt").read_bytes()[:200]
    (tmp_path / "training_state.pt").write_bytes(truncated)
    assert "not a loadable training checkpoint" in one_error(
        capsys, ["eval", str(tmp_path), "synthetic"]
    )


def test_a_sweep_file_that_is_not_yaml_and_a_misspelt_metric(capsys, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("experiment: quickstart\nspace: {train.seed: {grid: [0, 1}\n")
    assert one_error(capsys, ["sweep", str(broken)]).startswith(f"instancehmr: error: {broken}:2:")
    sweep = yaml.safe_load((REPO / "experiments" / "sweeps" / "quickstart_lr.yaml").read_text())
    sweep["metric"] = "val/mpjep"
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(sweep))
    assert "metric: 'val/mpjep' is not a metric validation reports (did you mean 'val/mpjpe'?)" in (
        one_error(capsys, ["sweep", str(typo)])
    )


def test_promote_to_a_name_the_registry_refuses(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    err = one_error(capsys, ["promote", "quickstart", "--name", "team:hmr"])
    assert "--name 'team:hmr': the model registry refuses it" in err


def test_prepare_refuses_an_error_rate_outside_0_1(capsys, tmp_path):
    card = str(REPO / "datasets" / "synthetic.yaml")
    for rate in ("1.5", "-0.1", "nan"):
        err = one_error(capsys, ["data", "prepare", card, "--out", str(tmp_path), "--max-error-rate", rate])  # fmt: skip
        assert "max_error_rate must lie in [0, 1]" in err
    assert not any(tmp_path.iterdir()), "nothing is prepared"


def test_a_box_without_area_in_a_corpus_file_is_counted_as_a_failed_sample(capsys, tmp_path):
    data = write_coco_keypoints(tmp_path / "raw" / "kp.json", tmp_path / "raw" / "images")
    data["annotations"][0]["bbox"][2] = 0  # zero width
    data["annotations"][-1]["bbox"][3] = -5  # negative height
    (tmp_path / "raw" / "kp.json").write_text(json.dumps(data))
    card = {
        "name": "boxes", "format": "coco_keypoints", "root": str(tmp_path / "raw"),
        "splits": {"val": {"annotations": "kp.json", "images": "images"}},
        "labels": ["keypoints_2d"], "obtain": "test", "license": "test", "role": "train",
    }  # fmt: skip
    (tmp_path / "boxes.yaml").write_text(yaml.safe_dump(card))
    out = tmp_path / "shards"
    argv = ["data", "prepare", str(tmp_path / "boxes.yaml"), "--out", str(out)]
    assert main([*argv, "--max-error-rate", "0.6"]) == 0
    manifest = json.loads((out / "boxes" / "manifest.json").read_text())
    bad = {a["image_id"] for a in (data["annotations"][0], data["annotations"][-1])}
    assert manifest["splits"]["val"]["failed"] == len(bad)
    assert manifest["splits"]["val"]["images"] == len(data["images"]) - len(bad)
    errors = [
        json.loads(line) for line in (out / "boxes" / "errors.jsonl").read_text().splitlines()
    ]
    assert len(errors) == 2
    assert any("width 0 and height" in e["error"] for e in errors), errors
    assert any("height -5" in e["error"] for e in errors), errors
