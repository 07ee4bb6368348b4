from pathlib import Path

import pytest
from omegaconf import OmegaConf

from instancehmr.config import ConfigError, config_hash, experiment_files, load_config, valid_keys

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "experiments" / "base.yaml"
PAPER_WEIGHTS = {
    "cont": 50, "center": 160, "joint": 50, "pose": 80, "shape": 6, "prior": 1.6,
    "j3d": 200, "pa3d": 360, "j2d": 400,
}  # fmt: skip


def test_base_holds_the_paper_defaults():
    cfg = load_config(BASE)
    assert dict(cfg.loss.weights) == PAPER_WEIGHTS
    assert (cfg.model.backbone, cfg.model.input_size, cfg.model.map_size) == ("resnet50", 512, 64)
    assert cfg.model.embedding_dim == 64 and cfg.model.positional_encoding and cfg.loss.contrastive
    assert (cfg.optim.name, cfg.optim.lr, cfg.train.batch_size, cfg.train.epochs) == (
        "adam",
        5e-6,
        64,
        30,
    )
    assert cfg.name == "base"


def test_base_sets_every_schema_key_with_a_comment():
    text = BASE.read_text()
    for key in valid_keys():
        leaf = key.rpartition(".")[2]
        lines = [line for line in text.splitlines() if line.strip().startswith(f"{leaf}:")]
        assert lines, f"base.yaml does not set {key}"
        assert all("#" in line or line.rstrip().endswith(":") for line in lines), (
            f"{key} lacks a comment"
        )


@pytest.mark.parametrize("path", experiment_files(REPO / "experiments"), ids=lambda p: p.stem)
def test_every_experiment_file_loads(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


def test_release_file_and_ablations_override_only_what_differs():
    release = load_config(REPO / "experiments" / "paper" / "release.yaml")
    assert (release.optim.lr, release.train.epochs, release.train.grad_clip_norm) == (
        5e-5,
        200,
        0.5,
    )
    assert list(release.optim.milestones) == [60, 80] and release.train.mixed_precision
    baseline = load_config(REPO / "experiments" / "ablations" / "baseline.yaml")
    assert not baseline.model.instance_maps and not baseline.loss.contrastive
    assert (
        load_config(REPO / "experiments" / "ablations" / "dim256.yaml").model.embedding_dim == 256
    )


def test_overrides_apply_with_types():
    cfg = load_config(
        BASE, ["model.embedding_dim=128", "optim.betas=[0.8,0.9]", "data.mix.0.weight=0.5"]
    )
    assert cfg.model.embedding_dim == 128 and list(cfg.optim.betas) == [0.8, 0.9]
    assert cfg.data.mix[0].weight == 0.5
    assert config_hash(cfg) != config_hash(load_config(BASE))
    assert OmegaConf.is_readonly(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.embeding_dim=32",
            "unknown key 'model.embeding_dim' (did you mean 'model.embedding_dim'?)",
        ),
        ("loss.weights.j3=1", "did you mean 'loss.weights.j3d'?"),
        ("modl.backbone=resnet18", "did you mean 'model.backbone'?"),
        ("data.mix.0.crd=x", "did you mean 'data.mix.0.card'?"),
        ("data.mix.9.weight=1", "'data.mix' has 7 items"),
        (
            "model.embedding_dim=abc",
            "key 'model.embedding_dim' has the wrong type: got 'abc', expected int",
        ),
        ("loss.contrastive=maybe", "expected bool"),
        ("model.backbone=resnet5", "did you mean 'resnet50'?"),
        ("model.map_size=32", "must be input_size / 8 = 64"),
        ("model.embedding_dim=30", "multiple of 4"),
        ("model.instance_maps=false", "loss.contrastive: needs model.instance_maps=true"),
        ("embedding_dim", "expected key=value"),
        ("train.checkpoint_mode=best", "train.checkpoint_mode"),
        ("train.checkpoint_metric=train/total", "must be a validation metric (val/...)"),
        ("optim.lr=nan", "optim.lr: must be a finite number, got nan"),
        ("optim.weight_decay=inf", "optim.weight_decay: must be a finite number, got inf"),
        ("optim.betas=[0.9,-inf]", "optim.betas.1: must be a finite number, got -inf"),
        ("loss.weights.cont=nan", "loss.weights.cont: must be a finite number"),
        ("train.epochs=0", "train.epochs: must be at least 1, got 0"),
        ("train.batch_size=0", "train.batch_size: is the global batch"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(BASE, [override])
    assert message in str(err.value)


def test_bad_files_name_the_file(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"extends: {BASE}\nmodel:\n  backbon: resnet18\n")
    with pytest.raises(
        ConfigError,
        match=r"typo\.yaml: unknown key 'model\.backbon' \(did you mean 'model\.backbone'\?\)",
    ):
        load_config(typo)
    wrong_type = tmp_path / "wrong.yaml"
    wrong_type.write_text(f"extends: {BASE}\ntrain:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"wrong\.yaml: key 'train\.epochs' has the wrong type"):
        load_config(wrong_type)
    orphan = tmp_path / "orphan.yaml"
    orphan.write_text("model:\n  backbone: resnet18\n")
    with pytest.raises(ConfigError, match="keys not set"):
        load_config(orphan)
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(loop)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_a_global_batch_that_does_not_split_evenly_over_the_workers_is_refused():
    with pytest.raises(ConfigError) as err:
        load_config(BASE, ["train.batch_size=7", "scaling.num_workers=2"])
    assert "7 is not a positive multiple of 2" in str(err.value)
