"""DateTimeSensor, TimeSensor, WeekDay, BranchDayOfWeekOperator and BranchDateTimeOperator: their decisions
with the time as an argument, and DAGs using them run by the scheduler to the states they choose."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pendulum
import pytest

from dagrunner import DAG
from dagrunner.errors import InvalidArgumentError
from dagrunner.operators import BranchDateTimeOperator, BranchDayOfWeekOperator, EmptyOperator, WeekDay
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.operations import trigger_run
from dagrunner.sensors import DateTimeSensor, TimeSensor

from .harness import START, Harness

MONDAY_NOON = pendulum.datetime(2026, 1, 5, 12, tz="UTC")  # START: a Monday


def _in_dag(cls: type, tz: str = "UTC", **kwargs: Any) -> Any:
    with DAG("t", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz=tz)):
        EmptyOperator(task_id="yes")
        EmptyOperator(task_id="no")
        return cls(task_id="op", **kwargs)


# --- WeekDay -------------------------------------------------------------------------------------------


def test_weekday_numbers_names_and_sets() -> None:
    assert WeekDay.MONDAY == 1 and WeekDay.SUNDAY == 7
    assert WeekDay.get_weekday_number("friday") == 5
    assert WeekDay.convert(WeekDay.TUESDAY) == 2
    assert WeekDay.validate_week_day("Saturday") == {6}
    assert WeekDay.validate_week_day({WeekDay.SATURDAY, "sunday"}) == {6, 7}
    with pytest.raises(AttributeError, match='Invalid Week Day passed: "Caturday"'):
        WeekDay.get_weekday_number("Caturday")
    with pytest.raises(TypeError):
        WeekDay.validate_week_day(3)  # type: ignore[arg-type]


# --- decisions with the time as an argument --------------------------------------------------------------


def test_branch_day_of_week_uses_now_or_the_logical_date_in_the_dags_timezone() -> None:
    op = _in_dag(BranchDayOfWeekOperator, week_day=[WeekDay.SATURDAY, WeekDay.SUNDAY],
                 follow_task_ids_if_true="yes", follow_task_ids_if_false=["no"])  # fmt: skip
    assert op.choose_branch({}, datetime(2026, 1, 10, 9, tzinfo=UTC)) == ["yes"]  # a Saturday
    assert op.choose_branch({}, MONDAY_NOON) == ["no"]
    # Sunday 23:30 UTC is Monday 00:30 in Amsterdam: the DAG's day counts.
    amsterdam = _in_dag(BranchDayOfWeekOperator, tz="Europe/Amsterdam", week_day="monday",
                        follow_task_ids_if_true="yes", follow_task_ids_if_false="no", use_task_logical_date=True)  # fmt: skip
    assert amsterdam.choose_branch({"logical_date": datetime(2026, 1, 4, 23, 30, tzinfo=UTC)}, MONDAY_NOON) == ["yes"]
    with pytest.raises(InvalidArgumentError, match="week_day"):
        _in_dag(BranchDayOfWeekOperator, week_day="Caturday", follow_task_ids_if_true="yes",
                follow_task_ids_if_false="no")  # fmt: skip


def test_branch_date_time_window_with_times_datetimes_and_open_ends() -> None:
    def choose(now: datetime, **kwargs: Any) -> list[str]:
        op = _in_dag(BranchDateTimeOperator, follow_task_ids_if_true="yes", follow_task_ids_if_false="no", **kwargs)
        return list(op.choose_branch({}, now))

    assert choose(MONDAY_NOON, target_lower=time(11), target_upper=time(13)) == ["yes"]
    assert choose(MONDAY_NOON, target_lower=time(13), target_upper=time(14)) == ["no"]
    assert choose(MONDAY_NOON, target_lower=time(12), target_upper=time(12)) == ["yes"]  # both ends included
    # An upper time before the lower one: the window crosses midnight.
    assert choose(MONDAY_NOON.replace(hour=23), target_lower=time(22), target_upper=time(2)) == ["yes"]
    assert choose(MONDAY_NOON, target_lower=time(22), target_upper=time(2)) == ["no"]
    assert choose(MONDAY_NOON, target_lower=None, target_upper=datetime(2026, 1, 6)) == ["yes"]
    assert choose(MONDAY_NOON, target_lower=datetime(2026, 1, 6), target_upper=None) == ["no"]
    with pytest.raises(InvalidArgumentError, match="both are None"):
        choose(MONDAY_NOON, target_lower=None, target_upper=None)


def test_date_time_sensor_is_due_after_its_target() -> None:
    sensor = _in_dag(DateTimeSensor, target_time="2026-01-05T12:00:00")  # naive: the DAG's timezone (UTC)
    assert not sensor.is_due(MONDAY_NOON) and sensor.is_due(MONDAY_NOON + timedelta(seconds=1))
    assert _in_dag(DateTimeSensor, target_time=MONDAY_NOON).is_due(MONDAY_NOON + timedelta(minutes=1))
    with pytest.raises(InvalidArgumentError, match="target_time"):
        _in_dag(DateTimeSensor, target_time=5)


def test_time_sensor_targets_the_time_on_the_runs_day_in_the_dags_timezone() -> None:
    sensor = _in_dag(TimeSensor, tz="Europe/Amsterdam", target_time=time(18))
    context = {"data_interval_end": MONDAY_NOON, "logical_date": MONDAY_NOON}
    assert sensor.target_datetime(context) == datetime(2026, 1, 5, 17, tzinfo=UTC)  # 18:00 CET
    assert not sensor.is_due(context, datetime(2026, 1, 5, 16, 59, tzinfo=UTC))
    assert sensor.is_due(context, datetime(2026, 1, 5, 17, 0, 1, tzinfo=UTC))
    with pytest.raises(InvalidArgumentError, match="datetime.time"):
        _in_dag(TimeSensor, target_time="18:00")


# --- run by the scheduler ------------------------------------------------------------------------------

DAG_FILE = """
import pendulum
from datetime import datetime, time, timedelta
from dagrunner import DAG
from dagrunner.operators import BranchDateTimeOperator, BranchDayOfWeekOperator, EmptyOperator, WeekDay
from dagrunner.sensors import DateTimeSensor, TimeSensor

with DAG("timely", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    past = DateTimeSensor(task_id="past", target_time="{{ logical_date }}", poke_interval=1)
    future = DateTimeSensor(task_id="future", target_time="{{ macros.datetime(2999, 1, 1).isoformat() }}",
                            mode="reschedule", poke_interval=60, timeout=120, soft_fail=True)
    after_midnight = TimeSensor(task_id="after_midnight", target_time=time(0, 0), mode="reschedule")
    day = BranchDayOfWeekOperator(task_id="day", week_day=WeekDay.MONDAY, use_task_logical_date=True,
                                  follow_task_ids_if_true="monday", follow_task_ids_if_false="other_day")
    window = BranchDateTimeOperator(task_id="window", target_lower=time(11), target_upper=time(13),
                                    use_task_logical_date=True, follow_task_ids_if_true=["lunch"],
                                    follow_task_ids_if_false="work")
    past >> day >> [EmptyOperator(task_id="monday"), EmptyOperator(task_id="other_day")]
    after_midnight >> window >> [EmptyOperator(task_id="lunch"), EmptyOperator(task_id="work")]
"""


def test_a_dag_of_time_sensors_and_branches_runs_to_the_states_they_choose(h: Harness) -> None:
    h.write_dag("timely.py", DAG_FILE)
    sched = h.start()
    with session_scope(h.engine) as s:
        run_id = trigger_run(s, sched.dag_source.dags()["timely"], actor="test", now=START, logical_date=START).run_id
    h.tick()
    states = h.states("timely", run_id)
    assert states == {
        "past": "success", "future": "up_for_reschedule", "after_midnight": "success",
        "day": "success", "monday": "success", "other_day": "skipped",
        "window": "success", "lunch": "success", "work": "skipped",
    }  # fmt: skip
    h.advance(60)
    h.advance(60)  # past its 120 s timeout with soft_fail: skipped
    assert h.states("timely", run_id)["future"] == "skipped"
    assert h.runs("timely")[0].state.value == "success"
