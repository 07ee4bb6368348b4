"""Promotion against a SQLite MLflow store with tiny logged models."""

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from instancehmr.cli import main
from instancehmr.track.registry import PromotionRefused, promote


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield MlflowClient()
    mlflow.set_tracking_uri(None)


def finished_run(experiment: str, mpjpe: float, **tags: str) -> str:
    mlflow.set_experiment(experiment)
    tags = {"config_hash": f"h{mpjpe:.0f}", "data_manifest.synthetic": "abc", **tags}
    with mlflow.start_run(tags=tags):
        mlflow.log_metric("val/mpjpe", mpjpe)
        mlflow.pytorch.log_model(torch.nn.Linear(2, 2), name="model", serialization_format="pickle")
        return mlflow.active_run().info.run_id


def test_promotion_moves_champion_and_previous_and_refuses_worse(store):
    finished_run("exp", 300.0)
    b = finished_run("exp", 250.0)
    first = promote("exp")
    assert (first.run_id, first.version, first.previous_version) == (b, "1", None)
    assert first.registered_now
    version = store.get_model_version("instancehmr", "1")
    assert "config hash h250" in version.description and version.tags["val/mpjpe"] == "250"
    assert version.tags["data_manifest.synthetic"] == "abc"
    with pytest.raises(PromotionRefused, match="already 'champion'"):
        promote("exp")

    c = finished_run("exp", 200.0)
    second = promote("exp")
    assert (second.run_id, second.previous_version) == (c, "1")
    aliases = store.get_registered_model("instancehmr").aliases
    assert aliases == {"champion": int(second.version), "previous": 1}

    worse = finished_run("other", 260.0)
    with pytest.raises(PromotionRefused, match=r"val/mpjpe=260, not below the champion .* \(200\)"):
        promote("other")
    assert store.get_registered_model("instancehmr").aliases["champion"] == int(second.version)
    forced = promote("other", force=True)
    assert forced.run_id == worse and forced.previous_version == second.version


def test_cli_names_the_experiments_and_the_metric(store, capsys):
    finished_run("exp", 120.0)
    assert main(["promote", "nope"]) == 2
    assert (
        "no MLflow experiment or sweep 'nope'; experiments: ['Default', 'exp']; sweeps: []"
        in capsys.readouterr().err
    )
    assert main(["promote", "exp", "--metric", "val/pa_mpjpe"]) == 2
    assert "no finished run has metric 'val/pa_mpjpe'" in capsys.readouterr().err
    assert main(["promote", "exp"]) == 0
    assert "instancehmr v1 (newly registered)" in capsys.readouterr().out


def sweep_parent(experiment: str, sweep: str) -> str:
    mlflow.set_experiment(experiment)
    tags = {"instancehmr.sweep": sweep, "instancehmr.role": "sweep"}
    with mlflow.start_run(run_name=sweep, tags=tags) as run:
        return run.info.run_id


def test_a_sweep_name_promotes_the_best_of_its_trials_only(store):
    old = sweep_parent("exp", "lr")
    finished_run("exp", 100.0, **{"mlflow.parentRunId": old})  # an older sweep of that name
    parent = sweep_parent("exp", "lr")
    finished_run("exp", 150.0)  # a better plain run of the experiment is not a trial
    finished_run("exp", 240.0, **{"mlflow.parentRunId": parent})
    best = finished_run("exp", 210.0, **{"mlflow.parentRunId": parent})
    promoted = promote("lr")
    assert promoted.run_id == best and promoted.registered_now
    # The experiment's own runs only: trials are other configurations (an ablation's rows) ...
    assert promote("exp").value == 150.0
    # ... unless asked for; a promoted trial's description names its sweep.
    trial = finished_run("exp", 90.0, **{"mlflow.parentRunId": parent, "instancehmr.sweep": "lr",
                                         "instancehmr.trial_params": '{"train.seed": 2}'})  # fmt: skip
    included = promote("exp", include_sweeps=True)
    assert included.run_id == trial
    version = MlflowClient().get_model_version("instancehmr", included.version)
    assert "Trial of sweep lr, seed 2." in version.description
    with pytest.raises(ValueError, match=r"no MLflow experiment or sweep 'l'.*sweeps: \['lr'\]"):
        promote("l")
    sweep_parent("exp", "exp")
    with pytest.raises(ValueError, match="names both an MLflow experiment and a sweep"):
        promote("exp")
