"""Fixtures shared by the end-to-end tests: one tiny ablation, run once per session by the
CLI, read by the tests of ``ablate`` and by the browser check of the MLflow UI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ablation(tmp_path_factory, tiny_run):
    """A 2-row x 2-seed tiny ablation, run once by the CLI in its own process and Ray."""
    root = tmp_path_factory.mktemp("ablate")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "1"
    argv = [
        sys.executable, "-m", "instancehmr.cli", "ablate", "--experiment", str(REPO / "experiments" / "quickstart.yaml"),
        "--seeds", "2", "--rows", str(REPO / "experiments" / "ablations" / "dim32.yaml"),
        *tiny_run(root, train=16, val=4, test=4), "train.epochs=1",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return root, done.stdout + done.stderr


@pytest.fixture(scope="session")
def store(ablation):
    """(client, experiment id, runs) of the ablation's store; the process-wide tracking URI is
    left alone."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{ablation[0] / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([experiment.experiment_id])
    return client, experiment.experiment_id, runs
