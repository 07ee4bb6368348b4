"""Training checkpoints: one file of plain tensors and numbers, written atomically and read
with ``torch.load(weights_only=True)`` (a checkpoint cannot run code)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "training_state.pt"


def save_training_state(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (model/optimizer/scheduler/scaler state dicts, epoch, step, config YAML)
    to ``directory/training_state.pt`` via a temporary file and an atomic rename."""
    path = Path(directory) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_training_state(
    directory: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a state written by :func:`save_training_state`; a clear error if absent."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {STATE_FILE}; not a training checkpoint")
    return torch.load(path, map_location=map_location, weights_only=True)


def load_model_state(model: torch.nn.Module, state: dict[str, Any], source: str) -> None:
    """Load ``state['model']`` into ``model``; a mismatch (other backbone, joint count, ...)
    is a ValueError naming ``source`` and the first mismatching keys."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        first = str(err).splitlines()[:4]
        raise ValueError(
            f"{source}: checkpoint does not match the model of this config: {' '.join(first)}"
        ) from None
