from instancehmr.track.runs import error_message


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
