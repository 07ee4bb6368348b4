"""``instancehmr export MODEL --format onnx|torchscript``: the network for deployment, decoding
left to Python (``instancehmr.model.decode`` / ``model.predictor``).

The exported graph takes ``images`` (B, 3, S, S) float32, RGB in [0, 1] normalised with
ImageNet's mean and std (``model.network.to_model_input``), and returns the maps decoding reads:
``center_heatmap`` (B, 1, h, w) and ``joint_heatmap`` (B, 24, h, w) logits, ``param_map``
(B, P, h, w). ONNX through ``torch.onnx.export`` (the dynamo exporter, batch axis dynamic,
opset 18), TorchScript through ``torch.jit.trace``. After writing, the file is run on a random
batch and its maps compared with the PyTorch module's: the largest absolute difference is
reported and must stay within ``TOLERANCE``. ``export.json`` beside it gives the input size,
the normalisation, the output names and the resolved config (what decoding needs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from instancehmr.config import to_yaml
from instancehmr.model.network import IMAGENET_MEAN, IMAGENET_STD
from instancehmr.track.models import load_model

# Imported inside the functions that use them, to keep this module light: onnxruntime.

EXPORT_FORMATS = ("onnx", "torchscript")
OUTPUTS = ("center_heatmap", "joint_heatmap", "param_map")
#: Largest absolute difference allowed between the exported maps and PyTorch's (float32
#: kernels of two runtimes differ in summation order).
TOLERANCE = 1e-3


class MapsOnly(torch.nn.Module):
    """The network with the outputs of ``OUTPUTS`` as a tuple (exporters need fixed outputs)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(images)
        return tuple(out[name] for name in OUTPUTS)


@dataclass
class Exported:
    """Where the model went, and the largest difference of its maps from PyTorch's."""

    path: Path
    max_abs_diff: float


def _run_exported(path: Path, fmt: str, images: torch.Tensor) -> list[torch.Tensor]:
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [torch.from_numpy(m) for m in session.run(list(OUTPUTS), {"images": images.numpy()})]
    return list(torch.jit.load(str(path))(images))


def export(reference: str, fmt: str, out_dir: str | Path = "export", overrides=()) -> Exported:
    """Export the model ``reference`` (any reference ``eval`` takes) as ``fmt`` into ``out_dir``
    (module docstring). ValueError for an unknown format or maps beyond ``TOLERANCE``."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"--format {fmt}: unknown; known: {', '.join(EXPORT_FORMATS)}")
    loaded = load_model(reference, overrides)
    size = loaded.cfg.model.input_size
    network = MapsOnly(loaded.model).eval()
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("model.onnx" if fmt == "onnx" else "model.pt")
    with torch.no_grad():
        if fmt == "onnx":
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(
                network, (example,), input_names=["images"], output_names=list(OUTPUTS),
                dynamic_shapes={"images": {0: batch}}, dynamo=True, opset_version=18,
            )  # fmt: skip
            program.save(str(path))
        else:
            torch.jit.trace(network, example).save(str(path))
    check = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = network(check)
    got = _run_exported(path, fmt, check)
    diff = max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True))
    if diff > TOLERANCE:
        raise ValueError(f"{path}: exported maps differ from PyTorch's by {diff:.3g} > {TOLERANCE}")
    card = {"format": fmt, "file": path.name, "input": {"name": "images", "shape": ["B", 3, size, size],
            "rgb_scale": 1 / 255, "mean": IMAGENET_MEAN.flatten().tolist(),
            "std": IMAGENET_STD.flatten().tolist()}, "outputs": list(OUTPUTS),
            "max_abs_diff_vs_pytorch": diff, "config": to_yaml(loaded.cfg)}  # fmt: skip
    (out / "export.json").write_text(json.dumps(card, indent=1) + "\n")
    return Exported(path, diff)
