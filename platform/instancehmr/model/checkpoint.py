"""Training checkpoints: one file of plain tensors and numbers, written atomically and read
with ``torch.load(weights_only=True)`` (a checkpoint cannot run code). :class:`TrainingState`
names what the file holds; this module is the only place that knows its keys."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from instancehmr.atomic import atomic_path
from instancehmr.model.network import build_model

STATE_FILE = "training_state.pt"


@dataclass
class TrainingState:
    """A training checkpoint's contents.

    ``model``: the network's state dict; ``config``: the resolved experiment as YAML (how the
    network is built again); ``epoch``: the last finished epoch (0-based; -1 before any);
    ``step``: optimizer steps taken; ``optimizer``, ``scheduler``, ``scaler``: their state dicts,
    None in a model-only checkpoint."""

    model: dict[str, torch.Tensor]
    config: str = ""
    epoch: int = -1
    step: int = 0
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None


def save_training_state(directory: str | Path, state: TrainingState) -> Path:
    """Write ``state`` to ``directory/training_state.pt`` via a temporary file and an atomic
    rename. Returns the file's path."""
    path = Path(directory) / STATE_FILE
    with atomic_path(path) as tmp:
        torch.save({f.name: getattr(state, f.name) for f in fields(state)}, tmp)
    return path


def load_training_state(
    directory: str | Path, map_location: str | torch.device = "cpu"
) -> TrainingState:
    """Read a state written by :func:`save_training_state`. FileNotFoundError when the folder
    holds no ``training_state.pt``; ValueError when the file is not one ``torch.load`` can read
    as plain tensors and numbers (corrupt, truncated, or holding objects that would run code:
    it is refused, never executed) or has no model weights."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {STATE_FILE}; not a training checkpoint")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        why = unloadable_reason(err)
        raise ValueError(f"{path}: not a loadable training checkpoint ({why})") from None
    if not isinstance(raw, dict) or "model" not in raw:
        raise ValueError(f"{path}: no model weights; not a training checkpoint")
    return TrainingState(**{f.name: raw[f.name] for f in fields(TrainingState) if f.name in raw})


def unloadable_reason(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line: the unpickler's own
    reason for content it will not load, else the archive reader's first sentence."""
    text = str(err)
    if isinstance(err, pickle.UnpicklingError):
        detail = text.split("WeightsUnpickler error:", 1)[-1].strip().split("\n")[0].strip()
        return (
            "not the tensors and numbers of a checkpoint: corrupt, or objects that could run "
            f"code, refused unread: {detail}"
        )
    return text.split(". ")[0].strip() or type(err).__name__


def load_model_state(model: torch.nn.Module, state: TrainingState, source: str) -> None:
    """Load ``state.model`` into ``model``; a mismatch (other backbone, joint count, ...)
    is a ValueError naming ``source`` and the first mismatching keys."""
    try:
        model.load_state_dict(state.model)
    except RuntimeError as err:
        first = str(err).splitlines()[:4]
        raise ValueError(
            f"{source}: checkpoint does not match the model of this config: {' '.join(first)}"
        ) from None


def model_from_state(state: TrainingState, cfg: DictConfig, source: str) -> torch.nn.Module:
    """The network ``cfg`` describes with the checkpoint's weights, in eval mode. It is built
    without ``model.backbone_weights`` (the checkpoint's weights replace them, and that file
    need not exist where the model is used). ValueError naming ``source`` on a mismatch."""
    model = build_model(OmegaConf.merge(cfg, {"model": {"backbone_weights": None}}))
    load_model_state(model, state, source)
    return model.eval()
