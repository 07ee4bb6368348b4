"""``instancehmr sweep`` end to end on a tiny model: three trials (one diverges), interrupted
after the first finished one, resumed, the winner promoted and evaluated from the registry."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from instancehmr.track.models import load_model

REPO = Path(__file__).resolve().parents[2]
TRIAL_LINE = re.compile(r"^trial (\S+) \(optim\.lr=([^)]+)\) (started|finished|FAILED)(.*)$")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_run):
    root = tmp_path_factory.mktemp("sweep")
    sweep = {
        "name": "tiny-lr",
        "experiment": str(REPO / "experiments" / "quickstart.yaml"),
        "overrides": [
            *tiny_run(root), "train.epochs=1", "tracking.log_every_steps=2",
            "train.max_nonfinite_steps=1", "train.max_failures=0",
        ],
        "metric": "val/mpjpe",
        "mode": "min",
        "algorithm": "grid",
        "max_concurrent_trials": 1,
        # The third learning rate diverges: its trial fails and the sweep goes on.
        "space": {"optim.lr": {"grid": [1.0e-3, 3.0e-4, 1.0e30]}},
    }  # fmt: skip
    (root / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    return root


class Sweep:
    """``instancehmr sweep`` in a subprocess (its own Ray), its output collected line by line."""

    def __init__(self, root: Path, *args: str) -> None:
        env = {
            k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "instancehmr.cli", "sweep", "sweep.yaml", *args],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def trials(self, event: str) -> list[tuple[str, str]]:
        """(trial id, lr) of every trial line with ``event``."""
        return [
            (m[1], m[2]) for line in self.lines if (m := TRIAL_LINE.match(line)) and m[3] == event
        ]

    def wait(self, timeout: float = 420) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def output(self) -> str:
        return "\n".join(self.lines[-80:])


def test_an_interrupted_sweep_resumes_only_unfinished_trials_then_promotes(workdir, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    first = Sweep(workdir)
    deadline = time.monotonic() + 420
    while not first.trials("finished") and first.process.poll() is None:
        assert time.monotonic() < deadline, first.output()
        time.sleep(0.5)
    first.process.send_signal(signal.SIGINT)
    assert first.wait() == 130, first.output()
    assert "interrupted: resume with `instancehmr sweep sweep.yaml --resume`" in first.output()
    (done_id, done_lr), *_ = first.trials("finished")
    assert done_lr == "0.001"

    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("quickstart").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`instancehmr.role` = 'sweep'")
    assert parent.info.status == "KILLED"
    done_run = client.search_runs([experiment], f"tags.`instancehmr.trial_id` = '{done_id}'")[0]
    done_history = client.get_metric_history(done_run.info.run_id, "train/total")

    second = Sweep(workdir, "--resume")
    assert second.wait() == 0, second.output()
    started = [lr for _, lr in second.trials("started")]
    assert done_lr not in started and sorted(started) == ["0.0003", "1e+30"], second.output()
    assert [lr for _, lr in second.trials("FAILED")] == ["1e+30"]
    assert "non-finite losses in a row" in second.output()

    children = client.search_runs(
        [experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == 3
    statuses = sorted((c.data.params["optim.lr"], c.info.status) for c in children)
    assert statuses == [("0.0003", "FINISHED"), ("0.001", "FINISHED"), ("1e+30", "FAILED")]
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "non-finite losses in a row" in failed.data.tags["error"]
    # The finished trial was not run again: its run and its history are untouched.
    assert client.get_metric_history(done_run.info.run_id, "train/total") == done_history
    finished = [c for c in children if c.info.status == "FINISHED"]
    for child in finished:
        assert {"val/mpjpe", "train/total", "epochs_done"} <= set(child.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        # The weights are logged once, inside the logged model; no second training state.
        assert {"config.yaml", "pictures"} <= artifacts and "checkpoint" not in artifacts
        assert load_model(child.info.run_id).run_id == child.info.run_id
    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED"
    assert {"leaderboard.md", "leaderboard.png", "sweep.yaml"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }
    best = min(finished, key=lambda c: c.data.metrics["val/mpjpe"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    board = second.output()
    assert re.search(rf"\| 1 \| \S+ \| {best.data.params['optim.lr']} \| finished \|", board)
    assert re.search(r"\| - \| \S+ \| 1e\+30 \| failed: NonFiniteLossError", board)
    assert client.search_registered_models() == []  # trials log models, promotion registers

    from instancehmr.cli import main

    assert main(["promote", "tiny-lr"]) == 0
    champion = client.get_model_version_by_alias("instancehmr", "champion")
    assert champion.run_id == best.info.run_id
    out = workdir / "eval"
    assert main(["eval", "models:/instancehmr@champion", "synthetic", "--out", str(out)]) == 0
    table = next(out.glob("*/table.md")).read_text()
    assert re.search(r"\| synthetic \| gt-centers \| all \| \d+ \| 100\.0 \| \d", table)
