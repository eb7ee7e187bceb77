"""The one bounded wait for tests that watch something they do not drive: another process, a file it
writes, a row it records. Tests that drive the scheduler themselves use a fake clock instead."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, what: str, timeout: float = 20.0, interval: float = 0.02) -> T:
    """Call `condition` until it returns something truthy and return that; fail after `timeout` seconds.

    The failure names `what` was awaited and the last value seen, so a timeout in CI says how far it got.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last seen: {value!r})")
        time.sleep(interval)
