"""Training on a multi-node Ray cluster (simulated on one machine): losing a node resumes from
the checkpoint on the others; a run pointed at an MLflow tracking server logs only there."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOG_EVERY, STEPS_PER_EPOCH = 2, 4  # 16 training images, global batch 4


@pytest.fixture(scope="module")
def overrides(tmp_path_factory, tiny_run):
    """The module's tiny runs: a 16-image corpus (4 steps per epoch), one CPU per Train worker."""
    return [
        *tiny_run(tmp_path_factory.mktemp("corpus"), train=16, val=4, test=4),
        f"tracking.log_every_steps={LOG_EVERY}", "scaling.cpus_per_worker=1",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster to which the platform connects through ``RAY_ADDRESS``: a head without
    CPUs (the driver, Train's controller) and four 1-CPU worker nodes (two Train workers, Ray
    Data, a spare for the workers to restart on)."""
    import ray
    import ray._private.auto_init_hook
    from ray.cluster_utils import Cluster

    from instancehmr.runtime import init_ray

    ray.shutdown()  # a Ray left running by an earlier module would be used instead
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        for _ in range(4):
            cluster.add_node(num_cpus=1)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RAY_ADDRESS", cluster.address)
            init_ray()
        assert ray.get_runtime_context().get_node_id() == cluster.head_node.node_id
        assert ray.cluster_resources()["CPU"] == 4
        yield cluster
    finally:
        # A training thread that a failed test left running must not reconnect Ray (and keep the
        # head node) once it is shut down.
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ray._private.auto_init_hook, "enable_auto_connect", False)
            ray.shutdown()
            cluster.shutdown()


@pytest.fixture(autouse=True)
def mlflow_state():
    """Leave MLflow's process-wide tracking URI and experiment (and the environment variables
    it sets for them) as this test found them."""
    import mlflow
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")
    env = {k: os.environ.pop(k, None) for k in keys}
    uri, experiment = tracking_utils._tracking_uri, fluent._active_experiment_id
    yield
    mlflow.set_tracking_uri(uri)
    fluent._active_experiment_id = experiment
    for k, v in env.items():
        os.environ.pop(k, None)
        if v is not None:
            os.environ[k] = v


@pytest.fixture
def mlflow_server(tmp_path_factory):
    """A local ``mlflow server`` (SQLite backend, proxied artifacts); yields (URI, its dir)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(root / "server.log", "w+b")  # noqa: SIM115 (closed in teardown)
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination", str(root / "artifacts"),
        ],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(
                    f"mlflow server at {uri} did not become healthy (exit code {server.poll()}):\n"
                    + log.read().decode(errors="replace")[-4000:]
                )
            time.sleep(0.25)
        yield uri, root
    finally:
        if server.poll() is None:  # the server forks uvicorn: end its whole process group
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


def tiny(overrides: list[str], work: Path, run_name: str, *extra: str):
    """A tiny run's config; its checkpoints go under ``work``."""
    from instancehmr.config import load_config

    return load_config(
        REPO / "experiments" / "quickstart.yaml",
        [
            *overrides, f"tracking.storage_path={work / 'ray_results'}",
            f"tracking.run_name={run_name}", *extra,
        ],
    )  # fmt: skip


def history(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def actors() -> list[dict]:
    """Every actor of the cluster, oldest first, from the GCS actor table (the state API would
    need the dashboard): ActorID, ActorClassName, State, Address.NodeID, ..."""
    import ray._private.state

    return sorted(ray._private.state.actors().values(), key=lambda a: a["StartTime"])


def test_losing_a_node_resumes_from_the_checkpoint_on_the_other_nodes(
    cluster, overrides, monkeypatch, tmp_path
):
    from mlflow.tracking import MlflowClient

    from instancehmr.track import relay
    from instancehmr.train.launch import train

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = tiny(overrides, tmp_path, "node-loss", "train.epochs=2", f"tracking.tracking_uri={uri}")

    # Every report the driver relays, as (step, ends an epoch): epoch ends carry a checkpoint.
    reports: list[tuple[int, bool]] = []
    checkpointed = threading.Event()
    logger = getattr(relay, "RunLogger", None) or relay.DriverLogger  # whichever logs a report
    log = logger.log

    def spy(self, metrics, *args, **kwargs):
        ends_epoch = int(metrics["epoch"]) >= 0 and "val/mpjpe" in metrics
        reports.append((int(metrics["step"]), ends_epoch))
        if ends_epoch:
            checkpointed.set()
        return log(self, metrics, *args, **kwargs)

    monkeypatch.setattr(logger, "log", spy)
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = train(cfg)
        except BaseException as error:
            out["error"] = error

    before = {a["ActorID"] for a in actors()}
    thread = threading.Thread(target=run, daemon=True)
    deadline = time.monotonic() + 480
    thread.start()
    try:
        while not checkpointed.wait(0.2) and thread.is_alive():
            pass
        if "error" in out:
            raise out["error"]
        assert thread.is_alive(), f"training ended before a node was lost: {reports}"
        assert list((tmp_path / "ray_results" / "node-loss").glob("checkpoint_*"))

        alive = [a for a in actors() if a["State"] == "ALIVE"]
        hosts = [a["Address"]["NodeID"] for a in alive if a["ActorClassName"] == "RayTrainWorker"]
        assert len(hosts) == len(set(hosts)) == 2, f"2 Train workers on 2 nodes, got {hosts}"
        # The driver's relay queue lives on the driver's node (the head), never on a worker's.
        (queue,) = [a for a in alive if a["ActorClassName"] == "_QueueActor"]
        assert queue["Address"]["NodeID"] == cluster.head_node.node_id
        # Lose a Train worker's node, the one hosting fewest other actors.
        on = {n: [a["ActorClassName"] for a in alive if a["Address"]["NodeID"] == n] for n in hosts}
        node_id = min(hosts, key=lambda n: len(on[n]))
        cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == node_id))
        assert thread.is_alive(), f"training ended before the node was lost: {reports}"
    finally:  # never leave a training run behind for the next test
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not thread.is_alive(), f"training still running 8 min after it started: {reports}"
    if "error" in out:
        raise out["error"]

    # The worker group was restarted, on two nodes other than the lost one...
    workers = [
        (a["Address"]["NodeID"], a["State"])
        for a in actors()
        if a["ActorClassName"] == "RayTrainWorker" and a["ActorID"] not in before
    ]
    assert len(workers) >= 4, workers
    restarted = {node for node, _ in workers[-2:]}
    assert len(restarted) == 2 and node_id not in restarted, (node_id, workers)
    # ...from the latest checkpoint, not from scratch: one untrained validation (step 0), and
    # after the rollback (if the failure came mid-epoch) the first report is the next one after
    # the last checkpoint the driver had seen.
    assert [step for step, _ in reports].count(0) == 1, reports
    rollbacks = [i for i in range(1, len(reports)) if reports[i] <= reports[i - 1]]
    assert len(rollbacks) <= 1, reports
    for i in rollbacks:
        last_checkpoint = max(step for step, end in reports[:i] if end)
        assert reports[i] == (last_checkpoint + LOG_EVERY, False), reports
    # MLflow has every step exactly once, up to the end.
    client = MlflowClient(tracking_uri=uri)
    run_id = out["result"].run_id
    total = 2 * STEPS_PER_EPOCH
    assert history(client, run_id, "train/total") == list(range(LOG_EVERY, total + 1, LOG_EVERY))
    assert history(client, run_id, "val/mpjpe") == list(range(0, total + 1, STEPS_PER_EPOCH))


def test_a_run_pointed_at_a_tracking_server_logs_only_there(
    cluster, overrides, mlflow_server, monkeypatch, tmp_path
):
    from mlflow.tracking import MlflowClient

    from instancehmr.train.launch import train

    uri, server_dir = mlflow_server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = train(tiny(overrides, tmp_path, "served", "train.epochs=1"))

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.run_id)
    assert run.info.run_name == "served" and run.info.status == "FINISHED"
    assert run.data.params["model.embedding_dim"] == "16"
    assert run.data.params["train.epochs"] == "1"
    assert history(client, result.run_id, "val/mpjpe") == [0, STEPS_PER_EPOCH]
    assert "config.yaml" in {a.path for a in client.list_artifacts(result.run_id)}
    # Artifacts went through the server's proxy into its artifact destination.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert list((server_dir / "artifacts").rglob("config.yaml"))
    version = client.get_model_version_by_alias("instancehmr", "champion")
    assert version.run_id == result.run_id and str(version.version) == result.model_version
    # Nothing went to a local store.
    assert not {"mlflow.db", "mlruns", "mlartifacts"} & {p.name for p in tmp_path.iterdir()}
