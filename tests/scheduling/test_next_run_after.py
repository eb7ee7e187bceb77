"""`next_run_after`: what `dags list` and the web's DAG list show, after the runs the scheduler made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.dagruns import next_run_after

from .harness import START, Harness

DAGS = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

for dag_id, catchup in [("catching_up", True), ("latest_only", False)]:
    with DAG(dag_id, schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=catchup):
        EmptyOperator(task_id="a")

with DAG("unscheduled", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="a")
"""


def _next(h: Harness, now: datetime) -> dict[str, datetime | None]:
    dags = load_dagbag(h.settings, h.engine).dags
    with session_scope(h.engine, readonly=True) as session:
        return next_run_after(session, dags, now)


def test_the_next_run_follows_the_runs_that_exist(h: Harness) -> None:
    h.write_dag("d.py", DAGS)
    before = _next(h, START)
    assert before == {
        "catching_up": datetime(2026, 1, 1, tzinfo=UTC),  # due, not created yet
        "latest_only": datetime(2026, 1, 5, tzinfo=UTC),
        "unscheduled": None,
    }
    h.start()
    h.tick()
    after = _next(h, START)
    assert after["catching_up"] == after["latest_only"] == datetime(2026, 1, 6, tzinfo=UTC)
    assert after["unscheduled"] is None
    assert _next(h, START + timedelta(days=3))["latest_only"] == datetime(2026, 1, 8, tzinfo=UTC)
