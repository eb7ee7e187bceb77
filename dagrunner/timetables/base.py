"""The timetable interface: what the scheduler, backfill and the CLI ask of any schedule.

A timetable is pure time arithmetic. It never reads the clock (`now` is an argument), never touches the
database, and answers in aware UTC datetimes, so the scheduler can be driven through time by tests.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from dagrunner.timetables.zones import load_zone, plain_utc, to_utc

_T = TypeVar("_T", bound="Timetable")


@dataclass(frozen=True)
class DagRunInfo:
    """When one DAG run may start and which period of data it covers. All four are aware UTC.

    Trigger timetables: all four are the tick. Data-interval timetables: the run covers
    `[data_interval_start, data_interval_end)`, `logical_date` is the start and `run_after` the end.
    Manual runs of data-interval timetables are the exception (DESIGN section 4): their `logical_date`
    and `run_after` are the trigger time and the interval is the last complete period before it.

    Naive datetimes are rejected rather than guessed at: a run read back from a database that dropped
    the offset would otherwise be silently shifted by the timetable's UTC offset.
    """

    run_after: datetime
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"DagRunInfo.{field.name} must be timezone-aware, got {value!r}")
            object.__setattr__(self, field.name, plain_utc(value))

    @classmethod
    def at(cls, when: datetime) -> DagRunInfo:
        """A run at a single instant: the trigger-family shape `[X, X]`."""
        return cls(run_after=when, logical_date=when, data_interval_start=when, data_interval_end=when)

    @classmethod
    def interval(cls, start: datetime, end: datetime) -> DagRunInfo:
        """A scheduled data-interval run: covers `[start, end)` and may run once `end` has passed."""
        return cls(run_after=end, logical_date=start, data_interval_start=start, data_interval_end=end)

    @classmethod
    def exact(cls, at: datetime) -> DagRunInfo:
        """Airflow's name for `at`: a run at a single instant, for custom timetables written as in Airflow."""
        return cls.at(at)

    @property
    def data_interval(self) -> DataInterval:
        """Airflow's view of the interval, `(start, end)`, for custom timetables written as in Airflow."""
        return DataInterval(self.data_interval_start, self.data_interval_end)


class DataInterval(NamedTuple):
    """The period of data a run covers, `[start, end)`: Airflow's `DataInterval`, for custom timetables."""

    start: datetime
    end: datetime

    @classmethod
    def exact(cls, at: datetime) -> DataInterval:
        return cls(at, at)


class Timetable(ABC):
    """Decides which DAG runs exist and when each may start.

    Subclasses set the class flags and implement the five questions below. The timezone may be left
    unset at construction (None); `make_timetable` then fills in the DAG's timezone, because DESIGN
    says a schedule's timezone is its `start_date`'s unless the timetable names one itself.
    """

    kind: ClassVar[str]  # the "type" tag in serialize(); unique per concrete class
    periodic: ClassVar[bool] = True
    can_be_scheduled: ClassVar[bool] = True
    is_data_interval: ClassVar[bool] = False

    def __init__(self, timezone: str | None = None) -> None:
        self._timezone = load_zone(timezone).key if timezone is not None else None

    @property
    def timezone(self) -> str:
        """The IANA name of the zone the schedule is read in (UTC when none was given)."""
        return self._timezone or "UTC"

    @property
    def timezone_is_set(self) -> bool:
        """Whether the timezone was given explicitly (make_timetable leaves such timetables alone)."""
        return self._timezone is not None

    def with_timezone(self: _T, timezone: str) -> _T:
        """A copy read in `timezone`. A copy, not a mutation: one Timetable object may serve two DAGs."""
        clone = copy.copy(self)
        clone._timezone = load_zone(timezone).key
        return clone

    @property
    def zone(self) -> ZoneInfo:
        return load_zone(self.timezone)

    @property
    @abstractmethod
    def description(self) -> str:
        """Human words for `dags list`, e.g. "every day at 06:00 (Europe/Amsterdam)"."""

    @abstractmethod
    def next_dagrun_info(
        self,
        *,
        last: DagRunInfo | None,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DagRunInfo | None:
        """The next run the scheduler should create after `last`, or None if there will never be one.

        `last` is the latest automated (scheduled) run, or None before the first. The answer may lie in
        the future (`run_after > now`): the scheduler compares `run_after` with its clock and creates the
        run once it has passed, and can show the answer as the DAG's next run meanwhile.

        `catchup=True`: every run from `start_date` on, oldest first; `now` is not consulted.
        `catchup=False`: the later of the run following `last` and the most recent run that is already
        due at `now`, so a backlog collapses into its newest run; if `last` is that run, the answer is the
        following (future) one. Runs never start before `start_date` and never pass `end_date` (see each
        family for which instant `end_date` bounds). Naive inputs are read in the timetable's timezone.
        """

    @abstractmethod
    def iter_runs(
        self,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        after: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[DagRunInfo]:
        """Every run as with catchup, oldest first: from `start_date`, or from the first run whose
        logical_date is at or after `after` when that is later. Stops before the first run whose
        `run_after` is past `until` or that `end_date` excludes; without either the iterator is endless
        (take what you need with `itertools.islice`). Used by the `dags next-runs` preview.
        """

    @abstractmethod
    def runs_between(
        self, start: datetime, end: datetime, *, start_date: datetime | None, end_date: datetime | None
    ) -> list[DagRunInfo]:
        """The backfill plan: every run whose logical_date lies in `[start, end]`, both inclusive.

        Runs that the DAG's own `start_date` / `end_date` exclude are left out, as the scheduler would
        never have created them; naive `start`/`end` are read in the timetable's timezone.
        """

    @abstractmethod
    def manual_run_info(self, when: datetime) -> DagRunInfo:
        """The run a manual trigger at logical date `when` creates (DESIGN: manual runs always have a
        logical date and a data interval, so `{{ ds }}` renders): `[X, X]` for trigger timetables; for
        data-interval ones the last complete period ending at or before X, with logical_date X.
        """

    @abstractmethod
    def serialize(self) -> dict[str, Any]:
        """A JSON-able dict with a "type" key; `deserialize_timetable` turns it back into an equal object."""

    def _utc(self, value: datetime) -> datetime:
        return to_utc(value, self.zone)

    def _utc_or_none(self, value: datetime | None) -> datetime | None:
        return None if value is None else to_utc(value, self.zone)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timetable) and type(other) is type(self) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(json.dumps(self.serialize(), sort_keys=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"
