"""The tick source: the instants a periodic schedule fires at, independent of what a run means.

Cron and delta schedules only differ in how they find their ticks; both timetable families (trigger and
data interval) are written once against this small interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime, timedelta

# Ticks are at least a microsecond apart, so "strictly before t" is "at or before t - 1 µs".
_EPSILON = timedelta(microseconds=1)


class Ticks(ABC):
    """An ordered, unbounded sequence of aware UTC instants."""

    @abstractmethod
    def iter_from(self, start: datetime) -> Iterator[datetime]:
        """Every tick at or after `start`, in time order, without duplicates."""

    @abstractmethod
    def at_or_before(self, instant: datetime) -> datetime | None:
        """The latest tick at or before `instant` (None if the schedule has none that early)."""

    def at_or_after(self, instant: datetime) -> datetime | None:
        return next(self.iter_from(instant), None)

    def after(self, instant: datetime) -> datetime | None:
        """The first tick strictly after `instant`."""
        return next((tick for tick in self.iter_from(instant) if tick > instant), None)

    def before(self, instant: datetime) -> datetime | None:
        """The latest tick strictly before `instant`."""
        return self.at_or_before(instant - _EPSILON)
