"""dagrun_timeout with the fake clock: an overdue run fails at its deadline, its unfinished instances skipped."""

from __future__ import annotations

from datetime import timedelta

from dagrunner.persistence.audit import TASK, Change, TaskRef, transition
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.operations import trigger_run
from dagrunner.states import TaskInstanceState

from .harness import START, Harness

#: `a` fails and retries in an hour; `b` waits for it; `c` succeeds at once.
SLOW = """
import pendulum
from datetime import timedelta
from dagrunner import DAG, task

with DAG("slow", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), dagrun_timeout={timeout}):
    @task(retries=3, retry_delay=timedelta(hours=1))
    def a():
        raise RuntimeError("not yet")

    @task
    def b():
        pass

    @task
    def c():
        pass

    a() >> b()
    c()
"""


def trigger(h: Harness, dag_id: str) -> str:
    """A manual run of `dag_id` at the clock's time; returns its run_id."""
    assert h.scheduler is not None
    with session_scope(h.engine) as s:
        return trigger_run(s, h.scheduler.dag_source.dags()[dag_id], actor="test", now=h.clock.now()).run_id


def test_an_overdue_run_fails_at_its_deadline_and_skips_what_it_had_not_finished(h: Harness) -> None:
    h.write_dag("slow.py", SLOW.format(timeout="timedelta(minutes=10)"))
    h.start()
    run_id = trigger(h, "slow")
    h.tick(START)
    assert h.states("slow", run_id) == {"a": "up_for_retry", "b": "none", "c": "success"}
    (run,) = h.runs("slow")
    assert run.start_date == START
    deadline = START + timedelta(minutes=10)
    # the deadline is a wake-up time of its own, before the retry due in an hour
    assert h.scheduler is not None and deadline in h.scheduler.bookkeeping.next_wakeups(with_due_runs=False)

    h.tick(deadline - timedelta(seconds=1))
    assert h.runs("slow")[0].state.value == "running"
    h.tick(deadline)
    (run,) = h.runs("slow")
    assert run.state.value == "failed" and run.end_date == deadline
    assert h.states("slow", run_id) == {"a": "skipped", "b": "skipped", "c": "success"}
    reason = "dagrun_timeout of 600s (0:10:00) exceeded"
    (failed,) = h.audit(event="run.state", new_state="failed")
    assert failed.reason == reason
    skipped = {(e.task_id, e.old_state) for e in h.audit(event="task.state", new_state="skipped")}
    assert skipped == {("a", "up_for_retry"), ("b", "none")}
    assert {e.reason for e in h.audit(event="task.state", new_state="skipped")} == {reason}
    h.advance(3600)  # the retry's time passes: nothing of the finished run moves again
    assert h.states("slow", run_id) == {"a": "skipped", "b": "skipped", "c": "success"}


def test_a_running_try_of_a_timed_out_run_is_fenced_out(h: Harness) -> None:
    """A queued or running instance is skipped too; its try's report no longer matches it."""
    h.write_dag("slow.py", SLOW.format(timeout="timedelta(minutes=10)"))
    h.start()
    run_id = trigger(h, "slow")
    h.tick(START)
    with session_scope(h.engine) as s:  # as a scheduler and a worker that hold b would have left it
        queued = TaskRef("slow", run_id, "b", -1, TaskInstanceState.NONE, 0)
        transition(s, TASK, [queued], Change(TaskInstanceState.QUEUED, START, "test", "by hand"))
        running = TaskRef("slow", run_id, "b", -1, TaskInstanceState.QUEUED, 0)
        transition(s, TASK, [running], Change(TaskInstanceState.RUNNING, START, "test", "by hand"))
    h.tick(START + timedelta(minutes=10))
    assert h.states("slow", run_id)["b"] == "skipped"
    assert ("b", "running") in {(e.task_id, e.old_state) for e in h.audit(event="task.state", new_state="skipped")}
    assert h.runs("slow")[0].state.value == "failed"


def test_the_deadline_counts_from_the_start_across_retries(h: Harness) -> None:
    h.write_dag("slow.py", SLOW.format(timeout="timedelta(hours=3)"))
    h.start()
    run_id = trigger(h, "slow")
    h.tick(START)
    h.tick(START + timedelta(hours=1, seconds=1))  # a's retry fails again: up for retry at +2h
    assert h.states("slow", run_id)["a"] == "up_for_retry"
    h.tick(START + timedelta(hours=3))  # the deadline is reached before the retry at +2h+: failed
    assert h.runs("slow")[0].state.value == "failed"


def test_without_a_dagrun_timeout_a_run_waits_as_long_as_it_takes(h: Harness) -> None:
    h.write_dag("slow.py", SLOW.format(timeout="None"))
    h.start()
    run_id = trigger(h, "slow")
    h.tick(START)
    h.tick(START + timedelta(minutes=30))
    assert h.runs("slow")[0].state.value == "running"
    assert h.states("slow", run_id)["a"] == "up_for_retry"


QUICK = """
import pendulum
from datetime import timedelta
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("quick", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         dagrun_timeout=timedelta(minutes=1)):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


def test_a_run_done_before_its_deadline_stays_successful(h: Harness) -> None:
    h.write_dag("quick.py", QUICK)
    h.start()
    trigger(h, "quick")
    h.tick(START)
    h.tick(START + timedelta(minutes=2))
    (run,) = h.runs("quick")
    assert run.state.value == "success"
    assert h.audit(event="task.state", new_state="skipped") == []


#: `reserve` succeeds (undone by `release`), `charge` keeps failing and retries in an hour.
TIMED_SAGA = """
import pendulum
from datetime import timedelta
from dagrunner import DAG, task

with DAG("timed_saga", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         dagrun_timeout=timedelta(minutes=10)):
    @task
    def reserve():
        return "resv-1"

    @task
    def release(compensation):
        return f"released {compensation['result']}"

    @task(retries=3, retry_delay=timedelta(hours=1))
    def charge():
        raise RuntimeError("the provider is down")

    reserve().compensate_with(release()) >> charge()
"""


def test_a_timed_out_run_rolls_back_its_succeeded_steps_before_it_fails(h: Harness) -> None:
    """A timed-out run has failed for good: its compensations run (they are not timed out), then it fails."""
    h.write_dag("timed_saga.py", TIMED_SAGA)
    h.start()
    run_id = trigger(h, "timed_saga")
    h.tick(START)
    assert h.states("timed_saga", run_id) == {"reserve": "success", "charge": "up_for_retry"}
    deadline = START + timedelta(minutes=10)
    h.tick(deadline)
    h.tick(deadline + timedelta(seconds=1))
    (run,) = h.runs("timed_saga")
    assert h.states("timed_saga", run_id) == {"reserve": "success", "charge": "skipped", "release": "success"}
    assert run.state.value == "failed"
    (started,) = h.audit(event="compensation.started")
    assert started.task_id == "reserve"
    assert [e.reason for e in h.audit(event="run.state", new_state="failed")] == [
        "dagrun_timeout of 600s (0:10:00) exceeded"
    ]
