from pathlib import Path

import pytest
import yaml

from instancehmr.config import ConfigError
from instancehmr.sweep.spec import DEFAULT_ROW, load_sweep

REPO = Path(__file__).resolve().parents[3]

BASE = {
    "name": "weights",
    "experiment": "quickstart",
    "overrides": ["train.epochs=1"],
    "metric": "val/mpjpe",
    "mode": "min",
    "algorithm": "random",
    "samples": 4,
    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "space": {
        "loss.weights.cont": {"loguniform": [5, 500]},
        "model.embedding_dim": {"choice": [32, 64, 128, 256]},
        "train.seed": {"randint": [0, 3]},
    },
}


def write(tmp_path, **changes):
    raw = {**BASE, **changes}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_sweep_file_loads_with_trial_overrides_and_checked_corners(tmp_path):
    spec = load_sweep(write(tmp_path))
    assert spec.name == "weights" and spec.samples == 4 and spec.scheduler["name"] == "asha"
    params = {"loss.weights.cont": 50.0, "model.embedding_dim": 64}
    assert spec.trial_overrides(params) == [
        "train.epochs=1",
        "loss.weights.cont=50.0",
        "model.embedding_dim=64",
    ]
    corners = spec.corners()
    assert len(corners) == 4 and corners[0]["train.seed"] == 0 and corners[1]["train.seed"] == 2
    assert [c["model.embedding_dim"] for c in corners] == [32, 64, 128, 256]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space": {}}, "search space is empty"),
        ({"space": {"model.embeding_dim": {"choice": [32]}}}, "did you mean 'model.embedding_dim'"),
        ({"space": {"model.embedding_dim": {"choice": ["big"]}}}, "model.embedding_dim"),
        ({"space": {"model.embedding_dim": {"choise": [32]}}}, "did you mean 'choice'"),
        ({"space": {"optim.lr": {"loguniform": [0, 1]}}}, "loguniform needs low > 0"),
        ({"algorithm": "grid"}, "grid search needs every domain to be a grid"),
        ({"algorithm": "bayes"}, "'bayes' is not one of"),
        ({"scheduler": {"name": "pbt"}}, "scheduler"),
        ({"sampels": 3}, "did you mean 'samples'"),
        ({"samples": 0}, "samples: a positive integer"),
        ({"overrides": ["train.epoch=1"]}, "did you mean 'train.epochs'"),
        ({"algorithm": "optuna", "space": {"train.seed": {"grid": [0, 1]}}}, "no grid domains"),
        ({"rows": "missing"}, "neither a folder nor a file"),
        ({"rows": ["bad.yaml"]}, "rows: bad: .*did you mean 'model.embedding_dim'"),
        ({"metric": "val/mpjep"}, r"metric: 'val/mpjep' is not .*did you mean 'val/mpjpe'"),
        ({"metric": "train/total"}, "metric: 'train/total' is not a metric validation reports"),
    ],
)
def test_bad_sweep_files_fail_before_any_trial_naming_the_field(tmp_path, changes, message):
    (tmp_path / "bad.yaml").write_text("model: {embeding_dim: 32}\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_sweep(write(tmp_path, **changes))
    assert str(tmp_path / "sweep.yaml") in str(err.value)


def test_a_sweep_file_that_is_not_yaml_names_its_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("experiment: quickstart\nspace: {model.embedding_dim: {choice: [32, 64}\n")
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert str(err.value).startswith(f"{path}:2:") and "not valid YAML" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_file_and_missing_fields(tmp_path):
    with pytest.raises(ConfigError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.yaml")
    path = tmp_path / "partial.yaml"
    path.write_text("experiment: quickstart\n")
    with pytest.raises(ConfigError, match=r"missing fields \['metric', 'space'\]"):
        load_sweep(path)


def test_ablation_rows_are_each_files_own_keys_on_the_base(tmp_path):
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "small.yaml").write_text(
        "extends: ../base.yaml\nmodel: {embedding_dim: 8, positional_encoding: false}\n"
    )
    (tmp_path / "rows" / "nocont.yaml").write_text("loss:\n  contrastive: false\n")
    spec = load_sweep(write(tmp_path, rows="rows", algorithm="grid",
                            space={"train.seed": {"grid": [0, 1]}}))  # fmt: skip
    assert list(spec.rows) == [DEFAULT_ROW, "nocont", "small"]
    assert spec.rows["small"] == ("model.embedding_dim=8", "model.positional_encoding=false")
    assert spec.trial_overrides({"train.seed": 1}, "nocont") == [
        "train.epochs=1", "loss.contrastive=false", "train.seed=1",
    ]  # fmt: skip
    assert spec.num_trials == 4 * 3 * 2  # samples x rows x seeds


def test_the_example_sweep_files_load(monkeypatch):
    monkeypatch.chdir(REPO)  # bare experiment names resolve from the repository root
    specs = {
        p.stem: load_sweep(p) for p in sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))
    }
    assert {"quickstart_lr", "loss_weights", "contrastive_optuna", "paper_ablations"} <= set(specs)
    assert specs["quickstart_lr"].num_trials == 2
    ablations = specs["paper_ablations"]
    assert list(ablations.rows) == [
        DEFAULT_ROW, "baseline", "no_positional_encoding", "dim32", "dim128", "dim256",
    ]  # fmt: skip
    assert ablations.rows["baseline"] == ("model.instance_maps=false", "loss.contrastive=false")
    assert ablations.num_trials == 18
