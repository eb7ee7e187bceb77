"""The named read queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from db_factories import ACTOR, T0, add_dag, add_run_with_tasks, new_run, new_ti
from sqlalchemy import Engine

from dagrunner.errors import NotFoundError
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRunType, Pool
from dagrunner.persistence.queries import (
    active_run_counts,
    audit_rows,
    claimed_instances,
    dag_rows,
    get_run,
    instance_states,
    newest_run_pk,
    paused_dag_ids,
    pool_sizes,
    previous_run,
    run_exists,
    run_id_on_logical_date,
    running_run_counts,
    runs_created_after,
    runs_for_dag,
    runs_to_decide,
    scheduled_sequence_tails,
    slots_in_use,
    stale_running_instances,
    task_instances_for_run,
)
from dagrunner.states import DagRunState, TaskInstanceState


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


# --- the scheduler's reads ---------------------------------------------------------------------------


def test_runs_to_decide_by_owner_pause_and_refs(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        add_dag(session, "etl")
        add_dag(session, "sleepy", paused=True)
        first, _ = add_run_with_tasks(session, [], day=0)
        second, _ = add_run_with_tasks(session, [], day=1)
        add_run_with_tasks(session, [], dag_id="sleepy")
        owned = new_run("etl", day=2)
        owned.owner = "backfill-1"
        done = new_run("etl", day=3, state=DagRunState.SUCCESS)
        audit.record_created(session, [owned, done], actor=ACTOR, reason="test setup", when=T0)
    with session_scope(migrated_engine) as session:
        assert [r.run_id for r in runs_to_decide(session, owner=None)] == [first.run_id, second.run_id]
        assert [r.run_id for r in runs_to_decide(session, owner="backfill-1")] == [owned.run_id]
        refs = [("etl", second.run_id), ("sleepy", "nope")]
        assert [r.run_id for r in runs_to_decide(session, owner=None, refs=refs)] == [second.run_id]
        only = {("etl", first.run_id)}
        assert runs_to_decide(session, owner=None, refs=refs, only=only) == []


def test_runs_created_after_a_watermark(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine, readonly=True) as session:
        assert newest_run_pk(session) == 0
    with session_scope(migrated_engine) as session:
        first, _ = add_run_with_tasks(session, [], day=0)
        second, _ = add_run_with_tasks(session, [], day=1)
    with session_scope(migrated_engine, readonly=True) as session:
        assert newest_run_pk(session) == second.id
        assert runs_created_after(session, first.id) == [(second.id, "etl", second.run_id)]


def test_run_counts_and_the_latest_scheduled_run(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        runs = [add_run_with_tasks(session, [], day=day)[0] for day in range(3)]
        manual = new_run("etl", day=5, run_type=DagRunType.MANUAL)
        audit.record_created(session, [manual], actor=ACTOR, reason="test setup", when=T0)
        audit.transition(session, audit.RUN, [runs[0]], audit.Change(DagRunState.RUNNING, T0, ACTOR, "go"))
    with session_scope(migrated_engine, readonly=True) as session:
        assert active_run_counts(session, ["etl", "none"]) == {"etl": 4}
        assert running_run_counts(session, ["etl"], owner=None) == {"etl": 1}
        assert running_run_counts(session, ["etl"], owner="someone") == {}
        assert [r.run_id for r in scheduled_sequence_tails(session, ["etl"])["etl"]] == [runs[2].run_id]
        assert run_exists(session, "etl", runs[1].run_id) and not run_exists(session, "etl", "nope")
        assert run_id_on_logical_date(session, "etl", runs[1].logical_date) == runs[1].run_id
        assert run_id_on_logical_date(session, "etl", manual.logical_date) is None  # manual runs may share a date


def test_slots_in_use_pools_and_paused_dags(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        add_dag(session, "etl")
        add_dag(session, "sleepy", paused=True)
        session.add(Pool(name="tiny", slots=3))
        run, _ = add_run_with_tasks(session, [])
        tis = [
            new_ti(run, f"t{i}", state=state)
            for i, state in enumerate((TaskInstanceState.QUEUED, TaskInstanceState.RUNNING, TaskInstanceState.SUCCESS))
        ]
        tis[1].pool, tis[1].pool_slots = "tiny", 2
        audit.record_created(session, tis, actor=ACTOR, reason="test setup", when=T0)
    with session_scope(migrated_engine, readonly=True) as session:
        assert slots_in_use(session) == ({"etl": 2}, {"default_pool": 1, "tiny": 2})
        assert pool_sizes(session)["tiny"] == 3
        assert paused_dag_ids(session, ["etl", "sleepy"]) == {"sleepy"}
        assert {ti.task_id for ti in claimed_instances(session)} == {"t0", "t1"}
        assert stale_running_instances(session, T0 + timedelta(days=1)) == []  # no heartbeat yet


def test_previous_run_and_its_instance_states(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        first, _ = add_run_with_tasks(session, [], day=0)
        second, _ = add_run_with_tasks(session, [], day=1)
        mapped = [
            new_ti(first, "m", map_index=i, state=s)
            for i, s in enumerate((TaskInstanceState.SUCCESS, TaskInstanceState.FAILED))
        ]
        audit.record_created(session, mapped, actor=ACTOR, reason="test setup", when=T0)
    with session_scope(migrated_engine, readonly=True) as session:
        previous = previous_run(session, "etl", second.logical_date)
        assert previous is not None and previous.run_id == first.run_id
        assert previous_run(session, "etl", first.logical_date) is None
        assert sorted(instance_states(session, "etl", first.run_id, ["m"])) == [
            ("m", TaskInstanceState.FAILED),
            ("m", TaskInstanceState.SUCCESS),
        ]
