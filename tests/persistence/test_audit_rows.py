"""`transition()` on the scheduler's plain rows (`TIRow`): found by id in one fenced UPDATE per old state."""

from __future__ import annotations

import pytest
from db_factories import ACTOR, T0, add_run_with_tasks
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from dagrunner.errors import IllegalTransitionError
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, TaskInstance
from dagrunner.states import TaskInstanceState


def test_rows_move_and_are_audited_and_queueing_counts_the_try(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as s:
        run, _ = add_run_with_tasks(s, ["a", "b"])
    with session_scope(migrated_engine) as s:
        rows = audit.load_ti_rows(s, [(run.dag_id, run.run_id)])[(run.dag_id, run.run_id)]
        moved = audit.transition(
            s, audit.TASK, rows, audit.Change(TaskInstanceState.QUEUED, T0, ACTOR, "slot free"), queue_job=7
        )
        changed = [m.subject for m in moved]
        assert {r.task_id for r in changed} == {"a", "b"}
        assert all(
            r.state == TaskInstanceState.QUEUED and r.try_number == 1 and r.queued_by_job_id == 7 for r in changed
        )
    with session_scope(migrated_engine, readonly=True) as s:
        stored = {t.task_id: t for t in s.scalars(select(TaskInstance))}
        rows = s.scalars(select(AuditLog).where(AuditLog.event == "task.state")).all()
    assert {t.state for t in stored.values()} == {TaskInstanceState.QUEUED}
    assert all(t.try_number == 1 and t.queued_at == T0 for t in stored.values())
    assert sorted((r.task_id, r.old_state, r.new_state, r.try_number) for r in rows) == [
        ("a", "none", "queued", 1), ("b", "none", "queued", 1),
    ]  # fmt: skip


def test_a_row_changed_meanwhile_is_fenced_out_and_not_audited(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as s:
        run, _ = add_run_with_tasks(s, ["a", "b"])
    with session_scope(migrated_engine) as s:
        rows = audit.load_ti_rows(s, [(run.dag_id, run.run_id)])[(run.dag_id, run.run_id)]
    with session_scope(migrated_engine) as s:  # another process moves "a" first (through the audit path)
        a = s.scalars(select(TaskInstance).where(TaskInstance.task_id == "a")).one()
        audit.transition(s, audit.TASK, [a], audit.Change(TaskInstanceState.SKIPPED, T0, ACTOR, "someone else"))
    with session_scope(migrated_engine) as s:
        changed = [
            m.subject
            for m in audit.transition(s, audit.TASK, rows, audit.Change(TaskInstanceState.SCHEDULED, T0, ACTOR, "late"))
        ]
    assert [r.task_id for r in changed] == ["b"]
    with session_scope(migrated_engine, readonly=True) as s:
        states = {t.task_id: t.state for t in s.scalars(select(TaskInstance))}
        late = s.scalars(select(AuditLog).where(AuditLog.reason == "late")).all()
    assert states == {"a": TaskInstanceState.SKIPPED, "b": TaskInstanceState.SCHEDULED}
    assert [r.task_id for r in late] == ["b"]


def test_forbidden_moves_change_nothing(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as s:
        run, _ = add_run_with_tasks(s, ["a"])
        s.execute(update(TaskInstance).values(state="none"))
    with session_scope(migrated_engine) as s:
        rows = audit.load_ti_rows(s, [(run.dag_id, run.run_id)])[(run.dag_id, run.run_id)]
        with pytest.raises(IllegalTransitionError, match="none -> running"):
            audit.transition(s, audit.TASK, rows, audit.Change(TaskInstanceState.RUNNING, T0, ACTOR, "no"))
