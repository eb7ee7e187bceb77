"""`persistence/views.py`: the read-only queries the CLI shows, on every dialect (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, Backfill, Dag, DagRun, DagRunType, TaskInstance, TaskTry
from dagrunner.persistence.views import (
    audit_trail,
    backfill_progress,
    is_paused,
    latest_try,
    list_runs,
    paused_dags,
    run_with_tasks,
    runs_by_id,
)
from dagrunner.states import DagRunState
from dagrunner.states import TaskInstanceState as TI

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def _run(dag_id: str, day: int, state: DagRunState, *, backfill_id: int | None = None) -> DagRun:
    when = T0 + timedelta(days=day)
    return DagRun(
        dag_id=dag_id, run_id=f"scheduled__{when.isoformat()}", run_type=DagRunType.SCHEDULED, logical_date=when,
        data_interval_start=when, data_interval_end=when + timedelta(days=1), run_after=when, state=state,
        conf={"day": day}, start_date=when, end_date=when + timedelta(seconds=90) if day == 0 else None,
        backfill_id=backfill_id,
    )  # fmt: skip


def _ti(run: DagRun, task_id: str, state: TI, map_index: int = -1) -> TaskInstance:
    return TaskInstance(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=map_index, state=state)


def test_runs_newest_first_filtered_and_shaped_once(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        session.add_all([_run("etl", 0, DagRunState.SUCCESS), _run("etl", 1, DagRunState.RUNNING)])
        session.add(_run("other", 0, DagRunState.SUCCESS))
    with session_scope(migrated_engine, readonly=True) as session:
        assert [(r.dag_id, r.logical_date.day) for r in list_runs(session)] == [
            ("etl", 6),
            ("other", 5),
            ("etl", 5),
        ]  # ties: newest row first
        assert [r.state for r in list_runs(session, dag_id="etl", state=DagRunState.SUCCESS)] == ["success"]
        assert len(list_runs(session, limit=1)) == 1
        chosen = runs_by_id(session, "etl", [r.run_id for r in list_runs(session, dag_id="etl")])
        assert runs_by_id(session, "etl", []) == []
    assert [r.logical_date.day for r in chosen] == [5, 6]  # oldest first; usable after the session closed
    first = chosen[0].to_json()
    assert first["duration_s"] == 90.0 and first["conf"] == {"day": 0} and first["run_type"] == "scheduled"
    assert first["data_interval_end"] == (T0 + timedelta(days=1)).isoformat() and first["backfill_id"] is None
    assert chosen[1].to_json()["duration_s"] is None and chosen[1].to_json()["end_date"] is None


def test_run_with_tasks_in_the_given_order_with_mapped_labels(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run = _run("etl", 0, DagRunState.RUNNING)
        session.add(run)
        session.add_all(
            [_ti(run, "load", TI.NONE), _ti(run, "extract", TI.SUCCESS, 1), _ti(run, "extract", TI.FAILED, 0)]
        )
        run_id = run.run_id
    with session_scope(migrated_engine, readonly=True) as session:
        by_dag_order = run_with_tasks(session, "etl", run_id, order=("extract", "load"))
        by_name = run_with_tasks(session, "etl", run_id)
    assert by_dag_order.to_json()["tasks"] == {"extract[0]": "failed", "extract[1]": "success", "load": "none"}
    assert list(by_dag_order.to_json()["tasks"]) == ["extract[0]", "extract[1]", "load"]
    assert [ti.label for ti in by_name.tasks] == ["extract[0]", "extract[1]", "load"]
    assert by_dag_order.to_json()["run_id"] == run_id and by_dag_order.to_json()["state"] == "running"


def test_latest_try_or_a_given_one(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run = _run("etl", 0, DagRunState.RUNNING)
        ti = _ti(run, "load", TI.UP_FOR_RETRY)
        session.add_all([run, ti])
        session.flush()
        for n in (1, 2):
            session.add(
                TaskTry(
                    ti_id=ti.id,
                    dag_id="etl",
                    run_id=run.run_id,
                    task_id="load",
                    map_index=-1,
                    try_number=n,
                    state=TI.FAILED,
                    log_path=f"/logs/{n}.log",
                )  # fmt: skip
            )
        run_id = run.run_id
    with session_scope(migrated_engine, readonly=True) as session:
        assert latest_try(session, "etl", run_id, "load", -1) == latest_try(session, "etl", run_id, "load", -1, 2)
        newest, first = (
            latest_try(session, "etl", run_id, "load", -1),
            latest_try(session, "etl", run_id, "load", -1, 1),
        )
        assert latest_try(session, "etl", run_id, "load", 0) is None
    assert newest is not None and (newest.try_number, newest.log_path) == (2, "/logs/2.log")
    assert first is not None and first.try_number == 1


def test_paused_dags_and_backfill_progress(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        session.add_all([Dag(dag_id="etl", fileloc="/d/etl.py", is_paused=True), Dag(dag_id="b", fileloc="/d/b.py")])
        backfill = Backfill(dag_id="etl", from_date=T0, to_date=T0 + timedelta(days=2), created_at=T0)
        session.add(backfill)
        session.flush()
        runs = [_run("etl", day, state, backfill_id=backfill.id)
                for day, state in enumerate([DagRunState.SUCCESS, DagRunState.RUNNING, DagRunState.QUEUED])]  # fmt: skip
        session.add_all(runs)
        session.add_all([_ti(runs[0], "a", TI.SUCCESS), _ti(runs[1], "a", TI.RUNNING), _ti(runs[2], "a", TI.NONE)])
        session.add(_run("etl", 5, DagRunState.RUNNING))  # not the backfill's
        backfill_id = backfill.id
    with session_scope(migrated_engine, readonly=True) as session:
        assert paused_dags(session) == {"b": False, "etl": True}
        assert is_paused(session, "etl") and not is_paused(session, "b") and not is_paused(session, "unknown")
        progress = backfill_progress(session, backfill_id)
    assert progress.runs_done == 1
    assert progress.task_counts == {"success": 1, "running": 1, "none": 1}
    assert progress.in_flight == [T0 + timedelta(days=1)]


def test_audit_trail_labels_map_index_zero_as_mapped(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        for i, (task_id, map_index) in enumerate([("load", 0), ("load", -1), (None, None)]):
            session.add(AuditLog(ts=T0 + timedelta(seconds=i), actor="me", event="e", dag_id="etl", run_id="r",
                                 task_id=task_id, map_index=map_index))  # fmt: skip
    with session_scope(migrated_engine, readonly=True) as session:
        rows = audit_trail(session, dag_id="etl")
        newest = audit_trail(session, dag_id="etl", limit=1)
    assert [r.task_label for r in rows] == ["load[0]", "load", None]
    assert rows[0].to_json()["map_index"] == 0 and rows[0].to_json()["ts"] == T0.isoformat()
    assert [r.task_label for r in newest] == [None]
