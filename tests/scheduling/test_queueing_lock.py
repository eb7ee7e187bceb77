"""On PostgreSQL, starting queued runs (max_active_runs) and queueing tries (pools, max_active_tasks) happen
under one advisory lock, so several schedulers together keep those limits. While another scheduler holds
the lock, a scheduler starts and queues nothing and comes back in a moment; then it goes on by the limits.

PostgreSQL only (SQLite serializes writers with BEGIN IMMEDIATE and takes no such lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from dagrunner.persistence import queries
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.schema import init_db
from dagrunner.scheduling.scheduler import QUEUEING_LOCK_RETRY_S

from .harness import Harness, make_harness
from .test_scheduler import _daily

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, busy_timeout=5.0)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def hp(tmp_path: Path, pg_url: str, pg_engine: Engine) -> Iterator[Harness]:
    yield from make_harness(tmp_path, pg_url, pg_engine)


def _running_runs(engine: Engine) -> int:
    from dagrunner.persistence.models import DagRun

    with session_scope(engine, readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(DagRun).where(DagRun.state == "running")) or 0)


def test_runs_wait_while_another_scheduler_holds_the_lock_then_keep_max_active_runs(hp: Harness) -> None:
    _daily(hp, max_active_runs=2)
    sched = hp.start()
    with session_scope(hp.engine) as other:  # another scheduler, in the middle of counting
        assert queries.try_lock_queueing(other)
        report = sched.tick(hp.clock.now())
        assert report.queueing_deferred and report.created_runs == 2
        assert _running_runs(hp.engine) == 0  # nothing started while the lock was held elsewhere
        assert sched.next_wakeup(hp.clock.now()) <= hp.clock.now() + timedelta(seconds=QUEUEING_LOCK_RETRY_S)
    hp.tick(settle=False)  # the lock is free again: runs start, within the limit
    assert _running_runs(hp.engine) == 2
