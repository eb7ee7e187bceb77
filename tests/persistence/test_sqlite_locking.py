"""SQLite under several processes: writers wait for the busy timeout, then fail with a helpful error.

Every lock here is held by a real second process, because that is the case that matters (a scheduler
beside a backfill beside a CLI command).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from dagrunner.errors import DatabaseLockedError
from dagrunner.persistence import audit
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import Pool
from dagrunner.persistence.schema import check_db, init_db

REPO = Path(__file__).resolve().parents[2]

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE pool SET slots = 200 WHERE name = 'default_pool'")
print("locked", flush=True)
hold = float(sys.argv[2])
if hold < 0:
    sys.stdin.readline()  # hold until the test closes our stdin
else:
    time.sleep(hold)
conn.execute("COMMIT")
"""


@pytest.fixture
def db(sqlite_url: str) -> Iterator[tuple[str, Path]]:
    engine = make_engine(sqlite_url)
    init_db(engine)
    engine.dispose()
    yield sqlite_url, Path(sqlite_url.removeprefix("sqlite:///"))


@contextmanager
def lock_held(path: Path, hold: float = -1) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the write lock; `hold` seconds, or (-1) until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(hold)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=30)


def slots(engine: Engine) -> int:
    with session_scope(engine, readonly=True) as session:
        return session.scalars(select(Pool.slots).where(Pool.name == "default_pool")).one()


def test_a_write_lock_held_past_the_busy_timeout_gives_a_helpful_error(db: tuple[str, Path]) -> None:
    url, path = db
    engine = make_engine(url, busy_timeout=0.3)
    try:
        with lock_held(path):
            started = time.monotonic()
            with pytest.raises(DatabaseLockedError) as caught, session_scope(engine) as session:
                audit.record_event(session, "test.event", actor="me", when=datetime(2026, 1, 1, tzinfo=UTC))
            waited = time.monotonic() - started
    finally:
        engine.dispose()
    message = str(caught.value)
    assert str(path) in message
    assert "another process" in message
    assert "busy timeout (0.3s)" in message
    assert "sqlite_busy_timeout" in message
    assert waited >= 0.25  # it waited for the lock instead of failing at once


def test_readers_are_not_blocked_by_a_writer(db: tuple[str, Path]) -> None:
    url, path = db
    engine = make_engine(url, busy_timeout=0.3)
    try:
        with lock_held(path):
            assert slots(engine) == 128  # WAL: the last committed value, no waiting
            assert check_db(engine).is_current  # every command's startup check is a reader too
    finally:
        engine.dispose()


def test_a_writer_waits_for_a_lock_released_within_the_busy_timeout(db: tuple[str, Path]) -> None:
    """Read-then-write must see the other process's commit, not fail on a stale snapshot."""
    url, path = db
    engine = make_engine(url, busy_timeout=10)
    try:
        with lock_held(path, hold=0.5), session_scope(engine) as session:
            pool = session.scalars(select(Pool).where(Pool.name == "default_pool")).one()
            pool.slots += 1  # a deferred transaction would read 128 here and then fail to write
        assert slots(engine) == 201
    finally:
        engine.dispose()


WORKER = """
import sys
from sqlalchemy import select
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import Pool
engine = make_engine(sys.argv[1], busy_timeout=30)
for _ in range(int(sys.argv[2])):
    with session_scope(engine) as session:
        pool = session.scalars(select(Pool).where(Pool.name == "default_pool")).one()
        pool.slots += 1
"""


def test_concurrent_read_modify_write_from_several_processes_loses_nothing(db: tuple[str, Path]) -> None:
    url, _ = db
    processes, increments = 4, 25
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), url, str(increments)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    errors = [w.communicate(timeout=120)[1] for w in workers]
    assert [w.returncode for w in workers] == [0] * processes, errors
    engine = make_engine(url)
    try:
        assert slots(engine) == 128 + processes * increments
    finally:
        engine.dispose()
