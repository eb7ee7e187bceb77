"""A running try whose instance is marked by hand is stopped: the real local executor's worker finds, at its
next heartbeat, that the instance no longer runs its try, kills the try's process group, and the late
outcome is fenced out (the try row closed, `try.closed` audited); the run goes on and completes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from polling import wait_until
from sqlalchemy import Engine

from dagrunner.clock import SystemClock
from dagrunner.execution.local import LocalExecutor
from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.dag_source import FixedDagSource
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.overrides import apply_task_state, plan_task_state
from dagrunner.scheduling.scheduler import Scheduler

from .harness import Harness

pytestmark = pytest.mark.slow

HEARTBEAT_S = 0.3
SLOW = """
import os, time
import pendulum
from pathlib import Path
from dagrunner import DAG, task

HERE = Path(__file__).parent

@task
def slow():
    (HERE / "slow.pid").write_text(str(os.getpid()))
    time.sleep(120)
    (HERE / "slow.done").write_text("the body ran to its end")

@task
def after():
    return "ran"

with DAG("slowpoke", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    slow() >> after()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_marking_a_running_try_success_stops_it_and_the_run_completes(h: Harness, migrated_engine: Engine) -> None:
    h.write_dag("slowpoke.py", SLOW)
    bag = load_dagbag(h.settings, h.engine)
    assert not bag.failures, bag.failures
    dag = bag.dags["slowpoke"]
    executor = LocalExecutor(h.settings, actor="worker-test", parallelism=2, heartbeat_s=HEARTBEAT_S)
    sched = Scheduler(engine=h.engine, executor=executor, dag_source=FixedDagSource(bag.dags), clock=SystemClock(),
                      actor="scheduler-test")  # fmt: skip
    sched.start()
    try:
        with session_scope(h.engine) as s:
            run_id = trigger_run(s, dag, actor="test", now=datetime.now(UTC)).run_id

        def step() -> None:
            sched.tick()
            sched.wait(sched.next_wakeup(sched.clock.now()))

        pid_file = h.settings.dags_folder / "slow.pid"
        wait_until(lambda: (step(), pid_file.exists() and h.states("slowpoke")["slow"] == "running")[1],
                   what="the slow task to run", timeout=60)  # fmt: skip
        pid = int(pid_file.read_text())
        assert _alive(pid)

        marked_at = time.monotonic()
        with session_scope(h.engine) as s:
            plan = plan_task_state(s, dag, run_id, "slow", "success")
            apply_task_state(s, dag, plan, reason="done by hand", actor="alice@host", now=datetime.now(UTC))
        wait_until(lambda: not _alive(pid), what="the try's process to be killed", timeout=10 * HEARTBEAT_S + 5)
        stopped_after = time.monotonic() - marked_at
        wait_until(lambda: (step(), h.runs("slowpoke")[0].state == "success")[1], what="the run to finish", timeout=60)
    finally:
        sched.shutdown(5.0)
    assert stopped_after < 10 * HEARTBEAT_S + 2  # within a few heartbeats, not the task's 120 s
    assert h.states("slowpoke") == {"slow": "success", "after": "success"}
    assert not (h.settings.dags_folder / "slow.done").exists()
    (attempt,) = h.tries("slowpoke", "slow")
    assert attempt.state == "failed" and attempt.end_date is not None
    assert "no longer runs this try" in (attempt.error or "") and "it is success" in (attempt.error or "")
    (closed,) = h.audit(event="try.closed", task_id="slow")
    assert closed.new_state == "failed" and "after its instance moved on" in (closed.reason or "")
    marks = [r for r in h.audit(event="task.state", task_id="slow") if r.actor == "alice@host"]
    assert [(r.old_state, r.new_state) for r in marks] == [("running", "success")]
