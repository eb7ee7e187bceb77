"""PokeReturnValue, reschedule mode's one poke per try, BashSensor and `@task.sensor` (no database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagrunner import DAG, task
from dagrunner.authoring.sensors import run_poke_loop
from dagrunner.authoring.sensors.decorated import DecoratedSensorOperator
from dagrunner.errors import FailTask, InvalidArgumentError, RescheduleTask
from dagrunner.sensors import BashSensor, PokeReturnValue, PythonSensor


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


def make(cls: type, **kwargs: Any) -> Any:
    with DAG("etl"):
        return cls(task_id="wait", **kwargs)


# --- PokeReturnValue and the two modes -------------------------------------------------------------------


def test_poke_return_value_is_its_truth() -> None:
    assert PokeReturnValue(True, {"id": 1}) and not PokeReturnValue(False)
    assert repr(PokeReturnValue(False, 3)) == "PokeReturnValue(is_done=False, xcom_value=3)"


def test_poke_loop_returns_the_done_pokes_xcom_value() -> None:
    clock = FakeTime()
    answers = iter([PokeReturnValue(False, "early"), False, PokeReturnValue(True, {"rows": 3})])
    value = run_poke_loop(lambda: next(answers), task_id="w", poke_interval=10.0, timeout=100.0, soft_fail=False,
                          monotonic=clock.monotonic, sleep=clock.sleep)  # fmt: skip
    assert value == {"rows": 3} and clock.sleeps == [10.0, 10.0]


def test_reschedule_mode_pokes_once_and_says_not_yet_with_its_waiting_terms() -> None:
    calls: list[int] = []

    def check() -> PokeReturnValue:
        calls.append(1)
        return PokeReturnValue(len(calls) >= 2, xcom_value="ready")

    sensor = make(PythonSensor, python_callable=check, mode="reschedule", poke_interval=30, timeout=90, soft_fail=True)
    with pytest.raises(RescheduleTask) as info:
        sensor.execute({})
    assert (info.value.poke_interval, info.value.timeout, info.value.soft_fail) == (30.0, 90.0, True)
    assert len(calls) == 1, "one poke per try: no sleeping in reschedule mode"
    assert sensor.execute({}) == "ready"


def test_python_sensor_passes_a_poke_return_value_through() -> None:
    sensor = make(PythonSensor, python_callable=lambda: PokeReturnValue(True, [1, 2]))
    result = sensor.poke({})
    assert isinstance(result, PokeReturnValue) and result.xcom_value == [1, 2]
    assert make(PythonSensor, python_callable=lambda: "yes").poke({}) is True


# --- BashSensor ------------------------------------------------------------------------------------------


def test_bash_sensor_exit_zero_is_done_anything_else_not_yet(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    flag = tmp_path / "flag"
    sensor = make(BashSensor, bash_command=f"test -e {flag}")
    assert sensor.is_sensor and sensor.mode == "poke"
    assert sensor.poke({}) is False
    assert "exited with 1: not yet" in capfd.readouterr().out
    flag.touch()
    assert sensor.poke({}) is True
    assert make(BashSensor, bash_command="exit 99").poke({}) is False  # 99 does not skip a sensor


def test_bash_sensor_runs_in_cwd_with_env(tmp_path: Path) -> None:
    (tmp_path / "here.txt").write_text("x")
    sensor = make(BashSensor, bash_command='test -e here.txt && test "$COLOUR" = blue', cwd=str(tmp_path),
                  env={"COLOUR": "blue"})  # fmt: skip
    assert sensor.poke({}) is True
    assert make(BashSensor, bash_command='test "$COLOUR" = blue', env={"COLOUR": "red"}).poke({}) is False


def test_bash_sensor_retry_exit_code_narrows_not_yet_and_fails_on_the_rest() -> None:
    assert make(BashSensor, bash_command="exit 3", retry_exit_code=3).poke({}) is False
    with pytest.raises(FailTask, match="exited with 2, not 0 .done. or retry_exit_code 3"):
        make(BashSensor, bash_command="exit 2", retry_exit_code=3).poke({})


def test_bash_sensor_command_is_templated() -> None:
    sensor = make(BashSensor, bash_command="test {{ ds }} = 2026-01-05")
    sensor.render_template_fields({"ds": "2026-01-05"})
    assert sensor.bash_command == "test 2026-01-05 = 2026-01-05" and sensor.poke({}) is True


def test_bash_sensor_in_reschedule_mode_ends_the_try_on_not_yet() -> None:
    sensor = make(BashSensor, bash_command="false", mode="reschedule", poke_interval=5)
    with pytest.raises(RescheduleTask):
        sensor.execute({})


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"skip_on_exit_code": 99}, "skip_on_exit_code=99"),
        ({"retry_exit_code": 0}, "retry_exit_code=0"),
        ({"retry_exit_code": "3"}, "retry_exit_code='3'"),
        ({"bash_command": ""}, "bash_command=''"),
    ],
)
def test_bash_sensor_bad_arguments_name_the_value(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=named):
        make(BashSensor, **{"bash_command": "true", **kwargs})


# --- @task.sensor ----------------------------------------------------------------------------------------


def test_task_sensor_makes_a_sensor_whose_poke_is_the_function() -> None:
    with DAG("etl") as dag:

        @task
        def path() -> str:
            return "/in/orders.csv"

        @task.sensor(poke_interval=30, timeout=600, mode="reschedule", soft_fail=True)
        def arrived(filename: str, ti: Any = None) -> PokeReturnValue:
            return PokeReturnValue(filename.endswith(".csv"), xcom_value={"file": filename, "try": ti})

        arrived(path())

    sensor = dag.task_dict["arrived"]
    assert isinstance(sensor, DecoratedSensorOperator) and sensor.is_sensor
    assert (sensor.poke_interval, sensor.timeout, sensor.mode, sensor.soft_fail) == (30.0, 600.0, "reschedule", True)
    assert sensor.upstream_task_ids == {"path"}
    sensor.op_args = ["/in/orders.csv"]  # what rendering puts in place of the XComArg at run time
    result = sensor.poke({"ti": "TI"})
    assert isinstance(result, PokeReturnValue)
    assert (result.is_done, result.xcom_value) == (True, {"file": "/in/orders.csv", "try": "TI"})


def test_task_sensor_returning_a_bool_pokes_until_true() -> None:
    answers = iter([False, True])
    with DAG("etl") as dag:

        @task.sensor(poke_interval=0)
        def ready() -> bool:
            return next(answers)

        ready()

    assert dag.task_dict["ready"].execute({}) is None


def test_task_sensor_refuses_a_bad_mode_and_unknown_arguments() -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError, match="mode='sleep'"):

        @task.sensor(mode="sleep")
        def ready() -> bool:
            return True

        ready()
    with pytest.raises(InvalidArgumentError, match="poke_intervall"):

        @task.sensor(poke_intervall=5)
        def typo() -> bool:
            return True
