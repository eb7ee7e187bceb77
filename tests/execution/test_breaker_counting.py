"""A pool's circuit breaker counts the tries `finish_try` records, in the same transaction (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dagrunner.execution import recording
from dagrunner.execution.base import WorkItem
from dagrunner.execution.retries import RetryPolicy
from dagrunner.execution.runner import TryOutcome
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, Pool
from dagrunner.scheduling.pools import set_pool
from dagrunner.settings import PoolSpec
from dagrunner.states import BreakerState, TaskInstanceState

from .conftest import Project
from .helpers import ACTOR, RunSpec, create_run, queue_try

NOW = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
NO_RETRY = RetryPolicy(retries=0, retry_delay_s=60)
FAILED = TryOutcome.failed("ConnectionError: the service is down")
SUCCESS = TryOutcome(state="success")


@pytest.fixture
def run(project: Project) -> RunSpec:
    with session_scope(project.engine) as session:
        set_pool(session, PoolSpec("default_pool", breaker_failures=2, breaker_cooldown_s=60), actor=ACTOR, now=NOW)
    return create_run(project.engine, "svc", ["a", "b", "c", "d"], max_tries={"a": 1})


def _try(project: Project, run: RunSpec, task_id: str, outcome: TryOutcome, policy: RetryPolicy = NO_RETRY) -> str:
    item: WorkItem = queue_try(project.engine, run, task_id, "/dags/svc.py")
    with session_scope(project.engine) as session:
        assert recording.start_try(session, item, hostname="h", pid=1, log_path="/l", now=NOW, actor=ACTOR)
    with session_scope(project.engine) as session:
        return recording.finish_try(session, item, outcome, policy=policy, now=NOW, actor=ACTOR).value


def _pool(project: Project) -> Pool:
    with session_scope(project.engine, readonly=True) as session:
        return session.scalars(select(Pool).where(Pool.name == "default_pool")).one()


def _breaker_audit(project: Project) -> list[tuple[str | None, str | None, str | None]]:
    with session_scope(project.engine, readonly=True) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.event == "pool.breaker").order_by(AuditLog.id))
        return [(r.old_state, r.new_state, r.actor) for r in rows]


def test_consecutive_failures_open_the_breaker_in_the_same_transaction(project: Project, run: RunSpec) -> None:
    assert _try(project, run, "b", FAILED) == "failed"
    pool = _pool(project)
    assert (pool.breaker_state, pool.consecutive_failures, pool.opened_at) == (BreakerState.CLOSED, 1, None)
    assert _try(project, run, "c", FAILED) == "failed"
    pool = _pool(project)
    assert (pool.breaker_state, pool.consecutive_failures, pool.opened_at) == (BreakerState.OPEN, 2, NOW)
    assert _breaker_audit(project) == [("closed", "open", ACTOR)]


def test_a_try_up_for_retry_counts_as_failed_and_a_success_resets_the_count(project: Project, run: RunSpec) -> None:
    assert _try(project, run, "a", FAILED, RetryPolicy(retries=1, retry_delay_s=60)) == "up_for_retry"
    assert _pool(project).consecutive_failures == 1
    assert _try(project, run, "b", SUCCESS) == "success"
    assert _pool(project).consecutive_failures == 0
    assert _try(project, run, "c", FAILED) == "failed"
    pool = _pool(project)
    assert (pool.breaker_state, pool.consecutive_failures) == (BreakerState.CLOSED, 1)  # not consecutive: still closed
    assert _breaker_audit(project) == []


def test_a_skipped_try_counts_neither_way(project: Project, run: RunSpec) -> None:
    _try(project, run, "a", FAILED)
    assert _try(project, run, "b", TryOutcome(state="skipped")) == "skipped"
    assert _pool(project).consecutive_failures == 1


def test_a_fenced_out_try_is_not_counted(project: Project, run: RunSpec) -> None:
    from dagrunner.persistence import audit

    from .helpers import get_ti

    item = queue_try(project.engine, run, "b", "/dags/svc.py")
    with session_scope(project.engine) as session:
        recording.start_try(session, item, hostname="h", pid=1, log_path="/l", now=NOW, actor=ACTOR)
    with session_scope(project.engine) as session:  # a person marks it success while it runs
        ti = get_ti(session, item.key)
        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.SUCCESS, NOW, ACTOR, "marked"))
    with session_scope(project.engine) as session:
        state = recording.finish_try(session, item, FAILED, policy=NO_RETRY, now=NOW, actor=ACTOR)
    assert state == TaskInstanceState.SUCCESS
    assert _pool(project).consecutive_failures == 0


def test_the_probe_closes_or_reopens_the_breaker(project: Project, run: RunSpec) -> None:
    from dagrunner.persistence import breakers

    _try(project, run, "a", FAILED)
    _try(project, run, "b", FAILED)
    with session_scope(project.engine) as session:
        row = breakers.breaker_of(session, "default_pool")
        assert row is not None and breakers.probe(session, row, label="c", actor="sched", now=NOW)
    _try(project, run, "c", FAILED)  # the probe fails: open again, a new cool-down
    assert _pool(project).breaker_state == BreakerState.OPEN
    with session_scope(project.engine) as session:
        row = breakers.breaker_of(session, "default_pool")
        assert row is not None and breakers.probe(session, row, label="d", actor="sched", now=NOW)
    _try(project, run, "d", SUCCESS)  # the probe succeeds: closed, count 0
    pool = _pool(project)
    assert (pool.breaker_state, pool.consecutive_failures, pool.opened_at) == (BreakerState.CLOSED, 0, None)
    assert [(old, new) for old, new, _ in _breaker_audit(project)] == [
        ("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"), ("half_open", "closed"),
    ]  # fmt: skip


def test_a_pool_without_a_breaker_is_not_counted(project: Project) -> None:
    run = create_run(project.engine, "plain", ["a"])
    _try(project, run, "a", FAILED)
    pool = _pool(project)
    assert (pool.breaker_failures, pool.consecutive_failures) == (None, 0)
