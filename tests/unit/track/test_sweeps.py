import functools
import pickle

from instancehmr.sweep.trial import trial_config
from instancehmr.track.sweeps import SweepTracker


def test_the_tracker_pickles_for_resume_without_its_live_state():
    config_of = functools.partial(trial_config, {"": "name: q\n"}, "s")
    tracker = SweepTracker("s", "parent", "1", "sqlite:///x.db", config_of, {"c": "h"})
    tracker._checkpoints["t1"] = "/ckpt"
    tracker._modelled.add("t1")
    tracker._loggers["t1"] = lambda: None  # live state that cannot be pickled
    restored = pickle.loads(pickle.dumps(tracker))
    assert (restored.sweep, restored.parent_run_id, restored.config_of.args) == (
        "s",
        "parent",
        ({"": "name: q\n"}, "s"),
    )
    assert restored._loggers == {} and restored._checkpoints == {} and restored._modelled == set()


def test_trial_names_lead_with_row_and_seed():
    from instancehmr.track.sweeps import trial_description, trial_run_name

    assert trial_run_name("dim128", {"train.seed": 1}, "40d74_00004") == "dim128 s1"
    assert trial_run_name(None, {"optim.lr": 0.00031234, "train.batch_size": 8}, "a_1") == (
        "lr=0.000312 batch_size=8"
    )
    assert trial_run_name(None, {}, "a_00001") == "a_00001"
    assert trial_description("ablate-quickstart", "dim128", {"train.seed": 1}, "t_4") == (
        "Trial t_4 of sweep `ablate-quickstart`: row `dim128`, seed 1."
    )
