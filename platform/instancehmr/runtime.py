"""Starting Ray: in-process by default, or the cluster that ``RAY_ADDRESS`` (or ``address``) names.

The same command runs on a laptop and on a cluster; only this choice differs
(docs/design.md#laptop-and-cluster).
"""

from __future__ import annotations

import logging
import os

# Imported inside the functions that use them, to keep this module light: Ray.

# Custom resource of the nodes that host sweep trial drivers (Ray Tune trials that each launch a
# Ray Train run and hold no CPU): a local Ray has it, cluster.yaml gives it to the head node.
TRIAL_DRIVER_RESOURCE = "trial_driver"
TRIAL_DRIVER_SLOTS = 1000


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to Ray once per process; a local Ray uses ``num_cpus`` (default: all cores)."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local" starts a private Ray, never attaching to another cluster on this machine.
        ray.init(
            address="local",
            num_cpus=num_cpus,
            resources={TRIAL_DRIVER_RESOURCE: TRIAL_DRIVER_SLOTS},
            include_dashboard=False,
            **kwargs,
        )
