"""Custom timetables written as in Airflow: subclass `Timetable`, register it through a plugin.

    from dagrunner.timetables.custom import DagRunInfo, DataInterval, TimeRestriction, Timetable

    class AfterWorkdayTimetable(Timetable):
        def infer_manual_data_interval(self, *, run_after): ...
        def next_dagrun_info(self, *, last_automated_data_interval, restriction): ...

The class lives in a module of the plugins folder and is listed in an `AirflowPlugin`'s `timetables`
(`dagrunner.loading.plugins`), because the scheduler never imports DAG files: it rebuilds a DAG's schedule
from the serialized form `{"type": "custom", "class": "module.Name", "value": <serialize()>}` and needs the
class registered under that name (Airflow's rule, for the same reason).

This `Timetable` is the authoring interface. The engine's own interface (`dagrunner.timetables.base.Timetable`,
asked `next_dagrun_info(last=, start_date=, end_date=, catchup=, now=)`) is met by `CustomTimetableAdapter`,
which `make_timetable` wraps around an instance, so a DAG's `schedule=MyTimetable()` works everywhere a cron
string does: the scheduler, backfills, `dags next-runs`, manual runs.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

import pendulum

from dagrunner.errors import InvalidScheduleError
from dagrunner.timetables.base import DagRunInfo, DataInterval
from dagrunner.timetables.base import Timetable as EngineTimetable

__all__ = [
    "CustomTimetableAdapter",
    "DagRunInfo",
    "DataInterval",
    "TimeRestriction",
    "Timetable",
    "class_path",
    "register_timetable",
    "registered_timetable",
]

#: A custom timetable that keeps answering the same run is a bug; previews and backfills stop after this many.
_MAX_RUNS_SCANNED = 100_000


class TimeRestriction(NamedTuple):
    """What bounds the next run: the DAG's start_date (`earliest`), end_date (`latest`) and `catchup`."""

    earliest: datetime | None
    latest: datetime | None
    catchup: bool


class Timetable(ABC):
    """Airflow's timetable interface. Subclass it and implement the two methods; the flags are Airflow's."""

    description: ClassVar[str] = ""
    periodic: ClassVar[bool] = True
    can_be_scheduled: ClassVar[bool] = True
    run_ordering: ClassVar[tuple[str, ...]] = ("data_interval_end", "logical_date")
    active_runs_limit: ClassVar[int | None] = None

    @property
    def summary(self) -> str:
        """A short name for listings: the class name unless overridden (Airflow's default)."""
        return type(self).__name__

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        """Rebuild from `serialize()`'s dict; the default suits timetables without constructor arguments."""
        del data
        return cls()

    def serialize(self) -> dict[str, Any]:
        """A JSON-able dict of the constructor arguments; override together with `deserialize`."""
        return {}

    def validate(self) -> None:
        """Raise (e.g. InvalidScheduleError) when the timetable's arguments make no sense; called at DAG import."""
        return  # optional to override, as in Airflow

    @abstractmethod
    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        """The data interval of a run triggered by hand at `run_after`."""

    @abstractmethod
    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        """The next scheduled run after the last one (None before the first), or None for no more runs."""


_REGISTERED: dict[str, type[Timetable]] = {}


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_timetable(cls: type[Timetable]) -> None:
    """Make `cls` known to the scheduler by its import path (AirflowPlugin subclasses call this)."""
    if not (isinstance(cls, type) and issubclass(cls, Timetable)):
        raise InvalidScheduleError(
            f"plugin timetable {cls!r} is not a subclass of dagrunner.timetables.custom.Timetable (Airflow's Timetable)"
        )
    _REGISTERED[class_path(cls)] = cls


def registered_timetable(path: str) -> type[Timetable] | None:
    return _REGISTERED.get(path)


class CustomTimetableAdapter(EngineTimetable):
    """The engine's timetable interface answered by a custom (Airflow-style) timetable.

    Deliberate differences from Airflow: a manual run's logical date is its trigger time (DESIGN section 4),
    with the interval `infer_manual_data_interval` gives; the timetable reads the clock itself for
    `catchup=False` (as in Airflow), so `now` is not passed to it.
    """

    kind = "custom"

    def __init__(self, custom: Timetable, timezone: str | None = None) -> None:
        super().__init__(timezone)
        self.custom = custom
        self.periodic = custom.periodic  # type: ignore[misc]
        self.can_be_scheduled = custom.can_be_scheduled  # type: ignore[misc]

    @property
    def description(self) -> str:
        return self.custom.description or self.custom.summary

    def next_dagrun_info(
        self,
        *,
        last: DagRunInfo | None,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DagRunInfo | None:
        del now  # Airflow's interface has no clock argument
        restriction = TimeRestriction(
            _aware(self._utc_or_none(start_date)), _aware(self._utc_or_none(end_date)), catchup
        )
        return self._ask(last.data_interval if last else None, restriction)

    def iter_runs(
        self,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        after: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[DagRunInfo]:
        after_utc, until_utc = self._utc_or_none(after), self._utc_or_none(until)
        restriction = TimeRestriction(_aware(self._utc_or_none(start_date)), _aware(self._utc_or_none(end_date)), True)
        last: DataInterval | None = None
        for _ in range(_MAX_RUNS_SCANNED):
            info = self._ask(last, restriction)
            if info is None or (until_utc is not None and info.run_after > until_utc):
                return
            if last is not None and info.data_interval <= last:
                raise InvalidScheduleError(
                    f"custom timetable {self.description!r} answered {info} after {last}: it must move forward"
                )
            last = info.data_interval
            if after_utc is None or info.logical_date >= after_utc:
                yield info

    def runs_between(
        self, start: datetime, end: datetime, *, start_date: datetime | None, end_date: datetime | None
    ) -> list[DagRunInfo]:
        first, last = self._utc(start), self._utc(end)
        runs = itertools.takewhile(
            lambda info: info.logical_date <= last,
            self.iter_runs(start_date=start_date, end_date=end_date, after=first),
        )
        return list(runs)

    def manual_run_info(self, when: datetime) -> DagRunInfo:
        at = self._utc(when)
        interval = self.custom.infer_manual_data_interval(run_after=pendulum.instance(at))
        return DagRunInfo(
            run_after=at, logical_date=at, data_interval_start=interval.start, data_interval_end=interval.end
        )

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "class": class_path(type(self.custom)),
            "value": self.custom.serialize(),
            "timezone": self.timezone,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CustomTimetableAdapter:
        custom_class = registered_timetable(data["class"])
        if custom_class is None:
            raise InvalidScheduleError(
                f"timetable class {data['class']!r} is not registered: define it in a module of the plugins folder "
                "and list it in an AirflowPlugin's `timetables` (from dagrunner.loading.plugins import AirflowPlugin)"
            )
        return cls(custom_class.deserialize(data["value"]), data.get("timezone"))

    def _ask(self, last: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        """The custom timetable's answer, checked; its inputs as pendulum datetimes, as Airflow gives them."""
        if last is not None:
            last = DataInterval(pendulum.instance(last.start), pendulum.instance(last.end))
        info = self.custom.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is not None and not isinstance(info, DagRunInfo):
            raise InvalidScheduleError(
                f"custom timetable {self.description!r}: next_dagrun_info returned {info!r}; expected a DagRunInfo "
                "(DagRunInfo.interval(start=, end=) or DagRunInfo.exact(at)) or None"
            )
        return info


def _aware(value: datetime | None) -> pendulum.DateTime | None:
    """What Airflow hands a timetable: pendulum datetimes (its how-to relies on them)."""
    return None if value is None else pendulum.instance(value)
