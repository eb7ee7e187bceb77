"""BaseSensorOperator: a task that waits until `poke(context)` returns True.

Sensors declare *how* to wait (poke_interval, timeout, mode, soft_fail); the scheduler and runner decide
how a mode is carried out: `poke` holds the worker slot and re-checks in-process (what `execute` does
here), `reschedule` frees the slot between checks (`up_for_reschedule`), which needs the runner, so the
runner calls `poke` itself in that mode. A timeout fails the task without retries, as in Airflow, or skips
it with `soft_fail`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.errors import FailTask, SkipTask

SENSOR_MODES = ("poke", "reschedule")


class SensorTimeout(FailTask):  # noqa: N818 - a signal like FailTask, named as Airflow's AirflowSensorTimeout
    """The sensor's condition did not hold within its timeout (fails the task, no retries)."""


class BaseSensorOperator(BaseOperator):
    """Subclasses implement `poke(context) -> bool`."""

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

    def poke(self, context: Mapping[str, Any]) -> bool:
        """True when the condition the sensor waits for holds."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke(self, context)")

    def execute(self, context: Mapping[str, Any]) -> None:
        run_poke_loop(
            lambda: self.poke(context),
            task_id=self.task_id,
            poke_interval=self.poke_interval,
            timeout=self.timeout,
            soft_fail=self.soft_fail,
            monotonic=time.monotonic,
            sleep=time.sleep,
        )


def run_poke_loop(
    poke: Callable[[], bool],
    *,
    task_id: str,
    poke_interval: float,
    timeout: float,
    soft_fail: bool,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Poke until True; past `timeout` seconds raise SensorTimeout (SkipTask when soft_fail).

    The clock and the sleep are arguments so tests step through time without sleeping.
    """
    started = monotonic()
    while not poke():
        waited = monotonic() - started
        if waited >= timeout:
            message = f"sensor {task_id!r} timed out after {waited:.0f}s (timeout {timeout:g}s)"
            raise SkipTask(message) if soft_fail else SensorTimeout(message)
        sleep(min(poke_interval, timeout - waited))
