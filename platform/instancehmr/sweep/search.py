"""A sweep file's search in Ray Tune terms: the parameter space, the search algorithm and the
early-stopping scheduler.

A trial's Tune config is ``{"params": {config key: value}, "row": label}`` (``row`` only for
ablations). Results without the sweep's metric (training-step reports) are not acted on:
ASHA skips them by itself, :class:`EpochOptunaSearch` skips them for Optuna, and the driver
turns off Tune's check that every result carries the metric.
"""

from __future__ import annotations

from typing import Any

from instancehmr.sweep.spec import SweepSpec

# Imported inside the functions that use them, to keep this module light: Ray.

# The clock of early stopping: whole epochs trained, reported with every validation.
TIME_ATTR = "epochs_done"


def _domain(kind: str, args: list):
    from ray import tune

    if kind == "grid":
        return tune.grid_search(args)
    if kind == "choice":
        return tune.choice(args)
    if kind == "uniform":
        return tune.uniform(*args)
    if kind == "loguniform":
        return tune.loguniform(*args)
    return tune.randint(*args)


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's param_space: every key's domain under ``params``, the ablation rows under ``row``."""
    from ray import tune

    space: dict[str, Any] = {
        "params": {key: _domain(*next(iter(d.items()))) for key, d in spec.space.items()}
    }
    if spec.rows:
        space["row"] = tune.grid_search(list(spec.rows))
    return space


def search_algorithm(spec: SweepSpec):
    """None (Tune's variant generator: grid and random search) or Optuna's TPE."""
    if spec.algorithm != "optuna":
        return None
    from ray.tune.search.optuna import OptunaSearch

    class EpochOptunaSearch(OptunaSearch):
        """Optuna fed only the results that carry the metric (validation reports)."""

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if self.metric in result:
                super().on_trial_result(trial_id, result)

    return EpochOptunaSearch()  # metric and mode come from the TuneConfig


def scheduler(spec: SweepSpec):
    """ASHA on whole epochs, or None (every trial runs all its epochs)."""
    if spec.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=TIME_ATTR,  # metric and mode come from the TuneConfig
        grace_period=spec.scheduler.get("grace_period", 1),
        reduction_factor=spec.scheduler.get("reduction_factor", 2),
        max_t=10**6,  # trials end with their config's epochs, never cut by ASHA's horizon
    )
