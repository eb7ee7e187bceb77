"""Scheduled runs beside a backfill over dates the scheduler has not reached yet (issue #10, item 2).

A date that already has a (backfill) run is skipped by run creation: not created again, not counted
against max_active_runs, and the next due date is found past it, on every tick and after a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRunType
from dagrunner.scheduling.dagruns import create_run

from .harness import START, Harness

DAILY = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("daily", schedule="@daily", start_date=pendulum.datetime(2025, 12, 20, tz="UTC"),
         catchup=True, max_active_runs=4):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""
FIRST = datetime(2025, 12, 20, tzinfo=UTC)


def _backfill(h: Harness, first: datetime, last: datetime) -> None:
    """What `dagrunner backfill` creates: a backfill run per date (unowned here, so this scheduler runs them)."""
    dag = load_dagbag(h.settings, h.engine).dags["daily"]
    infos = dag.timetable.runs_between(first, last, start_date=dag.start_date, end_date=dag.end_date)
    with session_scope(h.engine) as s:
        for info in infos:
            create_run(s, dag, info, run_type=DagRunType.BACKFILL, actor="backfill-test", now=h.clock.now())


def _by_date(h: Harness) -> dict[datetime, tuple[str, str]]:
    runs = h.runs("daily")
    assert len({r.logical_date for r in runs}) == len(runs), "two runs for one date"
    return {r.logical_date: (r.run_type.value, r.state.value) for r in runs}


def test_backfilled_dates_are_skipped_not_counted_and_scheduling_goes_on_past_them(h: Harness) -> None:
    h.write_dag("daily.py", DAILY)
    h.start()
    h.tick(settle=False)  # the first max_active_runs dates: Dec 20-23
    assert len(h.runs("daily")) == 4
    backfilled = [FIRST + timedelta(days=d) for d in range(6, 12)]  # Dec 26-31: more dates than max_active_runs
    _backfill(h, backfilled[0], backfilled[-1])
    h.tick()
    h.advance(5)  # a full scan or two later
    runs = _by_date(h)
    due = [FIRST + timedelta(days=d) for d in range(17)]  # Dec 20 .. Jan 5
    assert sorted(runs) == due
    assert all(state == "success" for _, state in runs.values())
    assert [d for d, (kind, _) in runs.items() if kind == "backfill"] == backfilled
    h.tick(START + timedelta(days=1))  # the next scheduled date comes due and is created
    assert _by_date(h)[due[-1] + timedelta(days=1)] == ("scheduled", "success")


def test_after_a_restart_the_next_due_date_is_past_the_backfilled_ones(h: Harness) -> None:
    h.write_dag("daily.py", DAILY)
    h.start()
    h.tick(settle=False)
    _backfill(h, FIRST + timedelta(days=4), FIRST + timedelta(days=16))  # Dec 24 .. Jan 5: up to now
    h.tick()
    h.scheduler.shutdown(1.0)  # type: ignore[union-attr]
    from dagrunner.scheduling.dagruns import continue_from  # here: today's code has no such function

    dag = load_dagbag(h.settings, h.engine).dags["daily"]
    with session_scope(h.engine) as s:
        assert continue_from(s, {"daily": dag}, h.clock.now())["daily"].logical_date == FIRST + timedelta(days=16)
    h.start()
    h.tick()
    assert h.scheduler.next_wakeup(h.clock.now()) <= START + timedelta(hours=12)  # type: ignore[union-attr]
    h.tick(START + timedelta(hours=12))  # Jan 6 00:00: Jan 6's run is due
    runs = _by_date(h)
    assert runs[FIRST + timedelta(days=17)] == ("scheduled", "success")
    assert [kind for d, (kind, _) in runs.items() if d < FIRST + timedelta(days=4)] == ["scheduled"] * 4
