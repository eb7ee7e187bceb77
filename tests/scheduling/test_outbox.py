"""The transactional outbox: one row per published event, written in the transaction of its audit row."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from outbox_helpers import outbox_rows, published_audit
from sqlalchemy import func, select

from dagrunner.persistence.audit import RUN, Change, record_event, transition
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRun, Outbox
from dagrunner.persistence.outbox import ALL_TYPES, pending
from dagrunner.scheduling.operations import trigger_run
from dagrunner.states import DagRunState

from .harness import START, Harness

SMALL = """
import pendulum
from dagrunner import DAG, task

with DAG("small", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def ok():
        return 1

    @task(retries=1, retry_delay=5)
    def bad():
        raise RuntimeError("always")

    @task
    def mapped(x):
        return x

    ok() >> bad()
    mapped.expand(x=[1, 2])
"""

VERB = {"success": "succeeded", "none": "cleared"}


def test_every_published_audit_row_has_exactly_one_outbox_row(h: Harness) -> None:
    h.write_dag("small.py", SMALL)
    sched = h.start()
    with session_scope(h.engine) as s:
        run = trigger_run(s, sched.dag_source.dags()["small"], actor="test", now=START)
    h.tick()
    h.advance(6)
    assert h.states("small")["bad"] == "failed"
    audit, rows = published_audit(h.engine), outbox_rows(h.engine)
    assert len(rows) == len(audit) > 10
    for a, o in zip(audit, rows, strict=True):  # same order: the outbox rows follow their audit rows
        assert (o.dag_id, o.run_id, o.created_at) == (a.dag_id, a.run_id, a.ts)
        assert o.data["new_state"] == a.new_state and o.data["old_state"] == a.old_state
        noun = "task_instance" if a.event == "task.state" else "dag_run"
        assert o.type == f"{noun}.{VERB.get(a.new_state, a.new_state)}"
        assert o.type in ALL_TYPES
    assert "task.created" not in {a.event for a in audit}
    first = rows[0]
    assert first.type == "dag_run.queued" and first.subject == f"small/{run.run_id}"
    subjects = {o.subject for o in rows if o.type == "task_instance.succeeded"}
    assert {f"small/{run.run_id}/ok", f"small/{run.run_id}/mapped/0", f"small/{run.run_id}/mapped/1"} <= subjects
    assert len({o.event_id for o in rows}) == len(rows)
    failed = [o for o in rows if o.type == "task_instance.failed"]
    assert [o.data["try_number"] for o in failed] == [2]
    assert [o.type for o in rows if o.subject == f"small/{run.run_id}"][-1] == "dag_run.failed"


def test_a_rolled_back_transaction_leaves_no_outbox_row(h: Harness) -> None:
    h.write_dag("small.py", SMALL)
    sched = h.start()
    dag = sched.dag_source.dags()["small"]
    with pytest.raises(RuntimeError), session_scope(h.engine) as s:
        trigger_run(s, dag, actor="test", now=START)
        assert s.scalar(select(func.count()).select_from(Outbox)) == 1  # visible inside the transaction
        raise RuntimeError("roll it back")
    assert outbox_rows(h.engine) == []
    with session_scope(h.engine) as s:
        run = trigger_run(s, dag, actor="test", now=START)
    with pytest.raises(RuntimeError), session_scope(h.engine) as s:
        db_run = s.scalars(select(DagRun).where(DagRun.run_id == run.run_id)).one()
        transition(s, RUN, [db_run], Change(DagRunState.RUNNING, START, "test"))
        raise RuntimeError("roll it back")
    assert [o.type for o in outbox_rows(h.engine)] == ["dag_run.queued"]


def test_an_outbox_row_is_a_cloudevent(h: Harness) -> None:
    when = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    with session_scope(h.engine) as s:
        record_event(s, "asset.event", actor="test", when=when, detail={
            "asset": "orders", "uri": "s3://key:hunter2@bucket/orders", "extra": {"n": 3}, "event_id": 7,
            "source": {"kind": "watcher", "broker": "amqp://guest:secretpw@mq:5672/", "queue": "orders"},
        })  # fmt: skip
        record_event(s, "pool.created", actor="test", when=when, detail={"pool": "p"})  # not published
    with session_scope(h.engine, readonly=True) as s:
        (event,) = pending(s, 0, None, 10)
    ce = event.cloud_event("dagrunner://test/")
    assert ce == {
        "specversion": "1.0", "id": event.event_id, "source": "dagrunner://test/", "type": "dagrunner.asset.updated",
        "subject": "orders", "time": "2026-03-01T08:30:15.123456Z", "datacontenttype": "application/json",
        "data": {"asset": "orders", "uri": "s3://key:***@bucket/orders", "extra": {"n": 3}, "asset_event_id": 7,
                 "source": {"kind": "watcher", "broker": "amqp://guest:***@mq:5672/", "queue": "orders"}},
    }  # fmt: skip
    assert re.fullmatch(r"[0-9a-f-]{36}", ce["id"])
    assert "hunter2" not in str(ce) and "secretpw" not in str(ce)
