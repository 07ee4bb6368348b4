"""A checkpoint's model logged to its MLflow run: with a signature, its training state and
pip requirements, registered by ``instancehmr train`` (the first version becomes ``champion``)
and only logged by sweep trials (``instancehmr promote`` registers the winner)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from instancehmr.model import build_model
from instancehmr.model.checkpoint import load_model_state, load_training_state

#: Registry aliases: the model in use, and the one it replaced (``instancehmr promote``).
CHAMPION, PREVIOUS = "champion", "previous"

# MLflow, numpy and torch are imported inside the functions: importing this module stays light.


def model_requirements() -> list[str]:
    """pip requirements of a logged model: the pickled module needs this package and the torch
    it was saved with. Given, not inferred: MLflow's inference imports the model in a
    subprocess (5-15 s per model)."""
    import cloudpickle
    import numpy as np
    import torch

    from instancehmr import __version__

    return [
        f"instancehmr=={__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={np.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
    ]


def log_model(cfg: DictConfig, run_id: str, checkpoint_dir: str, register: bool) -> str | None:
    """Log the checkpoint's model with a signature and its training state to the run. With
    ``register`` the model becomes a new version of ``tracking.registered_model_name`` (the
    first version gets the alias ``champion``) and the version is returned; sweep trials only
    log theirs (``instancehmr promote`` registers the winner)."""
    import mlflow
    import numpy as np
    import torch
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    model = build_model(cfg)
    load_model_state(model, load_training_state(checkpoint_dir), checkpoint_dir)
    model.eval()
    example = np.zeros((1, 3, cfg.model.input_size, cfg.model.input_size), np.float32)
    with torch.no_grad():
        outputs = {k: v.numpy() for k, v in model(torch.from_numpy(example)).items()}
    name = cfg.tracking.registered_model_name
    info = mlflow.pytorch.log_model(
        model,
        name="model",
        signature=infer_signature(example, outputs),
        registered_model_name=name if register else None,
        run_id=run_id,
        serialization_format="pickle",  # the module itself, not a traced graph: decoding needs it
        pip_requirements=model_requirements(),
    )
    mlflow.log_artifact(
        str(Path(checkpoint_dir) / "training_state.pt"), artifact_path="checkpoint", run_id=run_id
    )
    if not register:
        return None
    client = MlflowClient()
    version = str(info.registered_model_version)
    if CHAMPION not in client.get_registered_model(name).aliases:
        client.set_registered_model_alias(name, CHAMPION, version)
    return version
