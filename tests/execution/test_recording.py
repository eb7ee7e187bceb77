"""`execution.recording` on both databases: fenced writes, lost tries, heartbeats, XComs, skips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dagrunner.execution import recording
from dagrunner.execution.base import TaskKey, WorkItem
from dagrunner.execution.retries import RetryPolicy
from dagrunner.execution.runner import TryOutcome
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.states import TaskInstanceState

from .conftest import Project
from .helpers import (
    ACTOR,
    RunSpec,
    add_mapped_instances,
    audit_of,
    create_run,
    get_ti,
    queue_try,
    state_path,
    ti_row,
    tries_of,
    xcoms_of,
)

NOW = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
RETRY = RetryPolicy(retries=1, retry_delay_s=60)


@pytest.fixture
def run(project: Project) -> RunSpec:
    return create_run(project.engine, "rec", ["a", "b", "c", "d"], max_tries={"a": 1})


def _start(project: Project, item: WorkItem, now: datetime = NOW) -> bool:
    with session_scope(project.engine) as session:
        started = recording.start_try(
            session, item, hostname="host", pid=4242, log_path="/logs/x.log", now=now, actor=ACTOR
        )
        return started is not None


def _finish(project: Project, item: WorkItem, outcome: TryOutcome, policy: RetryPolicy = RETRY) -> TaskInstanceState:
    with session_scope(project.engine) as session:
        return recording.finish_try(session, item, outcome, policy=policy, now=NOW, actor=ACTOR)


def _mark(project: Project, key: TaskKey, state: TaskInstanceState) -> None:
    with session_scope(project.engine) as session:
        audit.transition(session, audit.TASK, [get_ti(session, key)], audit.Change(state, NOW, ACTOR, "test mark"))


def test_start_then_finish_is_one_audited_closed_try(project: Project, run: RunSpec) -> None:
    item = queue_try(project.engine, run, "b", "/dags/rec.py")
    assert _start(project, item, NOW - timedelta(seconds=5))
    ti = ti_row(project.engine, item.key)
    assert (ti.state, ti.hostname, ti.pid, ti.last_heartbeat) == (
        TaskInstanceState.RUNNING,
        "host",
        4242,
        NOW - timedelta(seconds=5),
    )
    assert not _start(project, item), "a second start of the same try is fenced out"
    assert (
        _finish(project, item, TryOutcome(state="success", exit_code=0, xcoms={"k": {"v": [1]}}))
        == TaskInstanceState.SUCCESS
    )
    (row,) = tries_of(project.engine, item.key)
    assert (row.state, row.start_date, row.end_date, row.exit_code) == (
        TaskInstanceState.SUCCESS,
        NOW - timedelta(seconds=5),
        NOW,
        0,
    )
    assert row.log_path == "/logs/x.log"
    assert xcoms_of(project.engine, item.key) == {"k": {"v": [1]}}
    assert state_path(project.engine, item.key) == [("none", "queued"), ("queued", "running"), ("running", "success")]


def test_retry_rule_counts_tries_against_max_tries(project: Project, run: RunSpec) -> None:
    key = TaskKey("rec", run.run_id, "a")  # max_tries 1: two tries in all
    first = queue_try(project.engine, run, "a", "/dags/rec.py")
    _start(project, first)
    assert _finish(project, first, TryOutcome.failed("E: x")) == TaskInstanceState.UP_FOR_RETRY
    assert ti_row(project.engine, key).next_try_at == NOW + timedelta(seconds=60)
    second = queue_try(project.engine, run, "a", "/dags/rec.py")
    _start(project, second)
    assert _finish(project, second, TryOutcome.failed("E: y")) == TaskInstanceState.FAILED
    assert recording.final_state("failed", False, 1, 5, RetryPolicy(retries=0)) == TaskInstanceState.FAILED
    assert recording.final_state("failed", True, 1, 5, RetryPolicy(retries=5)) == TaskInstanceState.FAILED


def test_outcome_of_an_instance_changed_meanwhile_is_not_recorded(project: Project, run: RunSpec) -> None:
    item = queue_try(project.engine, run, "b", "/dags/rec.py")
    _start(project, item)
    _mark(project, item.key, TaskInstanceState.FAILED)  # a user marked it failed while it ran
    state = _finish(project, item, TryOutcome(state="success", xcoms={"k": 1}))
    assert state == TaskInstanceState.FAILED
    assert ti_row(project.engine, item.key).state == TaskInstanceState.FAILED
    assert xcoms_of(project.engine, item.key) == {}
    (row,) = tries_of(project.engine, item.key)
    assert row.end_date == NOW, "the try itself did end: its row is closed once"


def test_a_later_try_replaces_the_xcoms_and_a_failure_leaves_none(project: Project, run: RunSpec) -> None:
    first = queue_try(project.engine, run, "b", "/dags/rec.py")
    _start(project, first)
    _finish(project, first, TryOutcome(state="success", xcoms={"a": 1}))
    _mark(project, first.key, TaskInstanceState.NONE)  # cleared
    second = queue_try(project.engine, run, "b", "/dags/rec.py")
    _start(project, second)
    _finish(project, second, TryOutcome(state="success", xcoms={"b": 2}))
    assert xcoms_of(project.engine, first.key) == {"b": 2}
    _mark(project, first.key, TaskInstanceState.NONE)
    third = queue_try(project.engine, run, "b", "/dags/rec.py")
    _start(project, third)
    _finish(project, third, TryOutcome.failed("E: no"), RetryPolicy.none())
    assert xcoms_of(project.engine, first.key) == {}


def test_branch_skips_reach_every_map_index_but_only_unstarted_instances(project: Project, run: RunSpec) -> None:
    add_mapped_instances(project.engine, run, "c", 3)
    d = queue_try(project.engine, run, "d", "/dags/rec.py")  # already queued: left alone
    item = queue_try(project.engine, run, "b", "/dags/rec.py")
    _start(project, item)
    _finish(project, item, TryOutcome(state="success", skip_task_ids=("c", "d")))
    states = {i: ti_row(project.engine, TaskKey("rec", run.run_id, "c", i)).state for i in range(3)}
    assert states == {0: TaskInstanceState.SKIPPED, 1: TaskInstanceState.SKIPPED, 2: TaskInstanceState.SKIPPED}
    assert ti_row(project.engine, d.key).state == TaskInstanceState.QUEUED
    reasons = {row.reason for row in audit_of(project.engine, TaskKey("rec", run.run_id, "c"), "task.state")}
    assert reasons == {"skipped by branch b"}


def test_callback_errors_are_audited_without_a_state_change(project: Project, run: RunSpec) -> None:
    item = queue_try(project.engine, run, "b", "/dags/rec.py")
    _start(project, item)
    _finish(project, item, TryOutcome(state="success", callback_errors=("on_execute_callback f: E: x",)))
    (row,) = audit_of(project.engine, item.key, "task.callback_error")
    assert (row.reason, row.try_number, row.old_state, row.new_state) == ("on_execute_callback f: E: x", 1, None, None)
    assert ti_row(project.engine, item.key).state == TaskInstanceState.SUCCESS


def test_a_lost_try_that_never_started_goes_back_without_using_a_try(project: Project, run: RunSpec) -> None:
    """Issue #10 item 11: its start was never recorded (the worker died, or gave up on a database
    outage), so it is queued again later and its retries are all still there."""
    item = queue_try(project.engine, run, "a", "/dags/rec.py")
    before = ti_row(project.engine, item.key).max_tries
    with session_scope(project.engine) as session:
        state = recording.fail_lost_try(session, item.key, 1, reason="worker died", policy=RETRY, now=NOW, actor=ACTOR)
    assert state == TaskInstanceState.SCHEDULED
    ti = ti_row(project.engine, item.key)
    assert (ti.state, ti.try_number, ti.max_tries) == (TaskInstanceState.SCHEDULED, 1, before + 1)
    assert tries_of(project.engine, item.key) == []
    [row] = audit_of(project.engine, item.key, "task.state")[-1:]
    assert row.reason.startswith("worker died; it never started") and row.detail == {"unstarted": True}


def test_a_lost_running_try_fails_and_closes_its_row_once(project: Project, run: RunSpec) -> None:
    item = queue_try(project.engine, run, "b", "/dags/rec.py")
    _start(project, item)
    with session_scope(project.engine) as session:
        assert recording.fail_lost_try(session, item.key, 1, reason="zombie", policy=RETRY, now=NOW, actor=ACTOR) == (
            TaskInstanceState.FAILED
        )
    with session_scope(project.engine) as session:  # a second report of the same loss changes nothing
        assert recording.fail_lost_try(session, item.key, 1, reason="again", policy=RETRY, now=NOW, actor=ACTOR) is None
    (row,) = tries_of(project.engine, item.key)
    assert (row.state, row.error, row.end_date) == (TaskInstanceState.FAILED, "zombie", NOW)
    assert (
        _finish(project, item, TryOutcome(state="success")) == TaskInstanceState.FAILED
    )  # the worker came back too late
    assert tries_of(project.engine, item.key)[0].error == "zombie"


def test_heartbeat_touches_only_a_running_try(project: Project, run: RunSpec) -> None:
    item = queue_try(project.engine, run, "b", "/dags/rec.py")
    with session_scope(project.engine) as session:
        assert not recording.heartbeat(session, item.key, 1, NOW)
    _start(project, item, NOW)
    later = NOW + timedelta(seconds=5)
    with session_scope(project.engine) as session:
        assert recording.heartbeat(session, item.key, 1, later)
        assert not recording.heartbeat(session, item.key, 2, later + timedelta(seconds=5))
    assert ti_row(project.engine, item.key).last_heartbeat == later
    assert len(audit_of(project.engine, item.key, "task.state")) == 2  # queued, running: beats are not audited
