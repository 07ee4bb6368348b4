"""The package graph points one way: every import of ``instancehmr`` code (lazy ones included)
goes from a package to a package of a lower layer, so no two packages import each other."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "platform" / "instancehmr"

# Lowest first. A package may import packages of lower layers only (docs/design.md#packages).
LAYERS = [
    {
        "atomic",
        "config",
        "geometry",
        "provenance",
        "runtime",
    },  # files, config, maths, code keys, Ray
    {"body"},  # the SMPL body, joint sets, the synthetic body
    {"model", "render"},  # the network and its decoding; drawing meshes
    {"data", "losses"},  # records, corpora, shards, the pipeline; the objective
    {"track"},  # MLflow runs, relay, sweep runs, logged and registered models
    {"eval", "infer"},  # metrics, protocols, benchmarks, validation, the eval runner; predict
    {"train"},  # the worker loop and the Ray Train launch
    {"sweep", "bench"},  # Tune sweeps and ablations; speed benchmarks
    {"cli"},  # the commands: imported by nothing
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports() -> list[tuple[str, str, str]]:
    """(importing package, imported package, importing file) for every instancehmr import."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "instancehmr" and len(parts) > 1:
                    found.append((package_of(path), parts[1], str(path.relative_to(PACKAGE))))
    return found


def test_every_package_has_a_layer():
    packages = {package_of(p) for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"}
    assert packages - LAYER.keys() == set(), "place new packages in LAYERS"


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_imports_go_to_lower_layers_only(layer):
    wrong = [
        f"{file} imports instancehmr.{target}"
        for source, target, file in imports()
        if LAYER[source] == layer and source != target and LAYER[target] >= layer
    ]
    assert wrong == []
