"""Deadlock detection with the fake clock: each way a run can be stuck for good here, and the look-alikes
that are only waiting (they must not be failed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import Pool

from .harness import START, Harness
from .test_run_timeouts import trigger

POOLED = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("pooled", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    first = EmptyOperator(task_id="first")
    stuck = EmptyOperator(task_id="stuck", pool="{pool}", pool_slots={slots})
    after = EmptyOperator(task_id="after")
    cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
    first >> stuck >> after >> cleanup
"""


def _add_pool(h: Harness, name: str, slots: int) -> None:
    with session_scope(h.engine) as s:
        s.add(Pool(name=name, slots=slots))


def _run_failed_with(h: Harness, dag_id: str, run_id: str) -> str:
    (run,) = [r for r in h.runs(dag_id) if r.run_id == run_id]
    assert run.state.value == "failed"
    (event,) = [e for e in h.audit(event="run.state", new_state="failed") if e.run_id == run_id]
    return event.reason or ""


def test_a_task_in_a_pool_that_does_not_exist_deadlocks_its_run(h: Harness) -> None:
    h.write_dag("pooled.py", POOLED.format(pool="nowhere", slots=1))
    h.start()
    run_id = trigger(h, "pooled")
    h.tick(START)
    reason = _run_failed_with(h, "pooled", run_id)
    assert reason == (
        "deadlocked: no task instance can ever run: stuck needs pool 'nowhere', which does not exist "
        "(2 more task instance(s) wait on these)"
    )
    # the culprit failed with its own reason, what waited on it is upstream_failed (cleanup never ran)
    assert h.states("pooled", run_id) == {
        "first": "success",
        "stuck": "failed",
        "after": "upstream_failed",
        "cleanup": "upstream_failed",
    }
    (stuck,) = [e for e in h.audit(event="task.state", task_id="stuck") if e.new_state == "failed"]
    assert stuck.reason == "deadlocked: needs pool 'nowhere', which does not exist"
    assert h.tries("pooled", "stuck") == []


def test_a_pool_too_small_for_the_task_deadlocks_and_a_clear_after_the_fix_runs_it(h: Harness) -> None:
    from dagrunner.scheduling.operations import clear, select_for_clear

    _add_pool(h, "tiny", 1)
    h.write_dag("pooled.py", POOLED.format(pool="tiny", slots=2))
    sched = h.start()
    run_id = trigger(h, "pooled")
    h.tick(START)
    assert "stuck needs 2 slot(s) of pool 'tiny', which has 1 in all" in _run_failed_with(h, "pooled", run_id)
    with session_scope(h.engine) as s:
        pool = s.query(Pool).filter_by(name="tiny").one()
        pool.slots = 2
        dag = sched.dag_source.dags()["pooled"]
        clear(s, dag, select_for_clear(s, dag, only_failed=True), actor="test", now=START)
    h.advance(sched.options.full_scan_s)
    assert set(h.states("pooled", run_id).values()) == {"success"}
    assert h.runs("pooled")[0].state.value == "success"


def test_a_pool_with_no_slots_deadlocks(h: Harness) -> None:
    _add_pool(h, "closed", 0)
    h.write_dag("pooled.py", POOLED.format(pool="closed", slots=1))
    h.start()
    run_id = trigger(h, "pooled")
    h.tick(START)
    assert "which has 0 in all" in _run_failed_with(h, "pooled", run_id)


PARALLEL = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("parallel", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    for i in range(3):
        EmptyOperator(task_id=f"t{i}", pool="one", pool_slots=1)
"""


def test_a_full_pool_is_not_a_deadlock(h: Harness) -> None:
    """Ready instances that wait for a slot another run holds wait; they are not failed."""
    _add_pool(h, "one", 1)
    h.write_dag("parallel.py", PARALLEL)
    h.start()
    first = trigger(h, "parallel")
    h.clock.set(START + timedelta(seconds=1))
    second = trigger(h, "parallel")
    h.tick(START + timedelta(seconds=1))
    assert {r.state.value for r in h.runs("parallel")} == {"success"}
    assert h.audit(event="run.state", new_state="failed") == []
    assert set(h.states("parallel", first).values()) == set(h.states("parallel", second).values()) == {"success"}


PAST = """
import pendulum
from datetime import timedelta
from pathlib import Path
from dagrunner import DAG, task

FLAG = Path({flag!r})

with DAG("past", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=True,
         max_active_runs={max_active_runs}):
    @task(depends_on_past=True, retries={retries}, retry_delay=timedelta(minutes=5))
    def step(ds=None):
        if ds == "2026-01-01" and not FLAG.exists():
            FLAG.write_text("failed once")
            raise RuntimeError("day 1 broken once")

    @task
    def report():
        pass

    step() >> report()
"""


def test_depends_on_past_on_a_finished_earlier_run_that_failed_deadlocks(h: Harness) -> None:
    h.write_dag("past.py", PAST.format(flag=str(h.root / "flag"), max_active_runs=16, retries=0))
    h.start()
    h.tick(datetime(2026, 1, 2, 12, tzinfo=UTC))
    day1, day2 = h.runs("past")
    assert day1.state.value == "failed"
    reason = _run_failed_with(h, "past", day2.run_id)
    assert reason == (
        "deadlocked: no task instance can ever run: step depends_on_past, and its instance in run "
        f"{day1.run_id} is failed (1 more task instance(s) wait on these)"
    )
    assert h.states("past", day2.run_id) == {"step": "failed", "report": "upstream_failed"}


def test_depends_on_past_on_an_earlier_run_still_retrying_is_not_a_deadlock(h: Harness) -> None:
    """Day 2 waits while day 1 is up for retry (its run is still active); day 1's retry succeeds, then
    day 2 runs. Nothing is failed on the way."""
    h.write_dag("past.py", PAST.format(flag=str(h.root / "flag"), max_active_runs=16, retries=1))
    h.start()
    h.tick(datetime(2026, 1, 2, 12, tzinfo=UTC))
    day1, day2 = h.runs("past")
    assert h.states("past", day1.run_id)["step"] == "up_for_retry"
    assert h.states("past", day2.run_id) == {"step": "none", "report": "none"}
    assert day2.state.value == "running"
    h.advance(300)
    assert {r.state.value for r in h.runs("past")} == {"success"}
    assert h.audit(event="run.state", new_state="failed") == []


MAPPED = """
import pendulum
from dagrunner import DAG, task

with DAG("mapped", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def nothing():
        return None

    @task
    def each(x):
        return x

    @task(trigger_rule="none_failed")
    def after():
        pass

    each.expand(x=nothing()) >> after()
"""


def test_a_mapped_task_over_a_missing_xcom_is_skipped_not_deadlocked(h: Harness) -> None:
    h.write_dag("mapped.py", MAPPED)
    h.start()
    run_id = trigger(h, "mapped")
    h.tick(START)
    assert h.states("mapped", run_id) == {"nothing": "success", "each": "skipped", "after": "success"}
    assert h.runs("mapped")[0].state.value == "success"
