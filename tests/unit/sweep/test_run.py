from pathlib import Path

import pytest

from instancehmr.cli import main
from instancehmr.sweep.run import ablation_spec, run_sweep
from instancehmr.sweep.spec import DEFAULT_ROW

REPO = Path(__file__).resolve().parents[3]


def test_ablate_builds_rows_times_seeds_on_any_experiment(monkeypatch):
    monkeypatch.chdir(REPO)
    spec = ablation_spec(["experiments/ablations"], "quickstart", 2, ["train.epochs=1"])
    assert spec.name == "ablate-quickstart" and spec.algorithm == "grid"
    assert next(iter(spec.rows)) == DEFAULT_ROW and "no_positional_encoding" in spec.rows
    assert spec.space == {"train.seed": {"grid": [0, 1]}} and spec.num_trials == 12
    # Rows override only what they change: the quickstart's small backbone stays.
    assert spec.trial_overrides({"train.seed": 1}, "dim32") == [
        "train.epochs=1", "model.embedding_dim=32", "train.seed=1",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="--seeds must be at least 1"):
        ablation_spec(["experiments/ablations"], "quickstart", 0, [])


def test_a_row_that_repeats_the_base_is_left_out(monkeypatch, capsys):
    """quickstart's embedding is already 32: the ``dim32`` row would train the default's
    config again under another name (a fresh user's ablation spent two trials on it)."""
    from instancehmr.sweep.run import base_configs, without_twin_rows

    monkeypatch.chdir(REPO)
    spec = ablation_spec(["experiments/ablations"], "quickstart", 2, ["train.epochs=1"])
    kept, bases = without_twin_rows(spec, base_configs(spec))
    assert "dim32" not in kept.rows and "dim32" not in bases
    assert set(kept.rows) == set(spec.rows) - {"dim32"} and kept.num_trials == 10
    assert "row dim32 is the same config as row default on quickstart: left out" in (
        capsys.readouterr().out
    )
    base = ablation_spec(["experiments/ablations"], "base", 1, [])
    assert without_twin_rows(base, base_configs(base))[0] == base  # every row differs on base


def test_sweep_commands_refuse_bad_input_before_starting_ray(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(REPO)
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert "sweep file not found" in capsys.readouterr().err
    assert main(["ablate", "--experiment", "quickstart", "--rows", str(tmp_path)]) == 2
    assert "no .yaml files" in capsys.readouterr().err
    spec = ablation_spec(["experiments/ablations"], "quickstart", 1, [])
    with pytest.raises(ValueError, match="--retry-failed goes with --resume"):
        run_sweep(spec, resume=False, retry_failed=True)


def test_resume_reopens_the_parent_only_for_the_same_sweep(monkeypatch, tmp_path):
    import dataclasses

    import mlflow
    from mlflow.tracking import MlflowClient

    from instancehmr.sweep.run import _open_parent

    monkeypatch.chdir(REPO)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = MlflowClient()
        experiment = client.create_experiment("quickstart")
        spec = ablation_spec(["experiments/ablations"], "quickstart", 1, [])
        bases = {"default": "name: quickstart\n"}
        with pytest.raises(ValueError, match="no MLflow parent run"):
            _open_parent(client, experiment, spec, bases, resume=True)
        parent = _open_parent(client, experiment, spec, bases, resume=False)
        client.set_terminated(parent, "KILLED")
        assert _open_parent(client, experiment, spec, bases, resume=True) == parent
        assert client.get_run(parent).info.status == "RUNNING"
        changed = dataclasses.replace(spec, metric="val/pa_mpjpe")
        with pytest.raises(ValueError, match="changed since it started"):
            _open_parent(client, experiment, changed, bases, resume=True)
        with pytest.raises(ValueError, match="changed since it started"):
            _open_parent(client, experiment, spec, {"default": "name: other\n"}, resume=True)
    finally:
        mlflow.set_tracking_uri(None)
