"""What the schema itself guarantees on both dialects: UTC times, uniqueness, foreign keys, JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pendulum
import pytest
from db_factories import T0, add_run_with_tasks, new_run, new_ti
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import DagRun, DagRunType, TaskInstance, TaskTry, XCom
from dagrunner.persistence.queries import get_run
from dagrunner.persistence.schema import init_db
from dagrunner.states import TaskInstanceState

# --- datetimes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        pendulum.datetime(2026, 10, 25, 2, 30, tz="Europe/Amsterdam"),  # ambiguous: pendulum picks CET
    ],
    ids=["utc", "plus-0530", "pendulum-amsterdam"],
)
def test_aware_datetimes_round_trip_as_utc(migrated_engine: Engine, given: datetime) -> None:
    with session_scope(migrated_engine) as session:
        run = new_run()
        run.logical_date = given
        session.add(run)
    with session_scope(migrated_engine, readonly=True) as session:
        stored = get_run(session, run.dag_id, run.run_id).logical_date
        found = session.scalars(select(DagRun.run_id).where(DagRun.logical_date == given)).all()
    # (Python's == across zones is always False for an ambiguous wall time like the pendulum case, the
    # repeated 02:30 of a DST fall-back; its instant is what astimezone gives.)
    assert stored == given.astimezone(UTC)
    assert stored.tzinfo is UTC
    assert type(stored) is datetime
    assert found == [run.run_id]  # comparing against an aware value in another zone finds it


@pytest.mark.postgres
def test_utc_holds_whatever_the_postgres_session_time_zone(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        init_db(engine)
        with session_scope(engine) as session:
            session.add(new_run())
        with session_scope(engine) as session:
            session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
            stored = session.scalars(select(DagRun.logical_date)).one()
    finally:
        engine.dispose()
    assert stored == T0 and stored.tzinfo is UTC


def test_naive_datetimes_are_refused(migrated_engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(migrated_engine) as session:
        run = new_run()
        run.logical_date = datetime(2026, 1, 1)
        session.add(run)


def test_datetimes_sort_in_time_order(migrated_engine: Engine) -> None:
    zones = [timezone(timedelta(hours=h)) for h in (-8, 0, 9)]
    with session_scope(migrated_engine) as session:
        for i, zone in enumerate(zones):
            run = new_run(run_id=f"r{i}", run_type=DagRunType.MANUAL)
            run.logical_date = T0.astimezone(zone) + timedelta(minutes=10 * (2 - i))  # r2 earliest
            session.add(run)
    with session_scope(migrated_engine, readonly=True) as session:
        ordered = session.scalars(select(DagRun.run_id).order_by(DagRun.logical_date)).all()
    assert ordered == ["r2", "r1", "r0"]


# --- uniqueness and foreign keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "allowed"),
    [
        (DagRunType.SCHEDULED, DagRunType.BACKFILL, False),
        (DagRunType.SCHEDULED, DagRunType.SCHEDULED, False),
        (DagRunType.SCHEDULED, DagRunType.MANUAL, True),
        (DagRunType.MANUAL, DagRunType.MANUAL, True),
    ],
)
def test_one_scheduled_or_backfill_run_per_logical_date(
    migrated_engine: Engine, first: DagRunType, second: DagRunType, allowed: bool
) -> None:
    with session_scope(migrated_engine) as session:
        session.add(new_run(run_type=first, run_id="first"))
    if allowed:
        with session_scope(migrated_engine) as session:
            session.add(new_run(run_type=second, run_id="second"))
    else:
        with pytest.raises(IntegrityError), session_scope(migrated_engine) as session:
            session.add(new_run(run_type=second, run_id="second"))


def test_task_instance_needs_its_run(migrated_engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(migrated_engine) as session:
        session.add(new_ti(new_run(run_id="never-stored")))


def test_deleting_a_run_deletes_its_task_instances_tries_and_xcoms(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run, [ti] = add_run_with_tasks(session, ["load"])
        base = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": -1}
        session.add(TaskTry(ti_id=ti.id, try_number=1, state=TaskInstanceState.SUCCESS, **base))
        session.add(XCom(ti_id=ti.id, value={"rows": 3}, created_at=T0, **base))
    with session_scope(migrated_engine) as session:
        session.delete(get_run(session, run.dag_id, run.run_id))
    with session_scope(migrated_engine, readonly=True) as session:
        for model in (TaskInstance, TaskTry, XCom):
            assert session.scalars(select(model)).all() == [], model.__name__


def test_json_none_is_sql_null_and_values_round_trip(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        _, [a, b] = add_run_with_tasks(session, ["a", "b"])
        base = {"dag_id": a.dag_id, "run_id": a.run_id, "map_index": -1, "created_at": T0}
        session.add(XCom(ti_id=a.id, task_id="a", value=None, **base))
        session.add(XCom(ti_id=b.id, task_id="b", value={"n": [1, 2.5, "x", None]}, **base))
    with session_scope(migrated_engine, readonly=True) as session:
        nulls = session.scalars(select(XCom.task_id).where(XCom.value.is_(None))).all()
        value = session.scalars(select(XCom.value).where(XCom.task_id == "b")).one()
    assert nulls == ["a"]
    assert value == {"n": [1, 2.5, "x", None]}


def test_states_come_back_as_enum_members(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        add_run_with_tasks(session, ["a"])
    with session_scope(migrated_engine, readonly=True) as session:
        ti = session.scalars(select(TaskInstance)).one()
        run = session.scalars(select(DagRun)).one()
    assert type(ti.state) is TaskInstanceState and ti.map_index == -1
    assert type(run.run_type) is DagRunType
