import math
import time

import pytest

from instancehmr.track.relay import DIVERGED_TAG, RunLogger, validation_first


@pytest.fixture
def client(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


def test_the_judging_metric_leads_then_validation_then_the_rest():
    report = {"train/total": 1.0, "val/oracle_mpjpe": 2.0, "epochs_done": 0, "val/mpjpe": 3.0}
    assert list(validation_first(report, "val/mpjpe")) == [
        "val/mpjpe", "val/oracle_mpjpe", "train/total", "epochs_done"
    ]  # fmt: skip


def test_a_new_runs_first_metric_is_its_validation_and_system_metrics_follow(client):
    """MLflow's compare view opens its parallel-coordinates plot on a run's first stored metric:
    that must be the validation the run is judged by, not a system metric sampled earlier."""
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    logger = RunLogger(run_id, total_steps=4, lead="val/mpjpe")
    time.sleep(0.5)  # before the first report nothing is sampled
    assert client.get_run(run_id).data.metrics == {}
    logger.log({"step": 0, "epoch": -1, "epochs_done": 0, "val/center_ap": 0.1,
                "val/mpjpe": 500.0}, None)  # fmt: skip
    deadline = time.monotonic() + 10
    while not any(k.startswith("system/") for k in client.get_run(run_id).data.metrics):
        assert time.monotonic() < deadline, "no system metrics sampled after the first report"
        time.sleep(0.2)
    logger.finish()
    assert list(client.get_run(run_id).data.metrics)[:2] == ["val/mpjpe", "val/center_ap"]


def test_the_best_checkpoints_validation_is_logged_under_best(client):
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    logger = RunLogger(run_id)
    logger.log_best({"step": 8, "epoch": 1, "val/mpjpe": 120.5, "train/total": 3.0,
                     "val/constant_mpjpe": 300.0, "val/oracle_mpjpe": 0.5, "val/people": 9})  # fmt: skip
    assert client.get_run(run_id).data.metrics == {"best/val/mpjpe": 120.5}
    assert client.get_metric_history(run_id, "best/val/mpjpe")[0].step == 8


def test_a_diverging_run_logs_its_nan_and_is_tagged_where_it_diverged(client):
    """The metrics relay used to drop non-finite values: the run then showed its last finite
    (untrained) validation as if nothing had happened."""
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    logger = RunLogger(run_id, lead="val/mpjpe")
    logger.log({"step": 0, "epoch": -1, "val/mpjpe": 545.6, "val/oracle_mpjpe": math.nan}, None)
    assert logger.diverged is None and DIVERGED_TAG not in client.get_run(run_id).data.tags
    logger.log({"step": 4, "epoch": 0, "val/mpjpe": math.nan, "train/total": 3.0}, None)
    logger.finish()
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, "val/mpjpe")]
    assert history[0] == (0, 545.6) and history[1][0] == 4 and math.isnan(history[1][1])
    assert math.isnan(client.get_run(run_id).data.metrics["val/mpjpe"])
    assert client.get_run(run_id).data.tags[DIVERGED_TAG] == "step 4: val/mpjpe=nan"
    assert RunLogger(run_id).diverged == "step 4: val/mpjpe=nan"  # a resumed run remembers
