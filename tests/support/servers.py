"""Local servers the end-to-end tests start (``mlflow models serve``, ``mlflow ui``): a free
port and waiting until one answers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(
    url: str, server: subprocess.Popen, output: Callable[[], str], timeout: float = 120.0
) -> None:
    """Return once ``url`` answers; AssertionError with the server's ``output()`` when it
    exits first or ``timeout`` seconds pass (the server is killed then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                why = f"{url} did not answer in {timeout:g} s:\n{output()[-3000:]}"
                raise AssertionError(why) from None
            time.sleep(0.5)
