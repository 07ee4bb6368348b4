from pathlib import Path

import pytest
import yaml

from instancehmr.sweep.search import TIME_ATTR, param_space, scheduler, search_algorithm
from instancehmr.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def spec(tmp_path, monkeypatch):
    """Sweep files on the quickstart experiment (bare names resolve from the repository)."""
    monkeypatch.chdir(REPO)

    def make(**changes):
        raw = {
            "experiment": "quickstart",
            "metric": "val/mpjpe",
            "algorithm": "random",
            "space": {
                "loss.weights.cont": {"loguniform": [5, 500]},
                "optim.lr": {"uniform": [1e-4, 1e-3]},
                "model.embedding_dim": {"choice": [32, 64]},
                "train.seed": {"randint": [0, 3]},
            },
            **changes,
        }
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_sweep(path)

    return make


def test_every_domain_becomes_its_tune_domain(spec):
    from ray.tune.search.sample import Categorical, Float, Integer

    space = param_space(spec())["params"]
    cont, lr, dim, seed = (space[k] for k in ("loss.weights.cont", "optim.lr",
                                              "model.embedding_dim", "train.seed"))  # fmt: skip
    assert isinstance(cont, Float) and (cont.lower, cont.upper) == (5, 500)
    assert isinstance(cont.sampler, Float._LogUniform)
    assert isinstance(lr, Float) and not isinstance(lr.sampler, Float._LogUniform)
    assert isinstance(dim, Categorical) and dim.categories == [32, 64]
    assert isinstance(seed, Integer) and (seed.lower, seed.upper) == (0, 3)
    assert search_algorithm(spec()) is None and scheduler(spec()) is None


def test_grid_rows_asha_and_optuna(spec, tmp_path):
    (tmp_path / "small.yaml").write_text("model: {embedding_dim: 8}\n")
    grid = spec(algorithm="grid", rows=["small.yaml"], space={"train.seed": {"grid": [0, 1]}})
    space = param_space(grid)
    assert space["params"]["train.seed"] == {"grid_search": [0, 1]}
    assert space["row"] == {"grid_search": ["default", "small"]}

    asha = scheduler(spec(scheduler={"name": "asha", "grace_period": 2, "reduction_factor": 3}))
    assert asha._time_attr == TIME_ATTR
    assert [m for m, _ in asha._brackets[0]._rungs][-3:] == [18, 6, 2]  # epochs, x3 from 2

    optuna = search_algorithm(spec(algorithm="optuna"))
    optuna.set_search_properties("val/mpjpe", "min", param_space(spec(algorithm="optuna")))
    optuna.suggest("t1")
    optuna.on_trial_result("t1", {"step": 10, "train/total": 3.0})  # a training report: ignored
    optuna.on_trial_result("t1", {"val/mpjpe": 250.0, "training_iteration": 2})
    optuna.on_trial_complete("t1", {"val/mpjpe": 240.0, "training_iteration": 3})
    (trial,) = optuna._ot_study.trials
    assert trial.value == 240.0 and trial.intermediate_values == {2: 250.0}
