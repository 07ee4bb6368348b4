"""``instancehmr eval`` end to end on a tiny checkpoint: the real COCO and CrowdPose samples as
keypoint benchmarks, the synthetic split under both protocols, a benchmark without data, an
annotation file that is checked before anything is scored, and 3DPW and CMU Panoptic files
written in their original layouts, run from another directory."""

import csv
import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from corpus_files import (
    write_panoptic_sequence,
    write_pw3d_image,
    write_pw3d_sequence,
    write_py2_pickle,
)
from samples import REAL_SAMPLES as REAL

from instancehmr.eval.benchmarks import BENCHMARKS

REPO = Path(__file__).resolve().parents[2]


def card(root: Path, name: str, folder: str | Path, annotations: str, corpus=None) -> Path:
    """A benchmark card over a folder (under the real samples unless absolute) of images and
    JSON side by side, from the shipped card ``name``, named ``corpus`` (default ``name``)."""
    raw = yaml.safe_load((REPO / "datasets" / f"{name}.yaml").read_text())
    raw.update(
        name=corpus or name,
        root=str(REAL / folder),
        splits={"test": {"annotations": annotations, "images": "."}},
    )
    path = root / f"{corpus or name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_run):
    """A tiny untrained checkpoint, a small synthetic card, local Ray; MLflow lands here."""
    import ray

    from instancehmr.config import load_config, to_yaml
    from instancehmr.model import build_model
    from instancehmr.model.checkpoint import TrainingState, save_training_state
    from instancehmr.runtime import init_ray

    root = tmp_path_factory.mktemp("eval")
    cfg = load_config(
        REPO / "experiments" / "quickstart.yaml",
        [*tiny_run(root, train=4, val=4), "decode.center_threshold=0.0"],
    )  # fmt: skip
    torch.manual_seed(0)
    (root / "ckpt").mkdir()
    save_training_state(
        root / "ckpt", TrainingState(model=build_model(cfg).state_dict(), config=to_yaml(cfg))
    )
    old = Path.cwd()
    os.chdir(root)
    init_ray(num_cpus=2)
    yield root
    ray.shutdown()
    os.chdir(old)


@pytest.mark.real_samples
def test_benchmarks_with_data_run_and_one_without_is_reported(workdir, monkeypatch):
    from mlflow.tracking import MlflowClient

    from instancehmr.eval.run import evaluate

    monkeypatch.setitem(BENCHMARKS, "ochuman", dataclasses.replace(
        BENCHMARKS["ochuman"], card=str(card(workdir, "ochuman", "coco", "test_coco.json"))
    ))  # fmt: skip
    monkeypatch.setitem(BENCHMARKS, "crowdpose", dataclasses.replace(
        BENCHMARKS["crowdpose"],
        card=str(card(workdir, "crowdpose", "crowdpose", "test_crowdpose.json")),
    ))  # fmt: skip
    missing = yaml.safe_load((REPO / "datasets" / "panoptic.yaml").read_text())
    missing["root"] = str(workdir / "nowhere")
    (workdir / "panoptic.yaml").write_text(yaml.safe_dump(missing))
    monkeypatch.setitem(BENCHMARKS, "panoptic", dataclasses.replace(
        BENCHMARKS["panoptic"], card=str(workdir / "panoptic.yaml")
    ))  # fmt: skip

    result = evaluate(
        str(workdir / "ckpt"), ["ochuman", "crowdpose", "panoptic", "synthetic"], out_dir="eval"
    )
    assert "panoptic" in result.unavailable and "To get it" in result.unavailable["panoptic"]
    assert "panoptic-toolbox" in result.unavailable["panoptic"]  # the card's obtain text
    rows = {(r["benchmark"], r["protocol"], r["subset"]): r for r in result.rows}
    for name, images in (("ochuman", 4), ("crowdpose", 2)):
        row = rows[(name, "detected", "all")]
        assert row["images"] == images and 0.0 <= row["ap"] <= 1.0 and "ap75" in row
    # OCHuman by COCO's definition, CrowdPose by its own: both images of the CrowdPose sample
    # are of medium crowd index (0.33, 0.39), so its AP easy and AP hard are undefined.
    assert {"apm", "apl"} <= set(rows[("ochuman", "detected", "all")])
    crowdpose = rows[("crowdpose", "detected", "all")]
    assert "apm" not in crowdpose and 0.0 <= crowdpose["ap_medium"] <= 1.0
    assert math.isnan(crowdpose["ap_easy"]) and math.isnan(crowdpose["ap_hard"])
    for protocol in ("gt-centers", "detected"):
        assert rows[("synthetic", protocol, "all")]["people"] > 0
        assert ("synthetic", protocol, "occlusion:heavy") in rows
    assert rows[("synthetic", "gt-centers", "all")]["recall"] == 1.0
    # Headline in the paper's layout, the full table, the note on the skipped benchmark.
    assert (
        "| protocol | OCHuman AP | CrowdPose AP | CrowdPose AP50 | CrowdPose AP75 "
        "| CrowdPose AP easy | CrowdPose AP medium | CrowdPose AP hard | Synthetic MPJPE |"
    ) in result.table
    assert "| paper (ResNet-50, gt-centers) | 34.9 | 31.6 | 65.7 | 26.7 |  |  |  |" in result.table
    assert "| crowdpose | detected | all | 2 | 5 |" in result.table
    assert result.table.split("| crowdpose | detected | all |")[1].split("\n")[0].count("n/a") == 2
    assert "panoptic: no data (skipped)" in result.table
    with (result.out_dir / "table.csv").open() as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == len(result.rows)
    (crowdpose_csv,) = [r for r in written if r["benchmark"] == "crowdpose"]
    assert crowdpose_csv["ap_easy"] == crowdpose_csv["ap_hard"] == ""  # undefined: empty
    assert float(crowdpose_csv["ap_medium"]) == pytest.approx(crowdpose["ap_medium"])
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("quickstart-eval").experiment_id]
    )
    # A run per benchmark, named after it; recall and AP in percent, as the tables print them.
    logged = {r.data.tags["instancehmr.benchmark"]: r.data.metrics for r in runs}
    assert sorted(logged) == ["crowdpose", "ochuman", "synthetic"]
    assert {r.info.run_name for r in runs} == {"eval crowdpose", "eval ochuman", "eval synthetic"}
    assert "eval/ochuman/detected/all/ap" in logged["ochuman"]
    recall = logged["synthetic"]["eval/synthetic/detected/all/recall"]
    (row,) = [r for r in result.rows if r["benchmark"] == "synthetic"
              and r["protocol"] == "detected" and r["subset"] == "all"]  # fmt: skip
    assert recall == pytest.approx(100 * row["recall"])
    assert "eval/synthetic/detected/occlusion_heavy/recall" in logged["synthetic"]
    assert "eval/crowdpose/detected/all/ap_medium" in logged["crowdpose"]
    assert "eval/crowdpose/detected/all/ap_easy" not in logged["crowdpose"]  # undefined


@pytest.mark.real_samples
def test_annotation_files_are_checked_before_anything_is_scored(workdir, monkeypatch):
    """A CrowdPose file whose images lack a crowd index is refused, naming the image, before
    any benchmark is scored; a person whose keypoints are null is a person without labels."""
    from instancehmr.eval import run

    root = workdir / "crowdpose-variant"
    shutil.copytree(REAL / "crowdpose", root)
    data = json.loads((root / "test_crowdpose.json").read_text())
    data["annotations"][1]["keypoints"] = None  # 131039: a person without keypoints
    crowd_index = data["images"][1].pop("crowdIndex")
    (root / "test_crowdpose.json").write_text(json.dumps(data))
    path = card(workdir, "crowdpose", root, "test_crowdpose.json", "crowdpose_variant")
    monkeypatch.setitem(
        BENCHMARKS, "crowdpose", dataclasses.replace(BENCHMARKS["crowdpose"], card=str(path))
    )

    def not_yet(*args, **kwargs):
        raise AssertionError("a benchmark was scored before every annotation file was checked")

    with monkeypatch.context() as scoring:
        scoring.setattr(run, "inference_on_dataset", not_yet)
        with pytest.raises(ValueError, match=r"test_crowdpose\.json: image 103319: crowdIndex"):
            run.evaluate(str(workdir / "ckpt"), ["synthetic", "crowdpose"], out_dir="variant")
    assert not (workdir / "variant").exists()
    data["images"][1]["crowdIndex"] = crowd_index
    (root / "test_crowdpose.json").write_text(json.dumps(data))
    result = run.evaluate(str(workdir / "ckpt"), ["crowdpose"], out_dir="variant")
    (row,) = result.rows
    assert row["people"] == 5 and row["images"] == 2 and 0.0 <= row["ap"] <= 1.0
    assert (result.out_dir / "table.csv").exists()


def test_a_checkpoint_that_does_not_match_its_config_is_refused(workdir):
    from instancehmr.eval.run import evaluate

    with pytest.raises(ValueError, match="checkpoint does not match the model"):
        evaluate(str(workdir / "ckpt"), ["synthetic"], overrides=["model.embedding_dim=32"])
    with pytest.raises(ValueError, match=r"unknown benchmark '3dpw_pc'.*'3dpw-pc'"):
        evaluate(str(workdir / "ckpt"), ["3dpw_pc"])
    assert not (workdir / "eval_results").exists()  # nothing half-written


def test_a_registry_alias_that_does_not_exist_lists_the_ones_that_do(workdir):
    import mlflow

    from instancehmr.eval.run import load_model

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")  # whatever ran before
    mlflow.set_experiment("registry")
    client = mlflow.tracking.MlflowClient()
    client.create_registered_model("tiny")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(workdir / "ckpt" / "training_state.pt"), "checkpoint")
    version = client.create_model_version(
        "tiny", f"runs:/{run.info.run_id}/checkpoint", run.info.run_id
    )
    client.set_registered_model_alias("tiny", "champion", version.version)
    assert load_model("models:/tiny@champion").version == ("tiny", str(version.version))
    with pytest.raises(ValueError, match=r"aliases of 'tiny': \['champion'\]"):
        load_model("models:/tiny@best")


def test_cli_takes_benchmarks_then_overrides_and_prints_the_tables(workdir, capsys):
    from instancehmr.cli import main

    ckpt = str(workdir / "ckpt")
    assert main(["eval", ckpt, "synthetic", "decode.center_threshold=0.9", "--out", "cli"]) == 0
    out = capsys.readouterr().out
    assert out.count("## Headline") == 1 and "| detected | " in out
    assert "written to cli/" in out and "synthetic recall |" in out
    assert main(["eval", ckpt, "synthetic", "decode.center_treshold=0.9"]) == 2
    assert "did you mean 'decode.center_threshold'" in capsys.readouterr().err


def table_rows(folder: Path) -> dict:
    (path,) = folder.glob("*/table.csv")
    with path.open() as fh:
        return {(r["benchmark"], r["protocol"], r["subset"]): r for r in csv.DictReader(fh)}


def test_3dpw_from_another_directory_needs_only_its_split(workdir, body, monkeypatch, capsys):
    """The benchmark card is found from elsewhere; only the test split's files exist; the
    person-frames the official evaluation drops are not scored; a split prepared later joins
    the manifest without dropping the test split."""
    from instancehmr.cli import main

    raw = workdir / "home" / "data" / "raw" / "3dpw"
    data = write_pw3d_sequence(
        raw / "sequenceFiles" / "test" / "s.pkl", "downtown_walk_00", 4, body, 0
    )
    data["campose_valid"][1][1] = False  # person 1 not aligned in frame 1
    data["poses2d"][0][2] = 0.0  # person 0 without 2-D keypoints in frame 2
    write_py2_pickle(raw / "sequenceFiles" / "test" / "s.pkl", data)
    for frame in range(4):
        write_pw3d_image(raw, "downtown_walk_00", frame)
    monkeypatch.setenv("INSTANCEHMR_DATA", str(workdir / "home"))
    (workdir / "elsewhere").mkdir()
    monkeypatch.chdir(workdir / "elsewhere")
    ckpt = str(workdir / "ckpt")

    assert main(["eval", ckpt, "3dpw", "--out", "first"]) == 0
    out = capsys.readouterr().out
    assert "3dpw: preparing test under" in out and "skipped" not in out
    rows = table_rows(Path("first"))
    for protocol in ("gt-centers", "detected"):
        assert float(rows[("3dpw", protocol, "all")]["people"]) == 2 + 1 + 1 + 2
    manifest_path = workdir / "shards" / "3dpw" / "manifest.json"
    assert list(json.loads(manifest_path.read_text())["splits"]) == ["test"]

    write_pw3d_sequence(
        raw / "sequenceFiles" / "validation" / "v.pkl", "outdoors_run_00", 2, body, 1
    )
    for frame in range(2):
        write_pw3d_image(raw, "outdoors_run_00", frame)
    shards = str(workdir / "shards")
    assert (
        main(["data", "prepare", "datasets/3dpw.yaml", "--split", "validation", "--out", shards])
        == 0
    )
    manifest = json.loads(manifest_path.read_text())
    assert list(manifest["splits"]) == ["validation", "test"]
    assert manifest["splits"]["test"]["images"] == 4 and manifest["images"] == 4 + 2
    assert main(["eval", ckpt, "3dpw", "--out", "second"]) == 0
    assert "preparing" not in capsys.readouterr().out  # the test split is still prepared
    assert table_rows(Path("second"))[("3dpw", "gt-centers", "all")]["people"] == "6.0"


def test_panoptic_reports_the_17_joint_protocol_beside_the_labelled_mean(workdir, monkeypatch):
    """Every person in view has all 14 Panoptic joints labelled, so under CRMH's protocol each
    person's MPJPE is 14/17 of the labelled-joints mean, in every group and in their mean."""
    from instancehmr.eval.run import evaluate

    raw = workdir / "home" / "data" / "raw" / "panoptic"
    for seed, seq in enumerate(
        yaml.safe_load((REPO / "datasets" / "panoptic.yaml").read_text())["options"]["sequences"]
    ):
        write_panoptic_sequence(raw, seq, seed, frames=range(1))
        scene_file = raw / seq / "hdPose3d_stage1_coco19" / "body3DScene_00000000.json"
        scene = json.loads(scene_file.read_text())
        scene["bodies"][0]["joints19"][4 * 7 + 3] = 0.9  # the left knee labelled too
        scene_file.write_text(json.dumps(scene))
    monkeypatch.setenv("INSTANCEHMR_DATA", str(workdir / "home"))
    (workdir / "there").mkdir()
    monkeypatch.chdir(workdir / "there")

    result = evaluate(str(workdir / "ckpt"), ["panoptic"], out_dir="out")
    rows = {(r["protocol"], r["subset"]): r for r in result.rows}
    for protocol in ("gt-centers", "detected"):
        for group in ("Haggling", "Mafia", "Ultimatum", "Pizza", "mean", "all"):
            protocol_row, labelled = rows[(protocol, group)], rows[(protocol, f"labelled:{group}")]
            assert protocol_row["people"] == (16 if group in ("mean", "all") else 4)
            if protocol == "detected" and not math.isfinite(labelled["mpjpe"]):
                continue  # nobody of the group detected: both NaN
            assert protocol_row["mpjpe"] == pytest.approx(labelled["mpjpe"] * 14 / 17, rel=1e-5)
    # The headline's CMU columns are the protocol's numbers, with the paper's mean beneath.
    cells = [f"{rows[('gt-centers', g)]['mpjpe']:.1f}" for g in ("Haggling", "Mafia", "Ultimatum")]
    cells += [f"{rows[('gt-centers', g)]['mpjpe']:.1f}" for g in ("Pizza", "mean")]
    assert f"| gt-centers | {' | '.join(cells)} |" in result.table
    assert "| paper (ResNet-50, gt-centers) |  |  |  |  | 126.1 |" in result.table
    assert "17 Human3.6M joints" in result.table


def test_cli_prints_crowdpose_ap_by_its_own_definition(workdir, body, monkeypatch, capsys):
    """``instancehmr eval CKPT crowdpose`` as a user runs it: the shipped card over the files
    laid out where it says (the real sample, or written files of its layout); the table has
    AP, AP50, AP75 and AP easy / medium / hard, the undefined ones (no easy or hard image) as
    n/a, never as a number."""
    from corpus_layouts import LAYOUTS, Lay
    from samples import REAL_SAMPLES

    from instancehmr.cli import main

    lay = Lay(workdir / "crowdpose-home", workdir / "crowdpose-cards", body, REAL_SAMPLES.is_dir())
    lay.cards.mkdir()
    LAYOUTS["crowdpose"](lay)
    monkeypatch.setenv("INSTANCEHMR_DATA", str(lay.data))
    assert main(["eval", str(workdir / "ckpt"), "crowdpose", "--out", "cli-crowdpose"]) == 0
    out = capsys.readouterr().out
    assert (
        "| CrowdPose AP | CrowdPose AP50 | CrowdPose AP75 | CrowdPose AP easy "
        "| CrowdPose AP medium | CrowdPose AP hard |"
    ) in out
    line = next(row for row in out.splitlines() if row.startswith("| detected |"))
    cells = [c.strip() for c in line.strip("|").split("|")][1:]
    assert cells[3] == cells[5] == "n/a" and all(c != "n/a" for c in cells[:3] + cells[4:5])
