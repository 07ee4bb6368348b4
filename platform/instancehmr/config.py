"""Typed experiment configuration: schema, loading, ``key=value`` overrides and validation.

An experiment is a YAML file under ``experiments/``. It names the file it builds on with
``extends:`` (a path relative to itself) and overrides only what differs; the chain ends at
``experiments/base.yaml``, which sets every key of the schema below to the paper's default.
The schema therefore carries no default values of its own (one source of truth: base.yaml):
a key that no file in the chain sets is an error.

Errors are :class:`ConfigError` with one message naming the file, the key and, for a typo, the
closest valid key.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import typing
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

BACKBONES = ("resnet18", "resnet34", "resnet50", "hrnet_w32")
POSE_REPRESENTATIONS = ("axis_angle", "rot6d")
INSTANCE_MAP_HEATMAPS = ("both", "own")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")
MODES = ("min", "max")
EXTENDS_KEY = "extends"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and key."""


def yaml_problem(path: str | Path, err: yaml.YAMLError) -> str:
    """One line naming the file, line and column (1-based) of a YAML syntax error and what is
    wrong there, e.g. ``a.yaml:2:2: not valid YAML: expected ',' or ']', but got ':' (while
    parsing a flow sequence)``."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def read_yaml(path: Path, error: type[Exception] = ConfigError) -> Any:
    """The YAML document in the file ``path``; ``error`` with :func:`yaml_problem`'s line when
    it is not valid YAML."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise error(yaml_problem(path, err)) from None


@dataclass
class BodyConfig:
    model_path: str | None = MISSING
    h36m_regressor_path: str | None = MISSING
    prior_path: str | None = MISSING
    num_betas: int = MISSING


@dataclass
class ModelConfig:
    backbone: str = MISSING
    backbone_weights: str | None = MISSING
    input_size: int = MISSING
    map_size: int = MISSING
    head_channels: int = MISSING
    embedding_dim: int = MISSING
    instance_maps: bool = MISSING
    positional_encoding: bool = MISSING
    instance_map_heatmaps: str = MISSING
    pose_representation: str = MISSING
    camera_scale_init: float | None = MISSING
    init_at_mean_body: bool = MISSING


@dataclass
class DecodeConfig:
    nms_kernel: int = MISSING
    max_people: int = MISSING
    center_threshold: float = MISSING


@dataclass
class LossWeights:
    cont: float = MISSING
    center: float = MISSING
    joint: float = MISSING
    pose: float = MISSING
    shape: float = MISSING
    prior: float = MISSING
    j3d: float = MISSING
    pa3d: float = MISSING
    j2d: float = MISSING


@dataclass
class LossConfig:
    contrastive: bool = MISSING
    weights: LossWeights = field(default_factory=LossWeights)
    focal_alpha: float = MISSING
    focal_beta: float = MISSING
    shape_regularizer: float = MISSING


@dataclass
class OptimConfig:
    name: str = MISSING
    lr: float = MISSING
    betas: list[float] = MISSING
    weight_decay: float = MISSING
    schedule: str = MISSING
    milestones: list[int] = MISSING
    gamma: float = MISSING
    warmup_steps: int = MISSING


@dataclass
class TrainConfig:
    epochs: int = MISSING
    batch_size: int = MISSING
    seed: int = MISSING
    grad_clip_norm: float | None = MISSING
    mixed_precision: bool = MISSING
    max_nonfinite_steps: int = MISSING
    max_failures: int = MISSING
    checkpoint_metric: str = MISSING
    checkpoint_mode: str = MISSING


@dataclass
class CorpusMix:
    card: str = MISSING
    weight: float | None = MISSING


@dataclass
class AugmentConfig:
    crop_scale: list[float] = MISSING
    rotation_deg: float = MISSING
    rotation_prob: float = MISSING
    flip_prob: float = MISSING
    color_jitter: float = MISSING
    color_jitter_prob: float = MISSING


@dataclass
class DataConfig:
    mix: list[CorpusMix] = MISSING
    val_card: str = MISSING
    val_split: str = MISSING
    shards_dir: str = MISSING
    max_people: int = MISSING
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ScalingConfig:
    num_workers: int = MISSING
    use_gpu: bool = MISSING
    cpus_per_worker: float = MISSING
    data_cpus: float = MISSING


@dataclass
class TrackingConfig:
    tracking_uri: str | None = MISSING
    storage_path: str = MISSING
    run_name: str | None = MISSING
    log_every_steps: int = MISSING
    registered_model_name: str = MISSING
    log_images: bool = MISSING


@dataclass
class ExperimentConfig:
    name: str | None = MISSING
    body: BodyConfig = field(default_factory=BodyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


def valid_keys(cls: type = ExperimentConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, sections and leaves, e.g. ``model.embedding_dim``."""
    keys = []
    for name, hint in typing.get_type_hints(cls).items():
        keys.append(prefix + name)
        if is_dataclass(hint):
            keys += valid_keys(hint, f"{prefix}{name}.")
    return keys


def did_you_mean(
    value: object, choices: typing.Iterable[str], cutoff: float = 0.6, prefix: str = ""
) -> str:
    """`` (did you mean '<prefix>x'?)`` for the choice x closest to ``value`` (difflib's ratio
    of at least ``cutoff``), or '' when none is close: the hint every unknown-name error ends
    with."""
    match = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=cutoff)
    return f" (did you mean '{prefix}{match[0]}'?)" if match else ""


def _suggest(key: str) -> str:
    """' (did you mean 'x'?)' for the valid key closest to ``key``, or ''."""
    parent, _, leaf = key.rpartition(".")
    schema_parent = re.sub(r"(\[\d+\]|\.\d+)", "", parent)
    siblings = [
        k.rpartition(".")[2] for k in _known_keys() if k.rpartition(".")[0] == schema_parent
    ]
    prefix = f"{parent}." if parent else ""
    return did_you_mean(leaf, siblings, 0.5, prefix) or did_you_mean(key, _known_keys())


def _known_keys() -> list[str]:
    """Schema keys plus the keys inside list items (``data.mix.card``: :class:`CorpusMix`)."""
    return valid_keys() + valid_keys(CorpusMix, "data.mix.")


def _merge(base: DictConfig, layer: Any, source: str) -> DictConfig:
    """Merge ``layer`` onto ``base``, turning OmegaConf's errors into :class:`ConfigError`."""
    try:
        return OmegaConf.merge(base, layer)
    except ConfigKeyError as err:
        key = err.full_key or str(err.key)
        raise ConfigError(f"{source}: unknown key '{key}'{_suggest(key)}") from None
    except ValidationError as err:
        key = err.full_key or str(err.key)
        hint = _type_name(key)
        raise ConfigError(
            f"{source}: key '{key}' has the wrong type: got {err.value!r}, expected {hint}"
        ) from None
    except (OmegaConfBaseException, TypeError) as err:
        raise ConfigError(f"{source}: {err}") from None


def _type_name(key: str) -> str:
    cls: Any = ExperimentConfig
    parts = re.sub(r"(\[\d+\]|\.\d+)", "", key).split(".")
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(cls)
        if part not in hints:
            return "a value of the schema's type"
        cls = hints[part]
        if typing.get_origin(cls) is list and i < len(parts) - 1:
            cls = typing.get_args(cls)[0]
    return str(cls).replace("typing.", "") if not isinstance(cls, type) else cls.__name__


def experiment_files(root: Path) -> list[Path]:
    """The experiment files under ``root`` (an ``experiments/`` folder), not its sweep files."""
    return sorted(p for p in root.glob("**/*.yaml") if "sweeps" not in p.relative_to(root).parts)


def resolve_experiment_path(experiment: str | Path) -> Path:
    """A path to a YAML file, or a bare name looked up as ``experiments/<name>.yaml``."""
    path = Path(experiment)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{path}: experiment file not found")
        return path
    candidate = Path("experiments") / f"{experiment}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in experiment_files(Path("experiments")))
    hint = did_you_mean(experiment, known)
    raise ConfigError(f"experiment '{experiment}' not found: no file {candidate}{hint}")


def _read_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, DictConfig]]:
    """The ``extends`` chain of ``path``, base first, as (file, contents) pairs."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'extends' forms a cycle through {', '.join(map(str, seen))}")
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    try:
        raw = OmegaConf.load(path)
    except yaml.YAMLError as err:
        raise ConfigError(yaml_problem(path, err)) from None
    except Exception as err:  # OmegaConf's own checks (duplicate keys, ...)
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{path}: top level must be a mapping of config keys")
    parent = raw.pop(EXTENDS_KEY, None)
    chain = [] if parent is None else _read_chain(path.parent / str(parent), (*seen, path))
    return [*chain, (path, raw)]


def _apply_override(cfg: DictConfig, item: str) -> DictConfig:
    """Apply one ``key=value`` override (list items as ``data.mix.0.weight=0.5``)."""
    source = f"override '{item}'"
    if "=" not in item:
        raise ConfigError(f"{source}: expected key=value")
    key, value = item.split("=", 1)
    parts = key.split(".")
    for i, part in enumerate(parts[1:], start=1):
        container = OmegaConf.select(cfg, ".".join(parts[:i]))
        if part.isdigit() and isinstance(container, ListConfig) and int(part) >= len(container):
            raise ConfigError(
                f"{source}: '{'.'.join(parts[:i])}' has {len(container)} items, no [{part}]"
            )
    try:
        OmegaConf.update(cfg, key, yaml.safe_load(value) if value else None, merge=True)
    except (ConfigKeyError, ConfigAttributeError, IndexError, KeyError):
        raise ConfigError(f"{source}: unknown key '{key}'{_suggest(key)}") from None
    except ValidationError as err:
        raise ConfigError(
            f"{source}: key '{key}' has the wrong type: got {err.value!r}, expected {_type_name(key)}"
        ) from None
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_config(experiment: str | Path, overrides: typing.Sequence[str] = ()) -> DictConfig:
    """Resolve an experiment file (with its ``extends`` chain) and ``key=value`` overrides.

    Returns a validated, read-only structured config (schema :class:`ExperimentConfig`).
    """
    path = resolve_experiment_path(experiment)
    cfg = OmegaConf.structured(ExperimentConfig)
    leaf_sets_name = False
    for file, layer in _read_chain(path):
        leaf_sets_name = "name" in layer
        cfg = _merge(cfg, layer, str(file))
    for item in overrides:
        if item.split("=", 1)[0] == "name":
            leaf_sets_name = True
        cfg = _apply_override(cfg, item)
    if not leaf_sets_name or cfg.name is None:
        cfg.name = path.stem
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{path}: keys not set by the file or its 'extends' chain: {missing}")
    check_config(cfg, str(path))
    OmegaConf.set_readonly(cfg, True)
    return cfg


#: Keys added after configs were first saved in checkpoints, with the behaviour of the code
#: that saved them: a checkpoint's config without the key is read with this value.
SAVED_BEFORE = {
    "model.instance_map_heatmaps": "own",
    "model.camera_scale_init": None,
    "model.init_at_mean_body": False,
    "optim.warmup_steps": 0,
    "train.checkpoint_metric": "val/mpjpe",
    "train.checkpoint_mode": "min",
}


def config_from_yaml(text: str, source: str, overrides: typing.Sequence[str] = ()) -> DictConfig:
    """A resolved config saved as YAML (e.g. in a checkpoint) with ``key=value`` overrides,
    validated against the schema."""
    try:
        raw = OmegaConf.create(yaml.safe_load(text))
    except yaml.YAMLError as err:
        raise ConfigError(yaml_problem(source, err)) from None
    cfg = _merge(OmegaConf.structured(ExperimentConfig), raw, source)
    for key, value in SAVED_BEFORE.items():
        section, leaf = key.rsplit(".", 1)
        if OmegaConf.is_missing(OmegaConf.select(cfg, section), leaf):
            OmegaConf.update(cfg, key, value)
    for item in overrides:
        cfg = _apply_override(cfg, item)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"{source}: config lacks keys {missing} (made by another platform version?)"
        )
    check_config(cfg, source)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _check_choice(source: str, key: str, value: str, choices: typing.Sequence[str]) -> None:
    if value not in choices:
        hint = did_you_mean(value, choices)
        raise ConfigError(f"{source}: {key}={value!r} is not one of {list(choices)}{hint}")


def check_config(cfg: DictConfig, source: str = "config") -> None:
    """Checks across keys that types alone cannot express; raises :class:`ConfigError`."""

    def fail(key: str, why: str) -> typing.NoReturn:
        raise ConfigError(f"{source}: {key}: {why}")

    for key, value in _float_leaves(OmegaConf.to_container(cfg, resolve=True), ""):
        if not math.isfinite(value):
            fail(key, f"must be a finite number, got {value}")
    m = cfg.model
    _check_choice(source, "model.backbone", m.backbone, BACKBONES)
    _check_choice(source, "model.pose_representation", m.pose_representation, POSE_REPRESENTATIONS)
    _check_choice(
        source, "model.instance_map_heatmaps", m.instance_map_heatmaps, INSTANCE_MAP_HEATMAPS
    )
    _check_choice(source, "optim.name", cfg.optim.name, OPTIMIZERS)
    _check_choice(source, "optim.schedule", cfg.optim.schedule, SCHEDULES)
    _check_choice(source, "train.checkpoint_mode", cfg.train.checkpoint_mode, MODES)
    if not cfg.train.checkpoint_metric.startswith("val/"):
        fail("train.checkpoint_metric", f"must be a validation metric (val/...), got "
             f"'{cfg.train.checkpoint_metric}'")  # fmt: skip
    if m.input_size % 32:
        fail("model.input_size", f"must be a multiple of 32, got {m.input_size}")
    if m.map_size * 8 != m.input_size:
        fail("model.map_size", f"must be input_size / 8 = {m.input_size // 8}, got {m.map_size}")
    if m.embedding_dim <= 0 or m.embedding_dim % 4:
        fail("model.embedding_dim", f"must be a positive multiple of 4, got {m.embedding_dim}")
    if cfg.loss.contrastive and not m.instance_maps:
        fail(
            "loss.contrastive", "needs model.instance_maps=true (the baseline has no instance maps)"
        )
    for name, weight in cfg.loss.weights.items():
        if weight < 0:
            fail(f"loss.weights.{name}", f"must be >= 0, got {weight}")
    if cfg.decode.nms_kernel % 2 == 0:
        fail("decode.nms_kernel", f"must be odd, got {cfg.decode.nms_kernel}")
    if not 0 <= cfg.decode.center_threshold <= 1:
        fail("decode.center_threshold", "must lie in [0, 1]")
    if cfg.optim.lr <= 0:
        fail("optim.lr", f"must be > 0, got {cfg.optim.lr}")
    if cfg.optim.warmup_steps < 0:
        fail("optim.warmup_steps", f"must be >= 0, got {cfg.optim.warmup_steps}")
    if m.camera_scale_init is not None and m.camera_scale_init <= 0:
        fail("model.camera_scale_init", f"must be > 0 or null, got {m.camera_scale_init}")
    if len(cfg.optim.betas) != 2:
        fail("optim.betas", f"needs two values, got {list(cfg.optim.betas)}")
    if cfg.train.epochs < 1:
        fail("train.epochs", f"must be at least 1, got {cfg.train.epochs}")
    if cfg.scaling.num_workers < 1:
        fail("scaling.num_workers", f"must be at least 1, got {cfg.scaling.num_workers}")
    if cfg.train.batch_size < 1 or cfg.train.batch_size % cfg.scaling.num_workers:
        fail(
            "train.batch_size",
            f"is the global batch, split evenly over scaling.num_workers: "
            f"{cfg.train.batch_size} is not a positive multiple of {cfg.scaling.num_workers}",
        )
    if cfg.train.max_failures < -1:
        fail(
            "train.max_failures",
            f"must be -1 (always restart) or more, got {cfg.train.max_failures}",
        )
    if not cfg.data.mix:
        fail("data.mix", "names no corpus")
    for i, entry in enumerate(cfg.data.mix):
        if entry.weight is not None and entry.weight <= 0:
            fail(f"data.mix[{i}].weight", f"must be > 0 or null (card default), got {entry.weight}")
    if cfg.data.max_people < 1:
        fail("data.max_people", f"must be at least 1, got {cfg.data.max_people}")
    lo, hi = cfg.data.augment.crop_scale
    if not 0 < lo <= hi:
        fail("data.augment.crop_scale", f"needs 0 < min <= max, got {[lo, hi]}")


def _float_leaves(node: typing.Any, prefix: str) -> typing.Iterator[tuple[str, float]]:
    """(dotted key, value) of every float in a config container (list items as ``key.i``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _float_leaves(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _float_leaves(value, f"{prefix}{i}.")
    elif isinstance(node, float):
        yield prefix[:-1], node


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML, keys in schema order."""
    return OmegaConf.to_yaml(cfg)


def config_hash(cfg: DictConfig) -> str:
    """Short content hash of the resolved config (sorted keys), for tags and run identity."""
    payload = OmegaConf.to_yaml(cfg, sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:16]
