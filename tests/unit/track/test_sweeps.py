import pickle

from instancehmr.track.sweeps import SweepTracker


def test_the_tracker_pickles_for_resume_without_its_live_state():
    tracker = SweepTracker("s", "parent", "1", "sqlite:///x.db", {"": "name: q\n"}, {"c": "h"})
    tracker._checkpoints["t1"] = "/ckpt"
    tracker._modelled.add("t1")
    tracker._loggers["t1"] = lambda: None  # live state that cannot be pickled
    restored = pickle.loads(pickle.dumps(tracker))
    assert (restored.sweep, restored.parent_run_id, restored.bases) == (
        "s",
        "parent",
        {"": "name: q\n"},
    )
    assert restored._loggers == {} and restored._checkpoints == {} and restored._modelled == set()
