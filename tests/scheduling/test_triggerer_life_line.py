"""A scheduler's triggerer child stops when its scheduler is gone, even one that died before the child looked."""

from __future__ import annotations

import os
import threading

from dagrunner.scheduling.triggerer_child import stop_when_orphaned


def test_a_parent_already_gone_stops_the_child_at_once() -> None:
    stopped = threading.Event()
    # the scheduler that started us is not our parent any more (here: a pid that is not ours to have)
    stop_when_orphaned(stopped.set, parent=os.getppid() + 1_000_000, every_s=0.01)
    assert stopped.wait(5.0)


def test_a_living_parent_keeps_the_child() -> None:
    stopped = threading.Event()
    stop_when_orphaned(stopped.set, parent=os.getppid(), every_s=0.1)  # (a daemon thread: it ends with pytest)
    assert not stopped.wait(0.3)
