"""Sensors: poke() of each built-in sensor, the poke loop with a fake clock, argument validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest

from dagrunner import DAG, SkipTask
from dagrunner.authoring.sensors import run_poke_loop
from dagrunner.errors import FailTask, InvalidArgumentError
from dagrunner.sensors import BaseSensorOperator, FileSensor, PythonSensor, SensorTimeout, TimeDeltaSensor


def make(cls: type[BaseSensorOperator], **kwargs: Any) -> Any:
    with DAG("etl"):
        return cls(task_id="wait", **kwargs)


def test_sensor_defaults_like_airflow() -> None:
    sensor = make(FileSensor, filepath="/x")
    assert (sensor.poke_interval, sensor.timeout, sensor.mode, sensor.soft_fail) == (
        60.0,
        7 * 86400.0,
        "poke",
        False,
    )
    assert sensor.is_sensor


@pytest.mark.parametrize(
    ("arg", "value"),
    [("poke_interval", -1), ("poke_interval", "1m"), ("timeout", -5), ("mode", "sleep"), ("soft_fail", 1)],
)
def test_sensor_argument_validation(arg: str, value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=f"{arg}="):
        make(FileSensor, filepath="/x", **{arg: value})


def test_sensor_durations_accept_timedeltas() -> None:
    sensor = make(FileSensor, filepath="/x", poke_interval=timedelta(minutes=2), timeout=30, mode="reschedule")
    assert (sensor.poke_interval, sensor.timeout, sensor.mode) == (120.0, 30.0, "reschedule")


def test_file_sensor_file_glob_and_directory(tmp_path: Path) -> None:
    file_sensor = make(FileSensor, filepath=str(tmp_path / "data_*.csv"))
    assert not file_sensor.poke({})
    (tmp_path / "data_1.csv").write_text("x")
    assert file_sensor.poke({})

    folder = tmp_path / "incoming"
    folder.mkdir()
    dir_sensor = make(FileSensor, filepath=str(folder))
    assert not dir_sensor.poke({})  # an empty directory does not count
    (folder / "part-0").write_text("x")
    assert dir_sensor.poke({})


def test_file_sensor_templated_path(tmp_path: Path) -> None:
    sensor = make(FileSensor, filepath=str(tmp_path) + "/{{ ds }}.csv")
    sensor.render_template_fields({"ds": "2026-01-05"})
    (tmp_path / "2026-01-05.csv").write_text("x")
    assert sensor.poke({})


def test_python_sensor_calls_with_context() -> None:
    seen: list[str] = []

    def ready(threshold: int, ds: str) -> int:
        seen.append(ds)
        return len(seen) >= threshold

    sensor = make(PythonSensor, python_callable=ready, op_kwargs={"threshold": 2})
    assert sensor.poke({"ds": "d"}) is False
    assert sensor.poke({"ds": "d"}) is True
    assert seen == ["d", "d"]


def test_time_delta_sensor_is_due_with_time_as_argument() -> None:
    end = pendulum.datetime(2026, 1, 5, tz="UTC")
    sensor = make(TimeDeltaSensor, delta=timedelta(hours=1))
    context = {"data_interval_end": end}
    assert sensor.target_time(context) == end + timedelta(hours=1)
    assert not sensor.is_due(context, end + timedelta(minutes=59))
    assert sensor.is_due(context, end + timedelta(hours=1))
    assert sensor.poke({"data_interval_end": pendulum.datetime(2000, 1, 1)})
    assert not sensor.poke({"data_interval_end": pendulum.datetime(2999, 1, 1)})
    assert sensor.poke({"logical_date": pendulum.datetime(2000, 1, 1)})  # manual runs without an interval end


def test_time_delta_sensor_needs_an_anchor_and_a_valid_delta() -> None:
    sensor = make(TimeDeltaSensor, delta=60)
    with pytest.raises(ValueError, match="needs data_interval_end"):
        sensor.poke({})
    with pytest.raises(InvalidArgumentError, match="delta="):
        make(TimeDeltaSensor, delta="1h")


class FakeTime:
    """A monotonic clock that only moves when the poke loop sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def loop(results: list[bool], *, timeout: float = 100.0, soft_fail: bool = False) -> FakeTime:
    clock = FakeTime()
    answers = iter(results)
    run_poke_loop(
        lambda: next(answers),
        task_id="wait",
        poke_interval=30.0,
        timeout=timeout,
        soft_fail=soft_fail,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    return clock


def test_poke_loop_returns_once_the_condition_holds() -> None:
    assert loop([False, False, True]).sleeps == [30.0, 30.0]
    assert loop([True]).sleeps == []


def test_poke_loop_times_out_as_fail_task_without_retries() -> None:
    with pytest.raises(SensorTimeout, match="sensor 'wait' timed out after 100s") as info:
        loop([False] * 10, timeout=100.0)
    assert isinstance(info.value, FailTask)


def test_poke_loop_soft_fail_skips() -> None:
    with pytest.raises(SkipTask, match="timed out"):
        loop([False] * 10, timeout=45.0, soft_fail=True)


def test_poke_loop_last_sleep_is_cut_to_the_timeout() -> None:
    clock = FakeTime()
    with pytest.raises(SensorTimeout):
        run_poke_loop(
            lambda: False,
            task_id="w",
            poke_interval=30.0,
            timeout=45.0,
            soft_fail=False,
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        )
    assert clock.sleeps == [30.0, 15.0]


def test_sensor_execute_pokes_until_true() -> None:
    calls = iter([False, True])
    sensor = make(PythonSensor, python_callable=lambda: next(calls), poke_interval=0)
    assert sensor.execute({}) is None


def test_base_sensor_poke_must_be_implemented() -> None:
    sensor = make(BaseSensorOperator)
    with pytest.raises(NotImplementedError):
        sensor.poke({})
