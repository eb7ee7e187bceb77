"""DateTimeSensor: wait until a moment in time (Airflow's name).

    DateTimeSensor(task_id="wait_for_noon", target_time="{{ data_interval_end.replace(hour=12) }}",
                   mode="reschedule", poke_interval=300)

`target_time` is a datetime or an ISO string, templated; a naive one is read in the DAG's timezone (Airflow
reads it in its configured default timezone). Done once now is past it. `deferrable` is accepted and
ignored (no triggerer here): `mode="reschedule"` frees the worker slot between pokes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pendulum

from dagrunner.authoring.sensors.base import BaseSensorOperator
from dagrunner.clock import utcnow
from dagrunner.errors import FailTask


class DateTimeSensor(BaseSensorOperator):
    """True once the current time is after `target_time`."""

    template_fields = ("target_time",)

    def __init__(self, *, target_time: str | datetime, deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_time, str | datetime):
            self._arg_check.fail("target_time", target_time, "a datetime or an ISO date string (may be a template)")
        self.target_time: str | datetime = target_time
        self.deferrable = self._arg_check.boolean("deferrable", deferrable)

    def moment(self) -> datetime:
        """The (rendered) target time, aware."""
        value = self.target_time
        if isinstance(value, datetime):
            return value if value.tzinfo else pendulum.instance(value, tz=self.dag.timezone)
        try:
            parsed = pendulum.parse(value, tz=self.dag.timezone)
        except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
            raise FailTask(f"sensor {self.task_id!r}: target_time {value!r} is not an ISO date ({exc})") from None
        if not isinstance(parsed, datetime):
            raise FailTask(f"sensor {self.task_id!r}: target_time {value!r} is not a date and time")
        return parsed

    def is_due(self, now: datetime) -> bool:
        """The decision with the time as an argument (poke uses the current time)."""
        return now > self.moment()

    def poke(self, context: Mapping[str, Any]) -> bool:  # noqa: ARG002 - the sensor interface
        print(f"[dagrunner] checking whether now is past {self.moment().isoformat()}")
        return self.is_due(utcnow())
