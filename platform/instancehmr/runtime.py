"""Starting Ray: in-process by default, or the cluster that ``RAY_ADDRESS`` (or ``address``) names,
and a console that shows the progress lines and real warnings.

The same command runs on a laptop and on a cluster; only this choice differs
(docs/design.md#laptop-and-cluster). A local Ray starts with its dashboard (its URL is printed). The
console: Ray's workers write to their log files in the Ray session (not to the console; an error
in a worker still reaches the driver as the exception it raised), Ray Data logs INFO to its
``ray-data.log`` only, MLflow logs WARNING and up, and Python warnings of this process go to
``LOG_FILE`` (:func:`quiet_console`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

# Imported inside the functions that use them, to keep this module light: Ray.

# Custom resource of the nodes that host sweep trial drivers (Ray Tune trials that each launch a
# Ray Train run and hold no CPU): a local Ray has it, cluster.yaml gives it to the head node.
TRIAL_DRIVER_RESOURCE = "trial_driver"
TRIAL_DRIVER_SLOTS = 1000
#: Ray Data's logging config with a quiet console (``RAY_DATA_LOGGING_CONFIG``).
RAY_DATA_LOGGING = Path(__file__).with_name("ray_data_logging.yaml")


def log_file() -> Path:
    """Where this machine's library warnings go: ``$INSTANCEHMR_CACHE/logs/warnings.log``, else
    ``~/.cache/instancehmr/logs/warnings.log``."""
    root = os.environ.get("INSTANCEHMR_CACHE") or Path.home() / ".cache" / "instancehmr"
    return Path(root) / "logs" / "warnings.log"


def quiet_console() -> Path:
    """Keep the console to progress lines and real warnings (module docstring): Python warnings
    to :func:`log_file`, MLflow's INFO off, no artifact download bars, Ray Data's quiet logging
    config for this process and the Ray workers it starts. Returns the log file."""
    path = log_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers[:] = [logging.FileHandler(path)]
    warnings_logger.propagate = False
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when MLflow is imported
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"])
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", str(RAY_DATA_LOGGING))
    # A sweep trial's last result logs its model to MLflow (about 1 s, above 5 s on a loaded
    # machine): Tune's "slow callback" warning at its default 0.5 s (read when Ray Tune is
    # imported) would print four lines for what is expected work.
    os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "60")
    return path


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to Ray once per process; a local Ray uses ``num_cpus`` (default: all cores)."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    env = {"RAY_DATA_LOGGING_CONFIG": os.environ.get("RAY_DATA_LOGGING_CONFIG", "")}
    kwargs: dict = {
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {k: v for k, v in env.items() if v}},
    }
    if address:
        context = ray.init(address=address, **kwargs)
    else:
        # "local" starts a private Ray, never attaching to another cluster on this machine.
        context = ray.init(
            address="local",
            num_cpus=num_cpus,
            resources={TRIAL_DRIVER_RESOURCE: TRIAL_DRIVER_SLOTS},
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            **kwargs,
        )
    if context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}  (worker logs: "
              "/tmp/ray/session_latest/logs on each node)", flush=True)  # fmt: skip


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM (``kill``, a scheduler's preemption)
    raises KeyboardInterrupt as Ctrl+C does, so what the block started is closed as interrupted
    instead of the process vanishing mid-write. Elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
