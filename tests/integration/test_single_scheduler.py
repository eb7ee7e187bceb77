"""On SQLite one `dagrunner scheduler` per database file: a second is refused, naming the first; the lock
dies with its holder (kill -9), so the next scheduler starts. (Backfill beside a running scheduler on
SQLite: test_backfill_process.py.)"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from polling import wait_until

from .procs import project, run, scheduler_started, start

pytestmark = pytest.mark.slow


def test_a_second_scheduler_on_one_sqlite_file_is_refused_until_the_first_dies(tmp_path: Path, sqlite_url: str) -> None:
    root = project(tmp_path, examples=False)
    first = start(root, sqlite_url, "scheduler")
    try:
        wait_until(lambda: scheduler_started(sqlite_url), timeout=60, what="the first scheduler to start")
        second = run(root, sqlite_url, "scheduler", "--once", timeout=60)
        assert second.returncode != 0
        message = second.stdout + second.stderr
        assert "another scheduler already runs on this SQLite database" in message, message
        assert f"pid {first.pid} on host" in message and "since" in message, message
        assert "Traceback" not in message
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    third = run(root, sqlite_url, "scheduler", "--once", timeout=60)
    assert third.returncode == 0, third.stdout + third.stderr  # the lock died with the killed scheduler
