"""TimeDeltaSensor: wait until `delta` after the end of the run's data interval."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from dagrunner.authoring.sensors.base import BaseSensorOperator
from dagrunner.clock import utcnow


class TimeDeltaSensor(BaseSensorOperator):
    """True once now >= data_interval_end + delta (for trigger timetables the interval end is the tick)."""

    def __init__(self, *, delta: timedelta | float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = self._arg_check.duration("delta", delta)

    def target_time(self, context: Mapping[str, Any]) -> datetime:
        anchor = context.get("data_interval_end") or context.get("logical_date")
        if not isinstance(anchor, datetime):
            raise ValueError(f"sensor {self.task_id!r} needs data_interval_end (or logical_date) in its context")
        return anchor + self.delta

    def is_due(self, context: Mapping[str, Any], now: datetime) -> bool:
        """The decision with the time as an argument (poke uses the current time)."""
        return now >= self.target_time(context)

    def poke(self, context: Mapping[str, Any]) -> bool:
        return self.is_due(context, utcnow())
