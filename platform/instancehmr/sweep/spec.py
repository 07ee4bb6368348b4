"""Sweep files (``experiments/sweeps/*.yaml``): a base experiment, a search space over any config
keys, the search algorithm, the early-stopping scheduler, the metric, the trial budget.

```yaml
name: loss-weights            # the sweep's MLflow parent run and Ray Tune experiment
experiment: quickstart        # base experiment (file or bare name)
overrides: [train.epochs=2]   # fixed key=value overrides for every trial
metric: val/mpjpe
mode: min
algorithm: random             # grid | random | optuna
samples: 8                    # trials (grid: repeats of the whole grid)
max_concurrent_trials: 1
scheduler: {name: asha, grace_period: 1, reduction_factor: 2}   # or null: every trial runs out
space:                        # config key -> one domain
  loss.weights.cont: {loguniform: [5, 500]}
  model.embedding_dim: {choice: [32, 64, 128, 256]}
  train.seed: {grid: [0, 1]}
rows: ../ablations            # optional: ablation rows (a folder or a list of files)
```

Domains: ``grid`` / ``choice`` (lists of values), ``uniform`` / ``loguniform`` (two numbers),
``randint`` (two integers, high exclusive). ``rows`` turns the sweep into an ablation: each file
(path relative to the sweep file) is a row whose own keys (not its ``extends``) override the base
experiment, plus the row ``default`` (the base unchanged); every row runs every point of the
space (e.g. seeds). Every key, row and value a domain can produce is checked against the
experiment's schema before any trial starts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instancehmr.config import ConfigError, did_you_mean, load_config, read_yaml
from instancehmr.eval.benchmarks import BENCHMARKS
from instancehmr.eval.validation import check_validation_metric

# optuna (the optuna extra) is optional: imported where it is used.

ALGORITHMS = ("grid", "random", "optuna")
DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint")
FIELDS = (
    "name", "experiment", "overrides", "metric", "mode", "algorithm", "samples",
    "max_concurrent_trials", "scheduler", "space", "rows", "benchmark",
)  # fmt: skip
DEFAULT_ROW = "default"
SCHEDULER_FIELDS = ("name", "grace_period", "reduction_factor")


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    name: str
    experiment: str
    overrides: tuple[str, ...]
    metric: str
    mode: str
    algorithm: str
    samples: int
    max_concurrent_trials: int
    scheduler: dict[str, Any] | None
    space: dict[str, dict[str, list]]
    rows: dict[str, tuple[str, ...]] | None = None
    #: Benchmark every finished trial's model is evaluated on at the end (``instancehmr eval``):
    #: an ablation's seeded comparison reads it.
    benchmark: str | None = None

    @property
    def num_trials(self) -> int:
        """Trials the sweep runs: samples x every grid's size x rows (Tune's variant count)."""
        grids = math.prod(len(d["grid"]) for d in self.space.values() if "grid" in d)
        return self.samples * grids * len(self.rows or [None])

    def base_overrides(self, row: str | None = None) -> list[str]:
        """The key=value overrides every trial (of ``row``) shares: the fixed ones, the row's."""
        return [*self.overrides, *(self.rows[row] if row is not None else ())]

    def trial_overrides(self, params: dict[str, Any], row: str | None = None) -> list[str]:
        """The key=value overrides of one trial: the shared ones, then its sampled values."""
        return [*self.base_overrides(row), *param_overrides(params)]

    def corners(self) -> list[dict[str, Any]]:
        """Values each key can take at its extremes (domain ends, every listed value): what the
        schema check tries before any trial starts."""
        values = {}
        for key, domain in self.space.items():
            ((kind, args),) = domain.items()
            values[key] = (
                list(args)
                if kind in ("grid", "choice")
                else [args[0], args[1] - (kind == "randint")]
            )
        width = max(len(v) for v in values.values())
        return [{k: v[min(i, len(v) - 1)] for k, v in values.items()} for i in range(width)]


def param_overrides(params: dict[str, Any]) -> list[str]:
    """Sampled values as key=value overrides (values as JSON, which the config parser reads)."""
    return [f"{k}={json.dumps(v)}" for k, v in params.items()]


def _fail(path: Path, where: str, why: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {why}")


def _domain(path: Path, key: str, domain: Any) -> dict[str, list]:
    where = f"space.{key}"
    if not isinstance(domain, dict) or len(domain) != 1:
        raise _fail(path, where, f"one domain of {DOMAINS}, e.g. {{choice: [32, 64]}}")
    ((kind, args),) = domain.items()
    if kind not in DOMAINS:
        hint = did_you_mean(kind, DOMAINS)
        raise _fail(path, where, f"unknown domain '{kind}'{hint}; known: {DOMAINS}")
    if not isinstance(args, list) or not args:
        raise _fail(path, where, f"{kind} needs a non-empty list")
    if kind in ("uniform", "loguniform", "randint"):
        if (
            len(args) != 2
            or not all(isinstance(a, int | float) for a in args)
            or args[0] >= args[1]
        ):
            raise _fail(path, where, f"{kind} needs [low, high] numbers with low < high")
        if kind == "loguniform" and args[0] <= 0:
            raise _fail(path, where, "loguniform needs low > 0")
        if kind == "randint" and not all(isinstance(a, int) for a in args):
            raise _fail(path, where, "randint needs integers")
    return {kind: list(args)}


def _flatten(node: Any, prefix: str = "") -> list[str]:
    """A mapping of config keys as key=value overrides (nested keys dotted, values as JSON)."""
    if isinstance(node, dict) and node:
        return [item for k, v in node.items() for item in _flatten(v, f"{prefix}{k}.")]
    return [f"{prefix[:-1]}={json.dumps(node)}"]


def ablation_rows(path: Path, rows: Any) -> dict[str, tuple[str, ...]]:
    """Rows of an ablation: ``default`` (no overrides), then each file's own keys (not its
    ``extends`` or ``name``) as overrides, labelled by file stem. ``rows`` is a folder or a list
    of files, relative to the sweep file ``path``."""
    entries = [rows] if isinstance(rows, str) else rows
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        raise _fail(path, "rows", "a folder of ablation files or a list of files")
    files = []
    for entry in entries:
        target = path.parent / entry
        if target.is_dir():
            files += sorted(target.glob("*.yaml"))
        elif target.is_file():
            files.append(target)
        else:
            raise _fail(path, "rows", f"{target} is neither a folder nor a file")
    if not files:
        raise _fail(path, "rows", f"no .yaml files in {entries}")
    out: dict[str, tuple[str, ...]] = {DEFAULT_ROW: ()}
    for file in files:
        raw = read_yaml(file) or {}
        if not isinstance(raw, dict):
            raise _fail(path, "rows", f"{file} is not a mapping of config keys")
        if file.stem in out:
            raise _fail(path, "rows", f"two rows are called '{file.stem}'")
        own = {k: v for k, v in raw.items() if k not in ("extends", "name")}
        out[file.stem] = tuple(_flatten(own)) if own else ()
    return out


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file, including every key, row and extreme value of its search
    space against the base experiment's schema; a ConfigError naming the file and field
    otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep file not found")
    return sweep_from_dict(read_yaml(path) or {}, path)


def _algorithm(raw: dict, path: Path, space: dict[str, dict]) -> str:
    """The search algorithm, checked against the domains and rows it must serve."""
    algorithm = raw.get("algorithm", "random")
    if algorithm not in ALGORITHMS:
        raise _fail(path, "algorithm", f"'{algorithm}' is not one of {ALGORITHMS}")
    if algorithm == "grid" and any("grid" not in d for d in space.values()):
        raise _fail(path, "algorithm", "grid search needs every domain to be a grid")
    if algorithm == "optuna" and ("rows" in raw or any("grid" in d for d in space.values())):
        raise _fail(path, "algorithm", "Optuna samples its own points: no grid domains or rows")
    if algorithm == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise _fail(
                path, "algorithm", "optuna is not installed (pip install '.[optuna]')"
            ) from None
    return algorithm


def _scheduler(raw: dict, path: Path) -> dict | None:
    scheduler = raw.get("scheduler")
    if scheduler is not None:
        if not isinstance(scheduler, dict) or scheduler.get("name") != "asha":
            raise _fail(path, "scheduler", "null or {name: asha, grace_period, reduction_factor}")
        unknown = [k for k in scheduler if k not in SCHEDULER_FIELDS]
        if unknown:
            raise _fail(path, "scheduler", f"unknown keys {unknown}; known: {SCHEDULER_FIELDS}")
    return scheduler


def _benchmark(raw: dict, path: Path) -> str | None:
    benchmark = raw.get("benchmark")
    if benchmark is not None and (
        benchmark not in BENCHMARKS or BENCHMARKS[benchmark].kind != "mesh"
    ):
        known = sorted(b for b, v in BENCHMARKS.items() if v.kind == "mesh")
        raise _fail(path, "benchmark", f"'{benchmark}' is not a mesh benchmark; known: {known}")
    return benchmark


def _check_plain_fields(raw: dict, path: Path) -> None:
    """mode, the positive counts and the override list."""
    if raw.get("mode", "min") not in ("min", "max"):
        raise _fail(path, "mode", f"'{raw['mode']}' is not min or max")
    for field in ("samples", "max_concurrent_trials"):
        value = raw.get(field, 1)
        if not isinstance(value, int) or value < 1:
            raise _fail(path, field, f"a positive integer, got {value!r}")
    overrides = raw.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise _fail(path, "overrides", "a list of key=value strings")


def sweep_from_dict(raw: Any, path: Path) -> SweepSpec:
    """Check the fields of a sweep (read from ``path``, which names it in errors and anchors
    ``rows``); see :func:`load_sweep`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping of {FIELDS}")
    for key in raw:
        if key not in FIELDS:
            raise _fail(path, key, f"unknown field{did_you_mean(key, FIELDS)}")
    missing = [k for k in ("experiment", "metric", "space") if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing fields {missing}")
    space = raw["space"]
    if not isinstance(space, dict) or not space:
        raise _fail(path, "space", "the search space is empty: give at least one key and domain")
    space = {str(k): _domain(path, str(k), v) for k, v in space.items()}
    _check_plain_fields(raw, path)
    try:
        check_validation_metric(str(raw["metric"]))
    except ValueError as err:
        raise _fail(path, "metric", str(err)) from None
    spec = SweepSpec(
        path=path,
        name=str(raw.get("name") or path.stem),
        experiment=str(raw["experiment"]),
        overrides=tuple(raw.get("overrides") or []),
        metric=str(raw["metric"]),
        mode=raw.get("mode", "min"),
        algorithm=_algorithm(raw, path, space),
        samples=raw.get("samples", 1),
        max_concurrent_trials=raw.get("max_concurrent_trials", 1),
        scheduler=_scheduler(raw, path),
        space=space,
        rows=ablation_rows(path, raw["rows"]) if "rows" in raw else None,
        benchmark=_benchmark(raw, path),
    )
    for row in spec.rows or [None]:
        for params in spec.corners():
            try:
                load_config(spec.experiment, spec.trial_overrides(params, row))
            except ConfigError as err:
                where = "space" if row is None else f"rows: {row}"
                raise ConfigError(f"{path}: {where}: {err}") from None
    return spec
