"""What code made a cached artifact: a digest of a module's source and of every module of this
package (and of the module's own top-level package) it imports, directly or through others,
lazy imports included.

Cached artifacts (a corpus's shards, the synthetic body) are keyed on this digest, so any edit
to the code that makes them (a converter, the scene generator, the label code, the renderer, the
synthetic body) makes them again, instead of a version number someone has to remember to bump.
The digest is conservative: an edit that changes no output (a comment) also counts.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

PACKAGE = "instancehmr"


def _source(module: str) -> Path | None:
    """The source file of ``module``, or None when the name is not a module of this package (an
    attribute imported from one, say)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # "x.y is not a package": y is an attribute of x
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported(module: str, path: Path, packages: set[str]) -> set[str]:
    """Names of the modules of ``packages`` that ``module`` (its source at ``path``) imports by name
    (the ``__init__`` of a package they sit in counts only when imported by name: it declares,
    it does not make)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in packages)
    return found


@cache
def code_digest(module: str) -> str:
    """16 hex digits of SHA-256 over the source of ``module`` (a dotted name) and of every module
    of this package or of ``module``'s top-level package that it reaches through imports, in
    name order.

    Raises ModuleNotFoundError when ``module`` has no Python source."""
    start = _source(module)
    if start is None:
        raise ModuleNotFoundError(f"no Python source for module {module}")
    packages = {PACKAGE, module.split(".")[0]}
    sources: dict[str, Path] = {module: start}
    todo = [module]
    while todo:
        name = todo.pop()
        for other in _imported(name, sources[name], packages):
            if other not in sources and (path := _source(other)) is not None:
                sources[other] = path
                todo.append(other)
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name].read_bytes() + b"\0")
    return digest.hexdigest()[:16]
