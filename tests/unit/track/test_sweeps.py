import pickle

from instancehmr.track.sweeps import SweepTracker, error_message


def test_the_error_line_is_the_exception_not_the_traceback_tail():
    text = (
        "Failure # 1 (occurred at 2026-11-25)\n"
        "ray.exceptions.RayTaskError(TrainingFailedError): ray::run_trial()\n"
        '  File "loop.py", line 90, in should_skip\n'
        "\x1b[36m(RayTrainWorker pid=9)\x1b[0m instancehmr.train.loop.NonFiniteLossError: "
        "1 non-finite losses in a row at step 3\n"
        "\n"
    )
    assert error_message(text) == "NonFiniteLossError: 1 non-finite losses in a row at step 3"
    assert error_message("KeyboardInterrupt\n") == "KeyboardInterrupt"
    assert error_message("no exception named\nlast words\n") == "last words"
    assert error_message("") == "unknown error"


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
