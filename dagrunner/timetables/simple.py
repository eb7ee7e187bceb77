"""The two non-periodic timetables: `"@once"` and `None` (manual only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dagrunner.timetables.base import DagRunInfo, Timetable


class _SingleInstantTimetable(Timetable):
    """Shared by the non-periodic timetables: manual runs are `[X, X]` and serialization is the tag."""

    periodic = False

    def manual_run_info(self, when: datetime) -> DagRunInfo:
        return DagRunInfo.at(self._utc(when))

    def serialize(self) -> dict[str, Any]:
        return {"type": self.kind, "timezone": self.timezone}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> _SingleInstantTimetable:
        return cls(data.get("timezone"))


class OnceTimetable(_SingleInstantTimetable):
    """One run at exactly start_date (even if that is long past: catchup does not apply)."""

    kind = "once"

    @property
    def description(self) -> str:
        return "once"

    def next_dagrun_info(
        self,
        *,
        last: DagRunInfo | None,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DagRunInfo | None:
        del catchup, now  # the one run is due at start_date however late it is noticed
        if last is not None:
            return None
        return self._the_run(start_date, end_date)

    def iter_runs(
        self,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        after: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[DagRunInfo]:
        run = self._the_run(start_date, end_date)
        if run is None:
            return
        lower, limit = self._utc_or_none(after), self._utc_or_none(until)
        if (lower is None or run.logical_date >= lower) and (limit is None or run.run_after <= limit):
            yield run

    def runs_between(
        self, start: datetime, end: datetime, *, start_date: datetime | None, end_date: datetime | None
    ) -> list[DagRunInfo]:
        run = self._the_run(start_date, end_date)
        if run is None or not self._utc(start) <= run.logical_date <= self._utc(end):
            return []
        return [run]

    def _the_run(self, start_date: datetime | None, end_date: datetime | None) -> DagRunInfo | None:
        """The single run at start_date, unless there is no start_date or end_date comes before it."""
        if start_date is None:
            return None
        start, end = self._utc(start_date), self._utc_or_none(end_date)
        if end is not None and start > end:
            return None
        return DagRunInfo.at(start)


class NullTimetable(_SingleInstantTimetable):
    """`schedule=None`: the scheduler never creates runs; only manual triggers do."""

    kind = "null"
    can_be_scheduled = False

    @property
    def description(self) -> str:
        return "never (manual only)"

    def next_dagrun_info(
        self,
        *,
        last: DagRunInfo | None,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DagRunInfo | None:
        del last, start_date, end_date, catchup, now  # manual only: no inputs make a run due
        return None

    def iter_runs(
        self,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        after: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[DagRunInfo]:
        del start_date, end_date, after, until  # manual only: no window has scheduled runs
        return iter(())

    def runs_between(
        self, start: datetime, end: datetime, *, start_date: datetime | None, end_date: datetime | None
    ) -> list[DagRunInfo]:
        del start, end, start_date, end_date  # manual only: no window has scheduled runs
        return []
