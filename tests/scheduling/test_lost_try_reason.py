"""A try an executor reports lost is recorded with the executor's own explanation (its event's detail),
or the generic words when the event gives none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from dagrunner.execution import recording
from dagrunner.execution.base import TryEvent, WorkItem
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.scheduler import LOST_TRY_REASON

from .harness import START, Harness, make_harness

DAG_FILE = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("lost", schedule="@daily", start_date=pendulum.datetime(2026, 1, 4, tz="UTC"), catchup=False) as dag:
    EmptyOperator(task_id="explained", retries=1)
    EmptyOperator(task_id="silent", retries=1)
"""
HEARTBEAT = "stopped heartbeating 30s ago on worker w1 (its Celery worker is gone)"


@pytest.fixture
def h(tmp_path: Path, db_url: str, migrated_engine: Engine) -> Iterator[Harness]:
    yield from make_harness(tmp_path, db_url, migrated_engine)


def test_a_lost_try_is_recorded_with_its_executors_explanation(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h.write_dag("lost.py", DAG_FILE)
    scheduler = h.start()
    executor = scheduler.executor
    submitted: list[WorkItem] = []
    monkeypatch.setattr(executor, "submit", submitted.append)  # queued, and left to "run elsewhere"
    h.tick(START)
    assert sorted(item.key.task_id for item in submitted) == ["explained", "silent"]
    with session_scope(h.engine) as session:
        for item in submitted:
            started = recording.start_try(session.connection(), item, hostname="w1", pid=1, log_path="-",
                                          now=START, actor="worker-test")  # fmt: skip
            assert started is not None

    details = {"explained": HEARTBEAT, "silent": ""}
    executor._events.extend(  # type: ignore[attr-defined]
        TryEvent(item.key, item.try_number, "lost", detail=details[item.key.task_id]) for item in submitted
    )
    h.tick()

    reasons = {
        a.task_id: a.reason for a in h.audit(dag_id="lost") if a.new_state == "up_for_retry" and a.task_id is not None
    }
    assert reasons == {"explained": HEARTBEAT, "silent": LOST_TRY_REASON}
    tries = {t.task_id: t.error for t in (*h.tries("lost", "explained"), *h.tries("lost", "silent"))}
    assert tries == {"explained": HEARTBEAT, "silent": LOST_TRY_REASON}
