"""A `reschedule` sensor's try through each executor (inline, local) and database: a "not yet" ends the try
as `up_for_reschedule` and frees its executor; the decision between waiting again and timing out
(`rescheduling.judge`) on its own, with the time as an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dagrunner.errors import RescheduleTask
from dagrunner.execution.base import Executor
from dagrunner.execution.rescheduling import RescheduleAsk, judge
from dagrunner.execution.runner import run_task
from dagrunner.states import TaskInstanceState

from .conftest import Project
from .helpers import create_run, queue_try, run_one, state_path, ti_row, tries_of, xcoms_of

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

SENSORS = """
import pendulum
from pathlib import Path
from dagrunner import DAG
from dagrunner.sensors import PokeReturnValue, PythonSensor

FLAG = Path(__file__).parent / "flag"

def flag_there():
    return PokeReturnValue(FLAG.exists(), xcom_value={"seen": True})

with DAG("sensors", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonSensor(task_id="wait", python_callable=flag_there, mode="reschedule", poke_interval=45, timeout=3600)
"""


def test_not_yet_ends_the_try_up_for_reschedule_and_frees_the_executor(project: Project, executor: Executor) -> None:
    fileloc = project.dag_file("sensors.py", SENSORS)
    run = create_run(project.engine, "sensors", ["wait"])
    first = queue_try(project.engine, run, "wait", fileloc)
    event = run_one(executor, first)
    assert (event.kind, event.state) == ("finished", "up_for_reschedule")
    assert executor.slots_free >= 1 and not executor.running()
    ti = ti_row(project.engine, first.key)
    assert (ti.state, ti.try_number, ti.max_tries, ti.reschedule_count) == (
        TaskInstanceState.UP_FOR_RESCHEDULE,
        1,
        1,
        1,
    )
    assert ti.waiting_since == ti.start_date
    assert ti.next_try_at is not None and ti.end_date is not None
    assert ti.next_try_at == ti.end_date + timedelta(seconds=45)
    (row,) = tries_of(project.engine, first.key)
    assert (row.state.value, row.exit_code, row.error) == ("up_for_reschedule", 0, None)
    assert xcoms_of(project.engine, first.key) == {}  # a "not yet" pushes nothing

    (project.dags / "flag").touch()
    second = queue_try(project.engine, run, "wait", fileloc)
    assert run_one(executor, second).state == "success"
    assert xcoms_of(project.engine, second.key) == {"return_value": {"seen": True}}
    assert [t.state.value for t in tries_of(project.engine, second.key)] == ["up_for_reschedule", "success"]
    assert state_path(project.engine, second.key) == [
        ("none", "queued"), ("queued", "running"), ("running", "up_for_reschedule"),
        ("up_for_reschedule", "queued"), ("queued", "running"), ("running", "success"),
    ]  # fmt: skip


def test_the_runner_turns_reschedule_task_into_an_up_for_reschedule_outcome() -> None:
    class Sensor:
        """Enough of a task for run_task: its execute says not yet."""

        task_id = "wait"
        on_execute_callback = ()

        def render_template_fields(self, context: object, pull: object = None) -> None:
            pass

        def execute(self, context: object) -> None:
            raise RescheduleTask(task_id="wait", poke_interval=30.0, timeout=120.0, soft_fail=True)

    outcome = run_task(Sensor(), {})  # type: ignore[arg-type]
    assert (outcome.state, outcome.exit_code, outcome.fail_fast) == ("up_for_reschedule", 0, False)
    assert outcome.reschedule == RescheduleAsk(poke_interval=30.0, timeout=120.0, soft_fail=True)


ASK = RescheduleAsk(poke_interval=60.0, timeout=150.0, soft_fail=False)


@pytest.mark.parametrize(
    ("waited_s", "state", "next_poke_s"),
    [
        (0, TaskInstanceState.UP_FOR_RESCHEDULE, 60),  # now + poke_interval
        (60, TaskInstanceState.UP_FOR_RESCHEDULE, 120),
        (120, TaskInstanceState.UP_FOR_RESCHEDULE, 150),  # cut to the deadline: the last poke is at the timeout
        (149, TaskInstanceState.UP_FOR_RESCHEDULE, 150),
        (150, TaskInstanceState.FAILED, None),  # counted from the first poke, not from this try
        (9999, TaskInstanceState.FAILED, None),
    ],
)
def test_judge_waits_until_the_timeout_counted_from_the_first_poke(
    waited_s: float, state: TaskInstanceState, next_poke_s: float | None
) -> None:
    verdict = judge(ASK, task_id="wait", waiting_since=T0, now=T0 + timedelta(seconds=waited_s))
    assert verdict.state == state
    assert verdict.next_poke_at == (None if next_poke_s is None else T0 + timedelta(seconds=next_poke_s))
    assert ("timed out" in verdict.error) == (state == TaskInstanceState.FAILED)


def test_judge_soft_fail_skips_at_the_timeout() -> None:
    ask = RescheduleAsk(poke_interval=60.0, timeout=150.0, soft_fail=True)
    verdict = judge(ask, task_id="wait", waiting_since=T0, now=T0 + timedelta(seconds=150))
    assert verdict.state == TaskInstanceState.SKIPPED
    assert verdict.error == "sensor 'wait' timed out after 150s since its first poke at 2026-01-05T12:00:00+00:00 " \
                            "(timeout 150s)"  # fmt: skip


def test_a_reschedule_sensor_run_by_tasks_test_says_up_for_reschedule() -> None:
    from dagrunner.execution.recording import final_state
    from dagrunner.execution.retries import RetryPolicy

    assert final_state("up_for_reschedule", True, 1, 0, RetryPolicy.none()) == TaskInstanceState.UP_FOR_RESCHEDULE
