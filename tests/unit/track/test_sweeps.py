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
