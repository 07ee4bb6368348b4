"""Ray Train + MLflow end to end on a tiny model: two workers, resume, a killed worker."""

import os
import re
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_run):
    """A working directory (MLflow's default store and artifacts land here) with a tiny
    synthetic corpus card; Ray runs locally on 2 CPUs. Yields (root, tiny run overrides)."""
    import ray

    from instancehmr.runtime import init_ray

    root = tmp_path_factory.mktemp("train")
    overrides = tiny_run(root)
    old = Path.cwd()
    os.chdir(root)
    init_ray(num_cpus=2)
    yield root, overrides
    ray.shutdown()
    os.chdir(old)


def tiny(workdir, run_name: str, *extra: str):
    from instancehmr.config import load_config

    root, overrides = workdir
    return load_config(
        REPO / "experiments" / "quickstart.yaml",
        [
            *overrides, "train.epochs=2", "tracking.log_every_steps=2",
            f"tracking.storage_path={root / 'ray_results'}", f"tracking.run_name={run_name}",
            *extra,
        ],
    )  # fmt: skip


def image_bytes(shard) -> bytes:
    """The encoded first image of a shard."""
    import pyarrow.parquet as pq

    return pq.read_table(shard, columns=["image"]).column("image")[0].as_py()


def history(run_id: str, key: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    return [
        m.step for m in sorted(MlflowClient().get_metric_history(run_id, key), key=lambda m: m.step)
    ]


def test_two_workers_train_track_and_register(workdir):
    from mlflow.tracking import MlflowClient

    from instancehmr.train.launch import train

    result = train(tiny(workdir, "two-workers"))
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert (
        run.data.params["model.embedding_dim"] == "16"
        and run.data.params["scaling.num_workers"] == "2"
    )
    assert run.data.tags["config_hash"] and run.data.tags["data_manifest.synthetic"]
    for key in ("train/total", "train/cont", "train/lr", "train/images_per_s", "val/mpjpe", "val/pa_mpjpe",
                "val/mpvpe", "val/center_ap", "val/constant_mpjpe", "val/oracle_mpjpe",
                "val/mpjpe_vs_constant"):  # fmt: skip
        assert key in run.data.metrics, key
    metrics = run.data.metrics
    assert metrics["val/mpjpe_vs_constant"] == pytest.approx(
        metrics["val/mpjpe"] / metrics["val/constant_mpjpe"]
    )
    assert metrics["val/oracle_mpjpe"] < metrics["val/constant_mpjpe"]  # 8 x 8 maps: people collide
    steps = history(result.run_id, "train/total")
    assert steps == sorted(set(steps)) == list(range(2, 17, 2))  # 8 steps per epoch, 2 epochs
    assert history(result.run_id, "val/mpjpe") == [0, 8, 16]  # untrained, then each epoch
    artifacts = [a.path for a in client.list_artifacts(result.run_id)]
    # The weights are logged once, inside the logged model; no second training state.
    assert {"config.yaml", "pictures"} <= set(artifacts) and "checkpoint" not in artifacts
    version = client.get_model_version_by_alias("instancehmr", "champion")
    assert version.run_id == result.run_id and result.model_version == str(version.version)
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model("models:/instancehmr@champion")  # the servable model
    image = next((workdir[0] / "shards").rglob("*.parquet"))
    (result_of_one,) = model.predict(pd.DataFrame({"image": [image_bytes(image)]}))
    assert set(result_of_one) == {"height", "width", "focal_length", "people"}

    # The trained checkpoint evaluates under both protocols, logged to its run.
    from instancehmr.eval.run import evaluate

    table = evaluate(
        f"models:/instancehmr/{version.version}", ["synthetic"], out_dir=workdir[0] / "eval"
    ).table
    assert re.search(r"\| synthetic \| gt-centers \| all \| \d+ \| 100\.0 \| \d", table)
    assert "| synthetic | detected | all |" in table
    assert re.search(r"^\| constant \| \d", table, re.M) and re.search(
        r"^\| oracle \| \d", table, re.M
    )
    assert "| synthetic | oracle | occlusion:heavy |" in table
    assert "occlusion:heavy" in table
    # Evaluation metrics live in a run nested under the training run, not among its val/*.
    assert not [k for k in client.get_run(result.run_id).data.metrics if k.startswith("eval/")]
    (evaluation,) = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{result.run_id}'",
    )
    assert evaluation.info.run_name == "eval synthetic"
    logged = evaluation.data.metrics
    assert (
        "eval/synthetic/gt-centers/all/mpjpe" in logged
        and "eval/synthetic/detected/all/recall" in logged
    )

    # Re-running the same command resumes the finished run: same MLflow run, nothing retrained.
    again = train(tiny(workdir, "two-workers"))
    assert again.run_id == result.run_id
    assert history(result.run_id, "train/total") == steps


def test_a_killed_worker_costs_at_most_an_epoch(workdir):
    import psutil

    from instancehmr.train.launch import train

    cfg = tiny(workdir, "fault", "train.epochs=3")
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", train(cfg)))
    thread.start()
    deadline = time.monotonic() + 300
    run_dir = workdir[0] / "ray_results" / "fault"
    while not list(run_dir.glob("checkpoint_*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "RayTrainWorker" in " ".join(p.info["cmdline"] or [])
    ]
    assert workers, "no Ray Train worker process found"
    workers[-1].kill()
    thread.join(timeout=600)
    result = out["result"]
    steps = history(result.run_id, "train/total")
    assert steps == list(range(2, 25, 2))  # continuous: no step missing or logged twice
    assert history(result.run_id, "val/mpjpe")[-1] == 24


def test_asking_for_more_than_the_cluster_has_fails_fast(workdir):
    from instancehmr.train.launch import ResourceError, check_resources

    with pytest.raises(ResourceError, match="need 9 CPUs; the cluster has 2"):
        check_resources(
            tiny(
                workdir,
                "big",
                "scaling.num_workers=8",
                "scaling.cpus_per_worker=1",
                "train.batch_size=16",
            )
        )
    with pytest.raises(ResourceError, match="need 2 GPUs; the cluster has 0"):
        check_resources(tiny(workdir, "gpu", "scaling.use_gpu=true"))


def test_a_run_that_diverges_ends_failed_and_registers_nothing(workdir, capsys):
    """Through the CLI: a learning rate of 1e30 diverges at once; the run is FAILED in MLflow
    with the error, exit code 1 with one clear line, and no model version comes from it."""
    from mlflow.tracking import MlflowClient

    from instancehmr.cli import main

    root, overrides = workdir
    code = main([
        "train", str(REPO / "experiments" / "quickstart.yaml"), *overrides,
        "optim.lr=1e30", "train.max_nonfinite_steps=1", "train.max_failures=0",
        "train.epochs=1", f"tracking.storage_path={root / 'ray_results'}",
        "tracking.run_name=diverges",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "FAILED: NonFiniteLossError: 1 non-finite" in err, err
    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("quickstart").experiment_id],
        "tags.`instancehmr.run_name` = 'diverges'",
    )
    assert run.info.status == "FAILED" and "NonFiniteLossError" in run.data.tags["error"]
    assert "error.txt" in [a.path for a in client.list_artifacts(run.info.run_id)]
    versions = client.search_model_versions("name = 'instancehmr'")
    assert all(v.run_id != run.info.run_id for v in versions)


def test_the_real_corpus_mix_trains_with_finite_weights(
    workdir, body, tmp_path, monkeypatch, capsys
):
    """Through the CLI: COCO, CrowdPose, MPII (2-D only), Human3.6M and MPI-INF-3DHP (3-D joints)
    from their shipped cards over the real samples (written files of the same layouts on a
    clone without them), mixed with the synthetic corpus. Training and validation stay finite,
    every weight of the checkpoint is finite, and the run is FINISHED and registered."""
    import torch
    import yaml
    from corpus_layouts import LAYOUTS, Lay
    from mlflow.tracking import MlflowClient
    from samples import REAL_SAMPLES

    from instancehmr.cli import main
    from instancehmr.model.checkpoint import load_training_state

    root, overrides = workdir
    lay = Lay(tmp_path / "home", tmp_path / "cards", body, REAL_SAMPLES.is_dir())
    lay.cards.mkdir()
    chosen = {"coco", "crowdpose", "mpii", "h36m_every_frame", "mpi_inf_3dhp"}
    corpora = [c for stem in ("coco", "crowdpose", "mpii", "h36m", "mpi_inf_3dhp")
               for c in LAYOUTS[stem](lay) if c.name in chosen]  # fmt: skip
    monkeypatch.setenv("INSTANCEHMR_DATA", str(lay.data))
    synthetic = next(o.split("=", 1)[1] for o in overrides if o.startswith("data.mix.0.card="))
    # Each corpus weighted by its size: one epoch reads all of them once.
    mix = [{"card": str(c.card), "weight": float(c.splits["train"][0])} for c in corpora]
    mix.append({"card": synthetic, "weight": 32.0})
    code = main([
        "train", str(REPO / "experiments" / "quickstart.yaml"), *overrides,
        f"data.mix={yaml.safe_dump(mix, default_flow_style=True).strip()}", "train.epochs=1",
        f"tracking.storage_path={root / 'ray_results'}", "tracking.run_name=real-mix",
    ])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("quickstart").experiment_id],
        "tags.`instancehmr.run_name` = 'real-mix'",
    )
    assert run.info.status == "FINISHED"
    for corpus in corpora:
        assert run.data.tags[f"data_manifest.{corpus.name}"]
    metrics = run.data.metrics
    assert all(
        torch.isfinite(torch.tensor(metrics[k]))
        for k in metrics
        if k.startswith(("val/", "train/"))
    )
    assert metrics["train/skipped_steps"] == 0
    state = load_training_state(run.data.tags["best_checkpoint"])
    weights = [v for v in state.model.values() if v.is_floating_point()]
    assert weights and all(torch.isfinite(w).all() for w in weights)
    assert any(
        v.run_id == run.info.run_id for v in client.search_model_versions("name = 'instancehmr'")
    )


def test_the_quickstart_learns_its_own_training_images(workdir):
    """A test of learning: the quickstart's recipe (network, initialisation at the mean body,
    optimizer, schedule, loss weights and the workers' training step) at tiny size, trained for
    160 steps on 8 rendered synthetic images at 128 px without augmentation, scores well below
    the constant predictor on those images: ``val/mpjpe_vs_constant`` 0.51-0.52 over seeds
    (0.70 after 80 steps, 1.0 when nothing is learned)."""
    import pyarrow.parquet as pq
    import torch

    from instancehmr.body.smpl import BodyModel
    from instancehmr.data.cards import load_card
    from instancehmr.data.pipeline import make_batch, shard_dir
    from instancehmr.eval.references import training_constant
    from instancehmr.eval.validation import validate, validation_metrics
    from instancehmr.train.launch import ensure_data
    from instancehmr.train.loop import TrainStep, build_objective, initial_model

    steps = 160
    cfg = tiny(workdir, "learns", "data.val_split=train", "optim.warmup_steps=5",
               f"train.epochs={steps // 4}", "train.batch_size=2", "model.input_size=128",
               "model.map_size=16")  # fmt: skip
    ensure_data(cfg)
    card = load_card(cfg.data.mix[0].card)
    files = sorted(shard_dir(cfg.data.shards_dir, card, "train").glob("part-*.parquet"))
    records = pq.read_table(files).slice(0, 8).combine_chunks().to_batches()[0]
    data = {
        k: torch.as_tensor(v)
        for k, v in make_batch(records, cfg.model.input_size, cfg.data.max_people, None).items()
    }
    batches = [{k: v[i : i + 2] for k, v in data.items()} for i in range(0, 8, 2)]
    torch.manual_seed(0)
    body = BodyModel.from_config(cfg.body)
    constant = training_constant(cfg)
    model = initial_model(cfg, constant)
    train_step = TrainStep(cfg, model, model, build_objective(cfg, body), len(batches), "cpu")
    for step in range(steps):
        model.train()
        assert train_step(batches[step % len(batches)], step) is not None
    metrics = validate(model, body, batches, cfg, "cpu", constant)
    assert sorted(metrics) == sorted(validation_metrics())  # what sweeps may rank by
    assert metrics["val/mpjpe_vs_constant"] < 0.75, metrics


def run_named(run_name: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("quickstart").experiment_id],
        f"tags.`instancehmr.run_name` = '{run_name}'",
    )
    return run


def test_a_crashed_and_an_interrupted_run_say_so_in_mlflow(workdir, monkeypatch):
    """An error anywhere after the MLflow run starts ends it FAILED with the error; Ctrl+C or
    SIGTERM (a scheduler's preemption) ends it KILLED. Neither is left RUNNING or closed
    FINISHED by MLflow's exit handler."""
    import signal

    from instancehmr.track.runs import RunFailed
    from instancehmr.train import launch

    def crash(*args, **kwargs):
        raise RuntimeError("the data pipeline could not start")

    monkeypatch.setattr(launch, "build_trainer", crash)
    with pytest.raises(RunFailed, match="RuntimeError: the data pipeline could not start"):
        launch.train(tiny(workdir, "crashes"))
    crashed = run_named("crashes")
    assert crashed.info.status == "FAILED"
    assert crashed.data.tags["error"] == "RuntimeError: the data pipeline could not start"

    def preempted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives before this ends

    monkeypatch.setattr(launch, "build_trainer", preempted)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        launch.train(tiny(workdir, "preempted"))
    assert run_named("preempted").info.status == "KILLED"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_resume_with_another_learning_rate_is_refused_then_applied_when_asked(workdir, capsys):
    """Re-using a run's name with another config used to resume silently: the restored optimizer
    kept the old learning rate while the checkpoint claimed the new one. Now the CLI refuses
    with the changes; ``--resume-with-changes`` records them and trains with the new rate."""
    from mlflow.tracking import MlflowClient

    from instancehmr.cli import main

    root, overrides = workdir
    argv = [
        "train", str(REPO / "experiments" / "quickstart.yaml"), *overrides,
        f"tracking.storage_path={root / 'ray_results'}", "tracking.run_name=lr-change",
        "optim.schedule=constant", "optim.warmup_steps=0", "tracking.log_every_steps=2",
    ]  # fmt: skip
    assert main([*argv, "train.epochs=1", "optim.lr=0.001"]) == 0
    changed = [*argv, "train.epochs=2", "optim.lr=0.0005"]
    assert main(changed) == 2
    err = capsys.readouterr().err
    assert "was trained with another config: optim.lr 0.001 -> 0.0005, train.epochs 1 -> 2" in err
    assert main([*changed, "--resume-with-changes"]) == 0
    run = run_named("lr-change")
    client = MlflowClient()
    lrs = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/lr")}
    assert {s: lr for s, lr in lrs.items() if s <= 8} == dict.fromkeys(range(2, 9, 2), 0.001)
    assert {s: lr for s, lr in lrs.items() if s > 8} == dict.fromkeys(range(10, 17, 2), 0.0005)
    assert run.data.tags["config_changes"] == (
        "step 8: optim.lr 0.001 -> 0.0005; train.epochs 1 -> 2"
    )
    assert run.data.params["optim.lr"] == "0.001"  # params are the run's first config
    config = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(root)))
    assert "lr: 0.0005" in config.read_text()
