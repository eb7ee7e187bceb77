"""The named read queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from db_factories import ACTOR, T0, add_dag, add_run_with_tasks, new_ti
from sqlalchemy import Engine

from dagrunner.errors import NotFoundError
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.queries import audit_rows, dag_rows, get_run, runs_for_dag, task_instances_for_run
from dagrunner.states import DagRunState


def test_get_run_and_a_missing_run(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run, _ = add_run_with_tasks(session, [])
    with session_scope(migrated_engine, readonly=True) as session:
        assert get_run(session, "etl", run.run_id).id == run.id
        with pytest.raises(NotFoundError, match="DAG 'etl' has no run 'nope'.*dagrunner runs list etl"):
            get_run(session, "etl", "nope")


def test_runs_for_dag_newest_first_with_state_filter(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        runs = [add_run_with_tasks(session, [], day=day)[0] for day in range(3)]
        add_run_with_tasks(session, [], dag_id="other")
        audit.transition(session, audit.RUN, [runs[1]], audit.Change(DagRunState.RUNNING, T0, ACTOR, "go"))
    with session_scope(migrated_engine, readonly=True) as session:
        assert [r.run_id for r in runs_for_dag(session, "etl")] == [r.run_id for r in reversed(runs)]
        assert [r.run_id for r in runs_for_dag(session, "etl", limit=1)] == [runs[2].run_id]
        running = runs_for_dag(session, "etl", states=[DagRunState.RUNNING])
        assert [r.run_id for r in running] == [runs[1].run_id]


def test_task_instances_for_run_by_task_then_map_index(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        run, _ = add_run_with_tasks(session, ["b", "a"])
        audit.record_created(
            session, [new_ti(run, "m", map_index=i) for i in (2, 0, 1)], actor=ACTOR, reason="expanded", when=T0
        )
    with session_scope(migrated_engine, readonly=True) as session:
        tis = task_instances_for_run(session, run.dag_id, run.run_id)
    assert [(ti.task_id, ti.map_index) for ti in tis] == [("a", -1), ("b", -1), ("m", 0), ("m", 1), ("m", 2)]


def test_audit_rows_filters_and_limit(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        for i in range(5):
            audit.record_event(session, f"e{i}", actor=ACTOR, dag_id="etl", run_id=f"r{i % 2}", when=T0 + timedelta(i))
        audit.record_event(session, "other", actor=ACTOR, dag_id="other", when=T0)
    with session_scope(migrated_engine, readonly=True) as session:
        assert [r.event for r in audit_rows(session, dag_id="etl")] == ["e0", "e1", "e2", "e3", "e4"]
        assert [r.event for r in audit_rows(session, dag_id="etl", run_id="r1")] == ["e1", "e3"]
        assert [r.event for r in audit_rows(session, since=T0 + timedelta(3))] == ["e3", "e4"]
        assert [r.event for r in audit_rows(session, limit=2)] == ["e4", "other"]


def test_dag_rows(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        add_dag(session, "b", paused=True)
        add_dag(session, "a").is_active = False
    with session_scope(migrated_engine, readonly=True) as session:
        assert [(d.dag_id, d.is_paused) for d in dag_rows(session)] == [("a", False), ("b", True)]
        assert [d.dag_id for d in dag_rows(session, active_only=True)] == ["b"]
