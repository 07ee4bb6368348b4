"""The logged model as MLflow serves it: a ``pyfunc`` model from code (this file, run by MLflow
when the model loads; nothing pickled is executed), wrapping the network and its decoding
(:class:`instancehmr.model.predictor.Predictor`).

Artifacts: ``training_state`` (the checkpoint, read with ``weights_only=True``),
``body_model`` and ``h36m_regressor`` (the SMPL files the model was trained with). The package
itself travels in the model's ``code`` folder (``code_paths``), so loading needs only its pip
requirements, not an installed ``instancehmr``.

Input: a DataFrame with a column ``image`` of encoded images (JPEG, PNG, BMP, WebP, TIFF):
bytes in Python; base64 strings in a JSON request, which MLflow's scoring server decodes for
the binary column. Params (optional, per request): ``fov`` (degrees, the camera translations
assume), ``vertices`` (add each person's 6890 vertices). Output: a list with one dict per image:
``height``, ``width``, ``focal_length`` and ``people`` (see ``ImagePeople.records``); an image
that does not decode gets ``error`` and no people.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import mlflow
from mlflow.pyfunc import PythonModel


def _image_bytes(value) -> bytes:
    """Bytes as given, or a base64 string decoded."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError("image is neither bytes nor a base64 string") from None


class ServableModel(PythonModel):
    """InstanceHMR as a pyfunc model (module docstring)."""

    def load_context(self, context) -> None:
        import torch

        from instancehmr.body.smpl import BodyModel
        from instancehmr.config import config_from_yaml
        from instancehmr.model.checkpoint import load_training_state, model_from_state

        state_dir = Path(context.artifacts["training_state"]).parent
        state = load_training_state(state_dir)
        self.cfg = config_from_yaml(state.config, "logged model")
        self.model = model_from_state(state, self.cfg, "logged model")
        self.body = BodyModel(
            context.artifacts["body_model"], context.artifacts["h36m_regressor"],
            self.cfg.body.num_betas,
        )  # fmt: skip
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def predict(self, context, model_input, params=None) -> list[dict]:
        from instancehmr.data.image import decode_photo
        from instancehmr.model.predictor import Predictor
        from instancehmr.track.models import SERVING_PARAMS

        params = {**SERVING_PARAMS, **(params or {})}
        predictor = Predictor(self.model, self.body, self.cfg, self.device, float(params["fov"]))
        results: list[dict] = []
        images, where = [], []
        for value in model_input["image"]:
            try:
                images.append(decode_photo(_image_bytes(value)))
                where.append(len(results))
                results.append({})
            except ValueError as err:
                results.append({"error": str(err), "people": []})
        for i, people in zip(where, predictor(images), strict=True):
            results[i] = {"height": people.height, "width": people.width,
                          "focal_length": people.focal_length,
                          "people": people.records(bool(params["vertices"]))}  # fmt: skip
        return results


mlflow.models.set_model(ServableModel())
