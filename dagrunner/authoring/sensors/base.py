"""BaseSensorOperator: a task that waits until `poke(context)` says the condition holds.

Sensors declare *how* to wait (poke_interval, timeout, mode, soft_fail):

- `poke` mode holds the worker slot and re-checks in-process every `poke_interval` (`run_poke_loop`);
- `reschedule` mode pokes once per try: a "not yet" raises `RescheduleTask`, which ends the try and frees
  the slot; the worker records the instance `up_for_reschedule` and the scheduler queues the next poke, a
  new try that uses no retry, `poke_interval` later (docs/patterns/sensors.md). The timeout then counts
  from the first poke across those tries, and is judged where the try is recorded, on that clock
  (`execution.rescheduling`).

Either way a timeout fails the task without retries, as in Airflow, or skips it with `soft_fail`. `poke`
may return a bool or a `PokeReturnValue`, whose `xcom_value` becomes the task's return value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.errors import FailTask, RescheduleTask, SkipTask

SENSOR_MODES = ("poke", "reschedule")


class SensorTimeout(FailTask):  # noqa: N818 - a signal like FailTask, named as Airflow's AirflowSensorTimeout
    """The sensor's condition did not hold within its timeout (fails the task, no retries)."""


class PokeReturnValue:
    """What a poke may return instead of a bool: whether the condition holds, and the value to push as the
    task's `return_value` XCom once it does (Airflow's `PokeReturnValue`)."""

    def __init__(self, is_done: bool, xcom_value: Any | None = None) -> None:
        self.is_done = bool(is_done)
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return self.is_done

    def __repr__(self) -> str:
        return f"PokeReturnValue(is_done={self.is_done!r}, xcom_value={self.xcom_value!r})"


def poke_result(value: Any) -> tuple[bool, Any]:
    """(done, xcom value) of what a poke returned: a PokeReturnValue, or anything taken as its truth."""
    if isinstance(value, PokeReturnValue):
        return value.is_done, value.xcom_value
    return bool(value), None


class BaseSensorOperator(BaseOperator):
    """Subclasses implement `poke(context) -> bool | PokeReturnValue`."""

    is_sensor = True

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60.0,
        timeout: timedelta | float = timedelta(days=7),
        mode: str = "poke",
        soft_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        self.poke_interval: float = check.duration("poke_interval", poke_interval).total_seconds()
        self.timeout: float = check.duration("timeout", timeout).total_seconds()
        self.mode: str = check.choice("mode", mode, SENSOR_MODES)
        self.soft_fail = check.boolean("soft_fail", soft_fail)

    def poke(self, context: Mapping[str, Any]) -> bool | PokeReturnValue:
        """True (or a done PokeReturnValue) when the condition the sensor waits for holds."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke(self, context)")

    def execute(self, context: Mapping[str, Any]) -> Any:
        """Wait as the mode says; the return value is the done poke's `xcom_value` (None for a bool)."""
        if self.mode == "reschedule":
            done, value = poke_result(self.poke(context))
            if not done:
                raise RescheduleTask(
                    task_id=self.task_id, poke_interval=self.poke_interval, timeout=self.timeout,
                    soft_fail=self.soft_fail,
                )  # fmt: skip
            return value
        return run_poke_loop(
            lambda: self.poke(context),
            task_id=self.task_id,
            poke_interval=self.poke_interval,
            timeout=self.timeout,
            soft_fail=self.soft_fail,
            monotonic=time.monotonic,
            sleep=time.sleep,
        )


def run_poke_loop(
    poke: Callable[[], bool | PokeReturnValue],
    *,
    task_id: str,
    poke_interval: float,
    timeout: float,
    soft_fail: bool,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
) -> Any:
    """Poke until done and return the done poke's xcom value; past `timeout` seconds raise SensorTimeout
    (SkipTask when soft_fail).

    The clock and the sleep are arguments so tests step through time without sleeping.
    """
    started = monotonic()
    while True:
        done, value = poke_result(poke())
        if done:
            return value
        waited = monotonic() - started
        if waited >= timeout:
            message = f"sensor {task_id!r} timed out after {waited:.0f}s (timeout {timeout:g}s)"
            raise SkipTask(message) if soft_fail else SensorTimeout(message)
        sleep(min(poke_interval, timeout - waited))
