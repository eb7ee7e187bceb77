"""`record_asset_event`: the one way asset events enter, on SQLite and PostgreSQL (#12 part A).

DAG files are real files, synced into the database by the loader (`load_dagbag`), so the consuming DAGs'
conditions come from the serialized DAGs exactly as in production.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from dagrunner.errors import UnknownAssetError
from dagrunner.execution.asset_events import RecordedAssetEvent, record_asset_event
from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import (
    Asset,
    AssetDagQueue,
    AssetEvent,
    AuditLog,
    Dag,
    DagRun,
    DagRunAssetEvent,
    DagRunType,
    TaskInstance,
)
from dagrunner.states import DagRunState

from .conftest import Project

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTOR = "tester@host: pytest"

CONSUMERS = """
from dagrunner import DAG, Asset, AssetAlias
from dagrunner.operators import EmptyOperator

a, b, c = Asset("a"), Asset("b", uri="s3://bucket/b"), Asset("c")
with DAG("on_all", schedule=[a, b]):
    EmptyOperator(task_id="t")
with DAG("on_any", schedule=a | c):
    EmptyOperator(task_id="t")
with DAG("on_nested", schedule=a & (b | c), max_active_runs=1):
    EmptyOperator(task_id="t")
with DAG("on_alias", schedule=AssetAlias("landing")):
    EmptyOperator(task_id="t")
with DAG("producer", schedule=None):
    EmptyOperator(task_id="make", outlets=[Asset("d"), AssetAlias("landing")])
"""


@pytest.fixture
def synced(project: Project) -> Project:
    project.dag_file("consumers.py", CONSUMERS)
    load_dagbag(project.settings, project.engine)
    return project


def emit(engine: Engine, name: str, when: datetime, **kwargs: object) -> RecordedAssetEvent | None:
    with session_scope(engine) as session:
        return record_asset_event(
            session,
            name,
            source=kwargs.pop("source", {"kind": "cli"}),
            actor=ACTOR,
            when=when,
            **kwargs,  # type: ignore[arg-type]
        )


def runs(engine: Engine, dag_id: str) -> list[DagRun]:
    with session_scope(engine, readonly=True) as session:
        found = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id)).all()
        session.expunge_all()
        return list(found)


def test_sync_registers_every_asset_with_who_uses_it_how(synced: Project) -> None:
    with session_scope(synced.engine, readonly=True) as session:
        rows = {row.name: row for row in session.scalars(select(Asset))}
        assert set(rows) == {"a", "b", "c", "d"}
        assert rows["b"].uri == "s3://bucket/b"
        assert rows["a"].consumers == ["on_all", "on_any", "on_nested"]
        assert rows["d"].producers == ["producer.make"]


def test_all_of_two_runs_once_both_have_an_event(synced: Project) -> None:
    first = emit(synced.engine, "a", T0)
    assert first is not None and "on_all" not in dict(first.created_runs)
    assert runs(synced.engine, "on_all") == []
    second = emit(synced.engine, "s3://bucket/b", T0 + timedelta(minutes=1))  # by uri
    assert second is not None and second.asset == "b"
    [run] = runs(synced.engine, "on_all")
    assert run.run_type == DagRunType.ASSET_TRIGGERED
    assert run.logical_date == T0 + timedelta(minutes=1)
    assert (run.data_interval_start, run.data_interval_end) == (run.logical_date, run.logical_date)
    assert run.state == DagRunState.QUEUED and run.conf == {}
    assert ("on_all", run.run_id) in second.created_runs
    with session_scope(synced.engine, readonly=True) as session:
        linked = session.scalars(select(DagRunAssetEvent.event_id).where(DagRunAssetEvent.run_pk == run.id)).all()
        assert sorted(linked) == sorted([first.id, second.id])
        assert session.scalars(select(AssetDagQueue).where(AssetDagQueue.dag_id == "on_all")).all() == []
        assert session.scalar(select(func.count()).select_from(TaskInstance).where(TaskInstance.run_id == run.run_id,
                                                                                    TaskInstance.dag_id == "on_all")) == 1  # fmt: skip
    # the queue was cleared: one more event of a alone does not run it again
    emit(synced.engine, "a", T0 + timedelta(minutes=2))
    assert len(runs(synced.engine, "on_all")) == 1


def test_any_of_runs_at_each_event_and_nested_waits_for_its_and(synced: Project) -> None:
    emit(synced.engine, "c", T0)
    assert len(runs(synced.engine, "on_any")) == 1
    assert runs(synced.engine, "on_nested") == []
    emit(synced.engine, "a", T0 + timedelta(seconds=1))
    assert len(runs(synced.engine, "on_any")) == 2
    assert len(runs(synced.engine, "on_nested")) == 1


def test_max_active_runs_does_not_stop_creation_the_run_waits_queued(synced: Project) -> None:
    for i in range(3):
        emit(synced.engine, "c", T0 + timedelta(seconds=2 * i))
        emit(synced.engine, "a", T0 + timedelta(seconds=2 * i + 1))
    found = runs(synced.engine, "on_nested")
    assert len(found) == 3 and {r.state for r in found} == {DagRunState.QUEUED}


def test_same_dedupe_key_twice_records_one_event_and_one_run(synced: Project) -> None:
    assert emit(synced.engine, "c", T0, dedupe_key="msg-1") is not None
    assert emit(synced.engine, "c", T0 + timedelta(seconds=1), dedupe_key="msg-1") is None
    with session_scope(synced.engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(AssetEvent)) == 1
    assert len(runs(synced.engine, "on_any")) == 1


def test_an_unknown_asset_is_refused_by_name(synced: Project) -> None:
    with pytest.raises(UnknownAssetError, match="'nope'.*outlets=\\[Asset"):
        emit(synced.engine, "nope", T0)
    with session_scope(synced.engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(AssetEvent)) == 0


def test_a_paused_dag_keeps_its_queue_and_runs_at_the_next_event_once_unpaused(synced: Project) -> None:
    with session_scope(synced.engine) as session:
        session.execute(update(Dag).where(Dag.dag_id == "on_all").values(is_paused=True))
    emit(synced.engine, "a", T0)
    emit(synced.engine, "b", T0 + timedelta(seconds=1))
    assert runs(synced.engine, "on_all") == []
    with session_scope(synced.engine) as session:
        session.execute(update(Dag).where(Dag.dag_id == "on_all").values(is_paused=False))
    emit(synced.engine, "b", T0 + timedelta(seconds=2))
    [run] = runs(synced.engine, "on_all")
    assert run.logical_date == T0 + timedelta(seconds=2)


def test_an_event_through_an_alias_triggers_the_alias_schedule(synced: Project) -> None:
    source = {"kind": "task", "dag_id": "producer", "run_id": "r1", "task_id": "make", "map_index": -1}
    done = emit(synced.engine, "d", T0, alias="landing", source=source)
    assert done is not None and [d for d, _ in done.created_runs] == ["on_alias"]
    with session_scope(synced.engine, readonly=True) as session:
        event = session.get(AssetEvent, done.id)
        assert event is not None
        assert (event.source_dag_id, event.source_task_id, event.alias) == ("producer", "make", "landing")


def test_the_event_is_audited_as_asset_event_and_the_run_as_created(synced: Project) -> None:
    done = emit(synced.engine, "c", T0, extra={"rows": 3})
    assert done is not None
    with session_scope(synced.engine, readonly=True) as session:
        [audit] = session.scalars(select(AuditLog).where(AuditLog.event == "asset.event")).all()
        assert audit.detail is not None
        assert audit.detail["asset"] == "c" and audit.detail["extra"] == {"rows": 3}
        assert audit.detail["event_id"] == done.id and audit.detail["source"] == {"kind": "cli"}
        created = session.scalars(select(AuditLog.run_id).where(AuditLog.event == "run.created")).all()
        assert created == [done.created_runs[0][1]]


def test_nothing_is_kept_when_the_callers_transaction_rolls_back(synced: Project) -> None:
    with Session(synced.engine) as session:
        record_asset_event(session, "c", source={"kind": "cli"}, actor=ACTOR, when=T0)
        session.rollback()
    assert runs(synced.engine, "on_any") == []


@pytest.mark.only_db("postgres")
@pytest.mark.postgres
def test_concurrent_duplicates_record_one_event_on_postgres(project: Project) -> None:
    project.dag_file("consumers.py", CONSUMERS)
    load_dagbag(project.settings, project.engine)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        barrier.wait()
        results.append(emit(project.engine, "c", T0, dedupe_key="same-message"))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1
    with session_scope(project.engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(AssetEvent)) == 1
    assert len(runs(project.engine, "on_any")) == 1


@pytest.mark.only_db("postgres")
@pytest.mark.postgres
def test_concurrent_events_of_an_and_condition_do_not_both_miss_it(project: Project) -> None:
    project.dag_file("consumers.py", CONSUMERS)
    load_dagbag(project.settings, project.engine)
    barrier = threading.Barrier(2)

    def one(name: str) -> None:
        barrier.wait()
        emit(project.engine, name, T0)

    threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs(project.engine, "on_all")) == 1
