"""Logged models: a checkpoint's model logged to its MLflow run as a servable ``pyfunc``
(:mod:`instancehmr.track.servable`), registered by ``instancehmr train`` (the first version
becomes ``champion``) and only logged by sweep trials (``instancehmr promote`` registers the
winner); and :func:`load_model`, which resolves every model reference the commands take.

The logged model carries its weights and config (a model-only ``training_state.pt``, which
``eval``, ``predict`` and ``export`` read too), the body model files, the
package's code (``code_paths``: loading needs no installed ``instancehmr``), pip requirements
pinned to the versions it was logged with, a signature and an input example.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import DictConfig

import instancehmr
from instancehmr.body.smpl import BodyModel, body_files
from instancehmr.config import config_from_yaml
from instancehmr.data.image import decode_photo
from instancehmr.model.checkpoint import (
    STATE_FILE,
    TrainingState,
    load_training_state,
    model_from_state,
    save_training_state,
)
from instancehmr.model.predictor import DEFAULT_FOV_DEG, Predictor

# MLflow and pandas are imported inside the functions: importing this module stays light.

#: Registry aliases: the model in use, and the one it replaced (``instancehmr promote``).
CHAMPION, PREVIOUS = "champion", "previous"
#: Distributions the servable model imports besides MLflow's own, pinned when it is logged.
SERVING_DISTRIBUTIONS = ("torch", "torchvision", "numpy", "opencv-python-headless", "omegaconf",
                         "PyYAML", "smplx", "roma", "scipy")  # fmt: skip
SERVABLE = Path(__file__).with_name("servable.py")
#: How MLflow 3 addresses a logged model (a registered version's ``source``).
LOGGED_MODEL_URI = "models:/m-"
#: Params a request to the served model may set, with their defaults (``track.servable``).
SERVING_PARAMS = {"fov": DEFAULT_FOV_DEG, "vertices": False}


@dataclass
class LoadedModel:
    """A model ready to run: the network (eval mode), its config, the run it came from, a label
    for output folders and, through the registry, (registered name, version)."""

    model: torch.nn.Module
    cfg: DictConfig
    run_id: str | None
    label: str
    version: tuple[str, str] | None = None


def model_requirements() -> list[str]:
    """pip requirements of a logged model: MLflow and ``SERVING_DISTRIBUTIONS`` at the versions
    installed here (given, not inferred: MLflow's inference imports the model in a subprocess,
    5-15 s per model)."""
    from importlib.metadata import version

    names = ("mlflow", *SERVING_DISTRIBUTIONS)
    return [f"{name}=={version(name).split('+')[0]}" for name in names]


def _example_image() -> bytes:
    """A small PNG: the logged model's input example."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 32:] = 200
    return cv2.imencode(".png", image)[1].tobytes()


def log_model(cfg: DictConfig, run_id: str, checkpoint_dir: str, register: bool) -> str | None:
    """Log the checkpoint's model (module docstring) to the run, once: its weights and config
    travel inside the logged model (the optimizer's state stays in the run's Ray checkpoints,
    which resuming reads). With
    ``register`` the model becomes a new version of ``tracking.registered_model_name`` (the
    first version gets the alias ``champion``) and the version is returned; sweep trials only
    log theirs (``instancehmr promote`` registers the winner)."""
    import mlflow
    import pandas as pd
    from mlflow.models import Model, infer_signature
    from mlflow.tracking import MlflowClient

    state = load_training_state(checkpoint_dir)
    model = model_from_state(state, cfg, checkpoint_dir)
    body_file, regressor = body_files(cfg.body)
    example = pd.DataFrame({"image": [_example_image()]})
    (people,) = Predictor(model, BodyModel(body_file, regressor, cfg.body.num_betas), cfg)(
        [decode_photo(example["image"][0])]
    )
    output = [{"height": people.height, "width": people.width, "focal_length": people.focal_length,
               "people": people.records()}]  # fmt: skip
    name = cfg.tracking.registered_model_name
    with tempfile.TemporaryDirectory() as weights:
        weights_only = TrainingState(state.model, state.config, state.epoch, state.step)
        state_file = save_training_state(weights, weights_only)
        # Model.log is what mlflow.pyfunc.log_model calls; it also takes the run to log to, so
        # the run is not made active here (ending an active run would close the training run).
        info = Model.log(
            artifact_path=None,
            flavor=mlflow.pyfunc,
            name="model",
            python_model=str(SERVABLE),
            artifacts={
                "training_state": str(state_file),
                "body_model": str(body_file),
                "h36m_regressor": str(regressor),
            },
            code_paths=[str(Path(instancehmr.__file__).parent)],
            signature=infer_signature(example, output, SERVING_PARAMS),
            input_example=example,
            pip_requirements=model_requirements(),
            registered_model_name=name if register else None,
            run_id=run_id,
        )
    if not register:
        return None
    client = MlflowClient()
    version = str(info.registered_model_version)
    if CHAMPION not in client.get_registered_model(name).aliases:
        client.set_registered_model_alias(name, CHAMPION, version)
    return version


def _from_state_dir(
    directory: Path, source: str, run_id: str | None, overrides=(), version=None
) -> LoadedModel:
    state = load_training_state(directory)
    cfg = config_from_yaml(state.config, source, overrides)
    label = re.sub(r"[^A-Za-z0-9_.@-]+", "_", source).strip("_")
    return LoadedModel(model_from_state(state, cfg, source), cfg, run_id, label, version)


def _registered(client, reference: str):
    """The model version of a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` reference;
    ValueError listing the registered models, or the model's aliases."""
    from mlflow.exceptions import MlflowException

    name, _, selector = reference[len("models:/") :].partition("@")
    if not selector:
        name, _, number = name.partition("/")
    try:
        client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise ValueError(
            f"{reference}: no registered model '{name}'; registered: {known}"
        ) from None
    try:
        found = (client.get_model_version_by_alias(name, selector) if selector
                 else client.get_model_version(name, number))  # fmt: skip
    except MlflowException:
        aliases = sorted(client.get_registered_model(name).aliases)
        raise ValueError(
            f"{reference}: no such model version; aliases of '{name}': {aliases}"
        ) from None
    return found


def _logged_model_uri(run_id: str) -> str | None:
    """The URI of the newest model logged from a run, or None."""
    import mlflow

    runs = mlflow.get_run(run_id)
    logged = mlflow.search_logged_models(
        experiment_ids=[runs.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}'",
        order_by=[{"field_name": "creation_time", "ascending": False}],
        output_format="list",
    )
    return logged[0].model_uri if logged else None


def _download_state(run_id: str, model_uri: str | None, dst: str) -> Path:
    """The training state of a logged model (its ``artifacts/training_state.pt``), or, for
    models logged before it carried one, the run's ``checkpoint/training_state.pt``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if model_uri is not None and model_uri.startswith(LOGGED_MODEL_URI):
        with contextlib.suppress(MlflowException, OSError):
            location = mlflow.get_logged_model(model_uri[len("models:/") :]).artifact_location
            return Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"{location}/artifacts/{STATE_FILE}", dst_path=dst))  # fmt: skip
    return Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"checkpoint/{STATE_FILE}", dst_path=dst
        )
    )


def load_model(reference: str, overrides=()) -> LoadedModel:
    """The model and config behind ``reference``: a checkpoint folder (or its
    ``training_state.pt``), an MLflow run id (its newest logged model), ``models:/NAME@ALIAS``
    or ``models:/NAME/VERSION`` (the version's logged model; for versions logged before the
    model carried its state, the run's ``checkpoint/training_state.pt``, so every version ever
    registered loads); ``key=value`` overrides adjust the config, not the network's shape.
    FileNotFoundError or ValueError with what exists otherwise."""
    path = Path(reference)
    if path.exists():
        return _from_state_dir(path.parent if path.is_file() else path, reference, None, overrides)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    version = None
    if reference.startswith("models:/"):
        found = _registered(client, reference)
        run_id, version, model_uri = found.run_id, (found.name, str(found.version)), found.source
    elif re.fullmatch(r"[0-9a-f]{32}", reference):
        run_id = reference
        try:
            model_uri = _logged_model_uri(run_id)
        except MlflowException:
            raise FileNotFoundError(f"{reference}: no such MLflow run") from None
    else:
        raise FileNotFoundError(
            f"{reference}: not a checkpoint path, an MLflow run id or a models:/ URI"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = _download_state(run_id, model_uri, tmp)
        except (MlflowException, OSError):
            raise FileNotFoundError(
                f"{reference}: run {run_id} has no logged model with a training state "
                f"(nor a checkpoint/{STATE_FILE} artifact)"
            ) from None
        return _from_state_dir(local.parent, reference, run_id, overrides, version)
