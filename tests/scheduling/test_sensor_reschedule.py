"""`reschedule` sensors on the fake clock, on SQLite and PostgreSQL: each "not yet" ends the try and frees
its slot, the next poke is a new try `poke_interval` later that uses no retry, and the timeout counts from
the first poke across those tries."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import TaskInstance, XCom
from dagrunner.scheduling.operations import clear, explain_instance, select_for_clear, trigger_run
from dagrunner.scheduling.scheduler import Scheduler

from .harness import START, Harness

#: `wait` pokes until the flag file exists, logging each poke with the reschedule count it was told.
WAITING = """
import pendulum
from pathlib import Path
from dagrunner import DAG, task
from dagrunner.sensors import PythonSensor

FLAG = Path({flag!r})
LEDGER = Path({ledger!r})

def note(line):
    with LEDGER.open("a") as fh:
        fh.write(line + "\\n")

def flag_is_there(ti, task_reschedule_count):
    note(f"poke try={{ti.try_number}} count={{task_reschedule_count}}")
    return FLAG.exists()

with DAG("waiting", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    wait = PythonSensor(task_id="wait", python_callable=flag_is_there, mode="reschedule", poke_interval=60,
                        timeout={timeout}, soft_fail={soft_fail}, retries={retries}, retry_delay=10,
                        priority_weight=10)

    @task
    def after():
        note("after")

    @task(priority_weight=1)
    def other():
        note("other")

    wait >> after()
    other()
"""


def _waiting(h: Harness, *, timeout: float = 600, soft_fail: bool = False, retries: int = 0) -> tuple[Path, Path]:
    flag, ledger = h.root / "flag", h.root / "ledger.txt"
    h.write_dag(
        "waiting.py",
        WAITING.format(flag=str(flag), ledger=str(ledger), timeout=timeout, soft_fail=soft_fail, retries=retries),
    )
    return flag, ledger


def _trigger(h: Harness, sched: Scheduler, dag_id: str) -> str:
    with session_scope(h.engine) as s:
        return trigger_run(s, sched.dag_source.dags()[dag_id], actor="test", now=h.clock.now()).run_id


def _ti(h: Harness, dag_id: str, task_id: str) -> TaskInstance:
    with session_scope(h.engine, readonly=True) as s:
        return s.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id)
        ).one()


def _lines(ledger: Path) -> list[str]:
    return ledger.read_text().splitlines()


def test_each_not_yet_is_a_try_and_the_next_poke_comes_poke_interval_later(h: Harness) -> None:
    flag, ledger = _waiting(h)
    sched = h.start()
    _trigger(h, sched, "waiting")
    h.tick()
    wait = _ti(h, "waiting", "wait")
    assert wait.state.value == "up_for_reschedule"
    assert (wait.try_number, wait.max_tries, wait.reschedule_count) == (1, 1, 1)
    assert wait.next_try_at == START + timedelta(seconds=60)
    assert wait.waiting_since == START

    h.advance(59)  # not due yet: no new try
    assert _lines(ledger).count("poke try=1 count=0") == 1 and "poke try=2 count=1" not in _lines(ledger)
    h.advance(1)
    wait = _ti(h, "waiting", "wait")
    assert (wait.state.value, wait.try_number, wait.reschedule_count) == ("up_for_reschedule", 2, 2)
    assert wait.next_try_at == START + timedelta(seconds=120)
    assert wait.waiting_since == START  # the first poke's time, kept across tries

    flag.touch()
    h.advance(60)
    assert h.states("waiting") == {"wait": "success", "after": "success", "other": "success"}
    pokes = [line for line in _lines(ledger) if line.startswith("poke")]
    assert pokes == ["poke try=1 count=0", "poke try=2 count=1", "poke try=3 count=2"]
    tries = h.tries("waiting", "wait")
    assert [(t.try_number, t.state.value) for t in tries] == [
        (1, "up_for_reschedule"), (2, "up_for_reschedule"), (3, "success"),
    ]  # fmt: skip
    # Three tries with retries=0: waiting used none of them.
    assert _ti(h, "waiting", "wait").max_tries == 2
    changes = [(a.old_state, a.new_state) for a in h.audit(event="task.state", task_id="wait")]
    assert changes.count(("running", "up_for_reschedule")) == 2
    rescheduled = next(a for a in h.audit(event="task.state", task_id="wait") if a.new_state == "up_for_reschedule")
    assert rescheduled.detail == {
        "next_try_at": (START + timedelta(seconds=60)).isoformat(), "reschedule_count": 1,
        "waiting_since": START.isoformat(),
    }  # fmt: skip
    assert "next poke at" in (rescheduled.reason or "")


def test_a_waiting_sensor_holds_no_slot_so_other_work_runs_between_pokes(h: Harness) -> None:
    """Parallelism 1: the one slot goes to `other` while the sensor waits between its pokes."""
    flag, ledger = _waiting(h)
    h.settings = dataclasses.replace(h.settings, parallelism=1)
    sched = h.start()
    _trigger(h, sched, "waiting")
    h.tick(settle=False)  # one tick, one slot: the sensor (higher priority) pokes first
    assert h.states("waiting") == {"wait": "up_for_reschedule", "after": "none", "other": "scheduled"}
    h.tick()
    assert h.states("waiting") == {"wait": "up_for_reschedule", "after": "none", "other": "success"}
    flag.touch()
    h.advance(60)
    assert _lines(ledger) == ["poke try=1 count=0", "other", "poke try=2 count=1", "after"]
    assert h.states("waiting") == {"wait": "success", "after": "success", "other": "success"}


def test_the_timeout_counts_from_the_first_poke_across_reschedules_and_fails_without_retries(h: Harness) -> None:
    _, ledger = _waiting(h, timeout=150, retries=2)
    sched = h.start()
    _trigger(h, sched, "waiting")
    h.tick()
    h.advance(60)
    h.advance(60)
    wait = _ti(h, "waiting", "wait")
    assert (wait.state.value, wait.reschedule_count) == ("up_for_reschedule", 3)
    assert wait.next_try_at == START + timedelta(seconds=150)  # capped at the deadline, not 180
    h.advance(30)
    assert h.states("waiting") == {"wait": "failed", "after": "upstream_failed", "other": "success"}
    tries = h.tries("waiting", "wait")
    assert [t.state.value for t in tries] == ["up_for_reschedule"] * 3 + ["failed"]
    assert "SensorTimeout: sensor 'wait' timed out after 150s" in (tries[-1].error or "")
    assert len([line for line in _lines(ledger) if line.startswith("poke")]) == 4


def test_soft_fail_skips_the_sensor_at_its_timeout(h: Harness) -> None:
    _waiting(h, timeout=90, soft_fail=True)
    sched = h.start()
    _trigger(h, sched, "waiting")
    h.tick()
    h.advance(60)
    h.advance(30)
    assert h.states("waiting") == {"wait": "skipped", "after": "skipped", "other": "success"}
    (run,) = h.runs("waiting")
    assert run.state.value == "success"


FLAKY_POKE = """
import pendulum
from pathlib import Path
from dagrunner import DAG
from dagrunner.sensors import PythonSensor

LEDGER = Path({ledger!r})

def poke(ti):
    with LEDGER.open("a") as fh:
        fh.write(f"{{ti.try_number}}\\n")
    if ti.try_number == 2:
        raise RuntimeError("the service answered 503")
    return ti.try_number >= 4

with DAG("flaky_poke", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonSensor(task_id="wait", python_callable=poke, mode="reschedule", poke_interval=60, timeout=3600,
                 retries=1, retry_delay=30)
"""


def test_a_poke_that_raises_uses_a_retry_and_the_wait_goes_on_from_the_first_poke(h: Harness) -> None:
    h.write_dag("flaky_poke.py", FLAKY_POKE.format(ledger=str(h.root / "ledger.txt")))
    sched = h.start()
    _trigger(h, sched, "flaky_poke")
    h.tick()  # try 1: not yet
    h.advance(60)  # try 2 raises: a retry, 30 s later
    wait = _ti(h, "flaky_poke", "wait")
    assert (wait.state.value, wait.reschedule_count, wait.waiting_since) == ("up_for_retry", 1, START)
    h.advance(30)  # try 3: not yet
    h.advance(60)  # try 4: done
    tries = h.tries("flaky_poke", "wait")
    assert [t.state.value for t in tries] == ["up_for_reschedule", "up_for_retry", "up_for_reschedule", "success"]
    wait = _ti(h, "flaky_poke", "wait")
    assert (wait.reschedule_count, wait.waiting_since) == (2, START)


def test_tasks_why_names_the_next_poke_and_a_clear_resets_the_wait(h: Harness) -> None:
    flag, _ = _waiting(h)
    sched = h.start()
    run_id = _trigger(h, sched, "waiting")
    h.tick()
    h.advance(60)
    dag = sched.dag_source.dags()["waiting"]
    with session_scope(h.engine, readonly=True) as s:
        why = explain_instance(s, dag, run_id, "wait", -1, START + timedelta(seconds=90))
    blocked = [c for c in why.checks if not c.passed]
    assert [(c.rule, c.reason) for c in blocked] == [
        ("next_poke", "waiting for its next poke at 12:02:00 (reschedule 2), 30s from now")
    ]
    flag.touch()
    h.advance(60)
    with session_scope(h.engine) as s:
        clear(s, dag, select_for_clear(s, dag, task_regex="^wait$"), actor="test", now=h.clock.now())
    wait = _ti(h, "waiting", "wait")
    assert (wait.state.value, wait.reschedule_count, wait.waiting_since) == ("none", 0, None)


POKE_VALUE = """
import pendulum
from dagrunner import DAG, task
from dagrunner.sensors import PokeReturnValue

with DAG("poke_value", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task.sensor(poke_interval=30, timeout=300, mode="reschedule")
    def order_ready(ti=None):
        if ti.try_number < 2:
            return PokeReturnValue(is_done=False, xcom_value="not this one")
        return PokeReturnValue(is_done=True, xcom_value={"order_id": 42})

    @task
    def ship(order):
        return order["order_id"] + 1

    ship(order_ready())
"""


def test_a_done_poke_return_value_becomes_the_sensors_xcom(h: Harness) -> None:
    h.write_dag("poke_value.py", POKE_VALUE)
    sched = h.start()
    _trigger(h, sched, "poke_value")
    h.tick()
    assert h.states("poke_value") == {"order_ready": "up_for_reschedule", "ship": "none"}
    h.advance(30)
    assert h.states("poke_value") == {"order_ready": "success", "ship": "success"}
    with session_scope(h.engine, readonly=True) as s:
        xcoms = {(x.task_id, x.key): x.value for x in s.scalars(select(XCom))}
    assert xcoms == {("order_ready", "return_value"): {"order_id": 42}, ("ship", "return_value"): 43}
