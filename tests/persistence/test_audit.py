"""Every state change goes through the gate in `audit` and leaves an audit row in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import product

import pytest
from db_factories import ACTOR, T0, add_dag, add_run_with_tasks, new_run, new_ti
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dagrunner.errors import IllegalTransitionError, NotFoundError, PersistenceError
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, Dag, DagRun, TaskInstance
from dagrunner.persistence.queries import audit_rows, get_run, task_instances_for_run
from dagrunner.states import RUN_TRANSITIONS, TASK_TRANSITIONS, DagRunState, TaskInstanceState

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def audit_for(session: Session, event: str, **where: object) -> list[AuditLog]:
    query = select(AuditLog).where(AuditLog.event == event).order_by(AuditLog.id)
    for column, value in where.items():
        query = query.where(getattr(AuditLog, column) == value)
    return list(session.scalars(query))


# --- the gate, table-driven over states.TASK_TRANSITIONS / RUN_TRANSITIONS --------------------------------


def test_every_task_transition_is_decided_by_the_table(migrated_engine: Engine) -> None:
    pairs = list(product(TaskInstanceState, repeat=2))
    wrong: list[str] = []
    with session_scope(migrated_engine) as session:
        run = new_run()
        tis = {(old, new): new_ti(run, f"{old}__{new}", state=old) for old, new in pairs}
        audit.record_created(session, [run, *tis.values()], actor=ACTOR, reason="setup", when=NOW)
        for (old, new), ti in tis.items():
            allowed = new in TASK_TRANSITIONS[old]
            try:
                audit.transition(session, audit.TASK, [ti], audit.Change(new, NOW, ACTOR, "table"))
            except IllegalTransitionError as exc:
                if allowed or ti.task_id not in str(exc) or f"{old} -> {new}" not in str(exc):
                    wrong.append(f"{old} -> {new}: refused ({exc})")
            else:
                if not allowed:
                    wrong.append(f"{old} -> {new}: allowed")

    with session_scope(migrated_engine, readonly=True) as session:
        stored = {ti.task_id: ti.state for ti in task_instances_for_run(session, run.dag_id, run.run_id)}
        rows = {row.task_id: row for row in audit_for(session, "task.state")}
    for old, new in pairs:
        allowed = new in TASK_TRANSITIONS[old]
        task_id = f"{old}__{new}"
        if stored[task_id] != (new if allowed else old):
            wrong.append(f"{old} -> {new}: stored state {stored[task_id]}")
        row = rows.get(task_id)
        if allowed and (row is None or (row.old_state, row.new_state, row.actor) != (old, new, ACTOR)):
            wrong.append(f"{old} -> {new}: audit row {row and (row.old_state, row.new_state)}")
        if not allowed and row is not None:
            wrong.append(f"{old} -> {new}: refused but audited")
    assert wrong == []


def test_every_run_transition_is_decided_by_the_table(migrated_engine: Engine) -> None:
    pairs = list(product(DagRunState, repeat=2))
    wrong: list[str] = []
    with session_scope(migrated_engine) as session:
        runs = {pair: new_run(run_id=f"{pair[0]}__{pair[1]}", day=i, state=pair[0]) for i, pair in enumerate(pairs)}
        audit.record_created(session, runs.values(), actor=ACTOR, reason="setup", when=NOW)
        for (old, new), run in runs.items():
            allowed = new in RUN_TRANSITIONS[old]
            try:
                audit.transition(session, audit.RUN, [run], audit.Change(new, NOW, ACTOR, "table"))
            except IllegalTransitionError:
                if allowed:
                    wrong.append(f"{old} -> {new}: refused")
                continue
            if not allowed:
                wrong.append(f"{old} -> {new}: allowed")
            elif run.state != new:
                wrong.append(f"{old} -> {new}: state {run.state}")
        audited = {(r.old_state, r.new_state) for r in audit_for(session, "run.state")}
    assert wrong == []
    assert audited == {(old, new) for old, new in pairs if new in RUN_TRANSITIONS[old]}


# --- one transaction ------------------------------------------------------------------------------------


def test_a_rollback_removes_the_change_and_its_audit_row(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run, [ti] = add_run_with_tasks(session, ["load"])

    with pytest.raises(RuntimeError), session_scope(migrated_engine) as session:
        ti = session.merge(ti)
        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.SCHEDULED, NOW, ACTOR, "ready"))
        assert audit_for(session, "task.state")  # written in this transaction...
        raise RuntimeError("the caller's transaction fails after the transition")

    with session_scope(migrated_engine, readonly=True) as session:
        [stored] = task_instances_for_run(session, run.dag_id, run.run_id)
        assert stored.state == TaskInstanceState.NONE
        assert audit_for(session, "task.state") == []  # ...and gone with it


def test_transition_keeps_timestamps_in_step(migrated_engine: Engine) -> None:
    t = [NOW + timedelta(minutes=i) for i in range(6)]
    with session_scope(migrated_engine) as session:
        _, [ti] = add_run_with_tasks(session, ["load"])
        for state, when in zip(
            [
                TaskInstanceState.SCHEDULED,
                TaskInstanceState.QUEUED,
                TaskInstanceState.RUNNING,
                TaskInstanceState.UP_FOR_RETRY,
            ],
            t,
            strict=False,
        ):
            audit.transition(session, audit.TASK, [ti], audit.Change(state, when, ACTOR, "step"))
        assert (ti.queued_at, ti.start_date, ti.end_date, ti.updated_at) == (t[1], t[2], t[3], t[3])

        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.QUEUED, t[4], ACTOR, "retry"))
        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.RUNNING, t[5], ACTOR, "retry"))
        assert (ti.queued_at, ti.start_date, ti.end_date) == (t[4], t[5], None)

        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.SUCCESS, t[5], ACTOR, "done"))
        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.NONE, t[5], ACTOR, "cleared"))
        assert (ti.queued_at, ti.start_date, ti.end_date, ti.next_try_at) == (None, None, None, None)


def test_run_timestamps(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run, _ = add_run_with_tasks(session, [])
        audit.transition(session, audit.RUN, [run], audit.Change(DagRunState.RUNNING, NOW, ACTOR, "go"))
        audit.transition(
            session, audit.RUN, [run], audit.Change(DagRunState.SUCCESS, NOW + timedelta(1), ACTOR, "done")
        )
        assert (run.start_date, run.end_date) == (NOW, NOW + timedelta(1))
        audit.transition(
            session, audit.RUN, [run], audit.Change(DagRunState.QUEUED, NOW + timedelta(2), ACTOR, "clear")
        )
        assert (run.queued_at, run.start_date, run.end_date) == (NOW + timedelta(2), None, None)


def test_bulk_transition_writes_one_row_per_instance(migrated_engine: Engine) -> None:
    task_ids = [f"t{i:03}" for i in range(50)]
    with session_scope(migrated_engine) as session:
        run, tis = add_run_with_tasks(session, task_ids)
        assert (
            len(
                audit.transition(
                    session, audit.TASK, tis, audit.Change(TaskInstanceState.SCHEDULED, NOW, ACTOR, "tick")
                )
            )
            == 50
        )

    with session_scope(migrated_engine, readonly=True) as session:
        assert {ti.state for ti in task_instances_for_run(session, run.dag_id, run.run_id)} == {
            TaskInstanceState.SCHEDULED
        }
        rows = audit_for(session, "task.state")
    assert sorted(r.task_id or "" for r in rows) == task_ids
    assert {(r.old_state, r.new_state, r.reason) for r in rows} == {("none", "scheduled", "tick")}


def test_bulk_transition_with_one_illegal_change_changes_nothing(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        _, tis = add_run_with_tasks(session, ["a", "b", "c"])
        audit.transition(session, audit.TASK, [tis[1]], audit.Change(TaskInstanceState.SUCCESS, NOW, ACTOR, "marked"))
        with pytest.raises(IllegalTransitionError, match=r"etl\.b in run .*: success -> queued"):
            audit.transition(session, audit.TASK, tis, audit.Change(TaskInstanceState.QUEUED, NOW, ACTOR, "tick"))
        assert [ti.state for ti in tis] == [TaskInstanceState.NONE, TaskInstanceState.SUCCESS, TaskInstanceState.NONE]
        assert len(audit_for(session, "task.state")) == 1


def test_bulk_transition_refuses_the_same_instance_twice(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        _, [ti] = add_run_with_tasks(session, ["a"])
        with pytest.raises(ValueError, match="twice"):
            audit.transition(
                session, audit.TASK, [ti, ti], audit.Change(TaskInstanceState.SCHEDULED, NOW, ACTOR, "tick")
            )


# --- one instance named by its key, fenced (a try's path) ---------------------------------------------------


def _ref(ti: TaskInstance, state: TaskInstanceState, try_number: int = 1) -> audit.TaskRef:
    return audit.TaskRef(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, state, try_number)


def _queued_once(migrated_engine: Engine, job_id: int | None = None) -> TaskInstance:
    """An instance queued for its first try (by `job_id`), the way the scheduler leaves it."""
    with session_scope(migrated_engine) as session:
        _, [ti] = add_run_with_tasks(session, ["load"])
        ti.try_number, ti.max_tries, ti.queued_by_job_id = 1, 2, job_id
        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.QUEUED, NOW, ACTOR, "queued"))
    return ti


def test_fenced_transition_sets_the_state_and_values_and_audits_it(migrated_engine: Engine) -> None:
    ti = _queued_once(migrated_engine, job_id=7)
    later = NOW + timedelta(seconds=5)
    change = audit.Change(TaskInstanceState.RUNNING, later, ACTOR, "started", values={"hostname": "h1", "pid": 42})
    with migrated_engine.begin() as conn:
        [moved] = audit.transition(
            conn, audit.TASK, [_ref(ti, TaskInstanceState.QUEUED)], change, fence={"try_number": 1, "queued_by_job_id": 7},
            returning=("max_tries",),
        )  # fmt: skip
    assert (moved.row.id, moved.row.max_tries) == (ti.id, 2)
    with session_scope(migrated_engine, readonly=True) as session:
        [stored] = task_instances_for_run(session, ti.dag_id, ti.run_id)
        [audited] = audit_for(session, "task.state", old_state="queued")
    assert (stored.state, stored.hostname, stored.pid) == (TaskInstanceState.RUNNING, "h1", 42)
    assert (stored.queued_at, stored.start_date, stored.end_date, stored.updated_at) == (NOW, later, None, later)
    assert (audited.new_state, audited.try_number, audited.reason, audited.actor, audited.ts) == (
        "running",
        1,
        "started",
        ACTOR,
        later,
    )


@pytest.mark.parametrize(
    ("old", "fence"),
    [
        (TaskInstanceState.RUNNING, {"try_number": 1}),  # not in the state the caller expects
        (TaskInstanceState.QUEUED, {"try_number": 2}),  # at another try
        (TaskInstanceState.QUEUED, {"try_number": 1, "queued_by_job_id": 8}),  # queued by another job
    ],
)
def test_fenced_transition_of_a_row_that_moved_on_changes_nothing(
    migrated_engine: Engine, old: TaskInstanceState, fence: dict[str, object]
) -> None:
    ti = _queued_once(migrated_engine, job_id=7)
    new = TaskInstanceState.SUCCESS if old == TaskInstanceState.RUNNING else TaskInstanceState.RUNNING
    with migrated_engine.begin() as conn:
        assert (
            audit.transition(conn, audit.TASK, [_ref(ti, old)], audit.Change(new, NOW, ACTOR, "x"), fence=fence) == []
        )
    with session_scope(migrated_engine, readonly=True) as session:
        [stored] = task_instances_for_run(session, ti.dag_id, ti.run_id)
        assert (stored.state, stored.try_number) == (TaskInstanceState.QUEUED, 1)
        assert [r.new_state for r in audit_for(session, "task.state")] == ["queued"]


def test_a_change_refuses_what_the_table_forbids_and_bad_arguments(migrated_engine: Engine) -> None:
    ti = _queued_once(migrated_engine)
    with migrated_engine.begin() as conn, pytest.raises(IllegalTransitionError, match="queued -> upstream_failed"):
        audit.transition(
            conn,
            audit.TASK,
            [_ref(ti, TaskInstanceState.QUEUED)],
            audit.Change(TaskInstanceState.UPSTREAM_FAILED, NOW, ACTOR, "x"),
        )
    with pytest.raises(ValueError, match="must not set the state"):
        audit.Change(TaskInstanceState.RUNNING, NOW, ACTOR, "x", values={"state": "success"})
    with pytest.raises(ValueError, match="naive datetime"):
        audit.Change(TaskInstanceState.RUNNING, NOW.replace(tzinfo=None), ACTOR, "x")
    with migrated_engine.begin() as conn, pytest.raises(ValueError, match="stamps them"):
        change = audit.Change(TaskInstanceState.RUNNING, NOW, ACTOR, "x", values={"start_date": NOW})
        audit.transition(conn, audit.TASK, [_ref(ti, TaskInstanceState.QUEUED)], change)


def test_rows_named_by_key_and_by_id_get_the_same_timestamps(migrated_engine: Engine) -> None:
    """Every allowed move, made once on ORM objects (found by id) and once on `TaskRef`s (found by key)."""
    stamps = ("queued_at", "start_date", "end_date", "next_try_at", "updated_at")
    before = NOW - timedelta(hours=1)
    pairs = [(old, new) for old in TaskInstanceState for new in sorted(TASK_TRANSITIONS[old])]
    with session_scope(migrated_engine) as session:
        run = new_run()
        tis = {}
        for old, new in pairs:
            for path in ("orm", "key"):
                ti = new_ti(run, f"{path}__{old}__{new}", state=old)
                ti.queued_at = ti.start_date = ti.end_date = ti.next_try_at = ti.updated_at = before
                tis[(path, old, new)] = ti
        audit.record_created(session, [run, *tis.values()], actor=ACTOR, reason="setup", when=NOW)
        for old, new in pairs:
            audit.transition(session, audit.TASK, [tis[("orm", old, new)]], audit.Change(new, NOW, ACTOR, "orm"))
        conn = session.connection()
        for old, new in pairs:
            ref = _ref(tis[("key", old, new)], old, try_number=0)
            assert audit.transition(conn, audit.TASK, [ref], audit.Change(new, NOW, ACTOR, "key"))
    with session_scope(migrated_engine, readonly=True) as session:
        stored = {ti.task_id: ti for ti in task_instances_for_run(session, run.dag_id, run.run_id)}
    differ = []
    for old, new in pairs:
        orm, key = stored[f"orm__{old}__{new}"], stored[f"key__{old}__{new}"]
        if (orm.state, *(getattr(orm, s) for s in stamps)) != (key.state, *(getattr(key, s) for s in stamps)):
            differ.append(f"{old} -> {new}")
    assert differ == []


# --- the gate cannot be bypassed by assignment ----------------------------------------------------------


def test_setting_a_stored_state_directly_is_refused(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run, [ti] = add_run_with_tasks(session, ["load"])
        with pytest.raises(IllegalTransitionError, match=r"audit\.transition\(\)"):
            ti.state = TaskInstanceState.SUCCESS
        with pytest.raises(IllegalTransitionError, match="dag_run state set directly"):
            run.state = DagRunState.SUCCESS
        fresh = new_ti(run, "new_one")
        fresh.state = TaskInstanceState.SCHEDULED  # not stored yet: any initial state is fine
        assert ti.state == TaskInstanceState.NONE


def test_audit_rows_cannot_be_changed_or_deleted_through_the_orm(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        audit.record_event(session, "note", actor=ACTOR, when=NOW)
    for change in ("update", "delete"):
        with pytest.raises(PersistenceError, match="append-only"), session_scope(migrated_engine) as session:
            row = session.scalars(select(AuditLog)).one()
            if change == "update":
                row.reason = "rewritten history"
            else:
                session.delete(row)
            session.flush()


# --- creation, events, pausing ------------------------------------------------------------------------------


def test_record_created_audits_the_run_and_its_tasks(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run, _ = add_run_with_tasks(session, ["extract", "load"])
    with session_scope(migrated_engine, readonly=True) as session:
        assert get_run(session, run.dag_id, run.run_id).state == DagRunState.QUEUED
        rows = audit_rows(session, dag_id="etl")
    assert [(r.event, r.task_id, r.old_state, r.new_state, r.map_index) for r in rows] == [
        ("run.created", None, None, "queued", None),
        ("task.created", "extract", None, "none", -1),
        ("task.created", "load", None, "none", -1),
    ]


def test_record_event(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        audit.record_event(
            session,
            "task.callback_error",
            actor="scheduler#3@host",
            dag_id="etl",
            run_id="r1",
            task_id="load",
            map_index=2,
            try_number=1,
            reason="on_failure_callback raised KeyError",
            detail={"traceback": "..."},
            when=T0,
        )
    with session_scope(migrated_engine, readonly=True) as session:
        [row] = audit_rows(session)
    assert (row.event, row.task_id, row.map_index, row.try_number, row.detail, row.ts) == (
        "task.callback_error",
        "load",
        2,
        1,
        {"traceback": "..."},
        T0,
    )


def test_set_paused_changes_and_audits_only_real_changes(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        add_dag(session, "etl")
    with session_scope(migrated_engine) as session:
        assert audit.set_paused(session, "etl", True, actor=ACTOR, when=NOW) is True
        assert audit.set_paused(session, "etl", True, actor=ACTOR, when=NOW) is False
    with session_scope(migrated_engine) as session:
        assert audit.set_paused(session, "etl", False, actor=ACTOR, when=NOW) is True

    with session_scope(migrated_engine, readonly=True) as session:
        assert session.get(Dag, "etl").is_paused is False  # type: ignore[union-attr]
        rows = audit_rows(session, dag_id="etl")
    assert [(r.event, r.old_state, r.new_state, r.actor) for r in rows] == [
        ("dag.paused", "unpaused", "paused", ACTOR),
        ("dag.unpaused", "paused", "unpaused", ACTOR),
    ]


def test_set_paused_on_an_unknown_dag(migrated_engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="no DAG 'ghost'"), session_scope(migrated_engine) as session:
        audit.set_paused(session, "ghost", True, actor=ACTOR, when=NOW)


def test_a_naive_when_is_refused(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        with pytest.raises(ValueError, match="naive"):
            audit.record_event(session, "x", actor=ACTOR, when=datetime(2026, 1, 1))
        audit.record_event(session, "x", actor=ACTOR, when=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))))


def test_counts_stay_consistent_across_dialects(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        add_run_with_tasks(session, ["a"], day=0)
        add_run_with_tasks(session, ["a"], day=1)
    with session_scope(migrated_engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(DagRun)) == 2
        assert session.scalar(select(func.count()).select_from(TaskInstance)) == 2


# --- actors --------------------------------------------------------------------------------------------


def test_actor_for_cli() -> None:
    actor = audit.actor_for_cli(["/usr/local/bin/dagrunner", "dags", "pause", "my dag"])
    user_host, command = actor.split(": ", 1)
    assert "@" in user_host
    assert command == "dagrunner dags pause 'my dag'"


def test_actor_for_cli_masks_database_passwords() -> None:
    actor = audit.actor_for_cli(["dagrunner", "--db-url", "postgresql://u:hunter2@db/meta", "db", "init"])
    assert "hunter2" not in actor
    assert "postgresql://u:***@db/meta" in actor
