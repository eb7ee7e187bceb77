"""A real try of a task with outlets (#12 part A): its success records the asset event and the consumer's
asset-triggered run in the transaction that records the success; the consumer's try sees them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AssetEvent, AuditLog, DagRun, DagRunType, TaskInstance

from .conftest import ExecutorFactory, Project
from .helpers import create_run, queue_try, run_one, xcoms_of

PAIR = """
from dagrunner import DAG, Asset, AssetAlias, task

sales = Asset("warehouse.daily_sales")
landing = AssetAlias("landing")

with DAG("producer", schedule=None):
    @task(outlets=[sales, landing])
    def load(outlet_events, params):
        outlet_events[sales].extra = {"rows": 42}
        outlet_events[sales].extra["day"] = "2026-01-05"
        outlet_events[landing].add(Asset("landing.file"), extra={"path": "/x"})
        if params.get("fail"):
            raise RuntimeError("no rows today")

    @task
    def plain():
        return 1

    load()
    plain()

with DAG("consumer", schedule=[sales]):
    @task(inlets=[sales])
    def show(triggering_asset_events, inlet_events, inlets):
        [event] = triggering_asset_events["warehouse.daily_sales"]
        return {
            "extra": dict(event.extra),
            "source": [event.source_dag_id, event.source_task_id, event.source_run_id, event.source_map_index],
            "uri": event.asset.uri,
            "inlets": [a.name for a in inlets],
            "inlet_rows": [dict(e.extra)["rows"] for e in inlet_events[sales]],
        }
    show()

with DAG("on_landing", schedule=landing):
    @task
    def noop():
        return None
    noop()
"""


@pytest.fixture
def pair(project: Project) -> Path:
    path = project.dag_file("pair.py", PAIR)
    load_dagbag(project.settings, project.engine)
    return path


@pytest.mark.parametrize("name", ["inline", pytest.param("local", marks=pytest.mark.slow)])
def test_outlets_record_the_event_and_the_consumers_run_and_its_try_sees_them(
    project: Project, make_executor: ExecutorFactory, pair: Path, name: str
) -> None:
    executor = make_executor(name)
    run = create_run(project.engine, "producer", ["load", "plain"])
    item = queue_try(project.engine, run, "load", pair)
    assert run_one(executor, item).state == "success"
    with session_scope(project.engine, readonly=True) as session:
        events = session.scalars(select(AssetEvent).order_by(AssetEvent.id)).all()
        assert [(e.extra, e.alias) for e in events] == [
            ({"rows": 42, "day": "2026-01-05"}, None),
            ({"path": "/x"}, "landing"),
        ]
        assert (events[0].source_dag_id, events[0].source_task_id, events[0].source_run_id) == (
            "producer", "load", run.run_id,
        )  # fmt: skip
        consumer = session.scalars(select(DagRun).where(DagRun.dag_id == "consumer")).one()
        assert consumer.run_type == DagRunType.ASSET_TRIGGERED
        assert session.scalars(select(DagRun).where(DagRun.dag_id == "on_landing")).one() is not None
        success = session.scalars(
            select(AuditLog).where(AuditLog.task_id == "load", AuditLog.new_state == "success")
        ).one()
        # one transaction, one `now`: the success, the event and the run it caused
        assert events[0].timestamp == success.ts == consumer.logical_date == consumer.queued_at
        consumer_run_id = consumer.run_id
        logical = consumer.logical_date

    spec = replace(run, dag_id="consumer", run_id=consumer_run_id, logical_date=logical)
    with session_scope(project.engine) as session:  # the run is queued: the scheduler would start it
        session.scalars(select(TaskInstance).where(TaskInstance.dag_id == "consumer")).one()
    consumer_item = queue_try(project.engine, spec, "show", pair)
    consumer_item = replace(
        consumer_item, run=replace(consumer_item.run, run_type="asset_triggered"), inlets=("warehouse.daily_sales",)
    )
    assert run_one(executor, consumer_item).state == "success"
    shown = xcoms_of(project.engine, consumer_item.key)["return_value"]
    assert shown == {
        "extra": {"rows": 42, "day": "2026-01-05"},
        "source": ["producer", "load", run.run_id, -1],
        "uri": "warehouse.daily_sales",
        "inlets": ["warehouse.daily_sales"],
        "inlet_rows": [42],
    }


def test_a_failed_task_records_no_event_and_a_task_without_outlets_none(
    project: Project, make_executor: ExecutorFactory, pair: Path
) -> None:
    executor = make_executor("inline")
    run = create_run(project.engine, "producer", ["load", "plain"], conf={"fail": True})
    assert run_one(executor, queue_try(project.engine, run, "load", pair)).state == "failed"
    assert run_one(executor, queue_try(project.engine, run, "plain", pair)).state == "success"
    with session_scope(project.engine, readonly=True) as session:
        assert session.scalars(select(AssetEvent)).all() == []
        assert session.scalars(select(DagRun).where(DagRun.dag_id == "consumer")).all() == []
