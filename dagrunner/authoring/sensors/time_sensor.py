"""TimeSensor: wait until a time of day (Airflow's name).

    TimeSensor(task_id="after_six", target_time=time(18, 0), mode="reschedule")

Deliberate difference: Airflow combines `target_time` with the date the DAG file was *parsed* (in the DAG's
timezone), so the moment depends on when the file was last imported. Here it is `target_time` on the date
of the run's `data_interval_end` in the DAG's timezone (for a daily run that is the day after the
interval, the day the run happens; for a manual run, the day it was triggered), the same for every poke.
`deferrable` is accepted and ignored: `mode="reschedule"` frees the worker slot between pokes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Any

import pendulum

from dagrunner.authoring.sensors.base import BaseSensorOperator
from dagrunner.clock import utcnow


class TimeSensor(BaseSensorOperator):
    """True once the current time is past `target_time` on the run's day (DAG timezone)."""

    def __init__(self, *, target_time: time, deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_time, time):
            self._arg_check.fail("target_time", target_time, "a datetime.time, e.g. time(18, 0)")
        self.target_time = target_time
        self.deferrable = self._arg_check.boolean("deferrable", deferrable)

    def target_datetime(self, context: Mapping[str, Any]) -> datetime:
        """`target_time` on the day of the run's data_interval_end, in the DAG's timezone."""
        anchor = context.get("data_interval_end") or context["logical_date"]
        day = pendulum.instance(anchor).in_timezone(self.dag.timezone).date()
        t = self.target_time
        zone = t.tzinfo or pendulum.timezone(self.dag.timezone)
        return pendulum.datetime(day.year, day.month, day.day, t.hour, t.minute, t.second, t.microsecond, tz=zone)

    def is_due(self, context: Mapping[str, Any], now: datetime) -> bool:
        """The decision with the time as an argument (poke uses the current time)."""
        return now > self.target_datetime(context)

    def poke(self, context: Mapping[str, Any]) -> bool:
        print(f"[dagrunner] checking whether now is past {self.target_datetime(context).isoformat()}")
        return self.is_due(context, utcnow())
