"""Periodic timetables: the trigger and data-interval families over cron and delta ticks.

Both families walk the same ticks; they differ only in what a run is made of:

* trigger (the default): one run per tick, `logical_date = data_interval_start = data_interval_end =
  run_after = tick`; `end_date` is inclusive on the tick (= run_after);
* data interval (Airflow 2's behaviour): one run per pair of consecutive ticks `[tick_i, tick_i+1)`,
  `logical_date = data_interval_start = tick_i`, `run_after = tick_i+1`; `end_date` bounds `tick_i`.

So in both families a run is identified by its *first tick* (its logical date), and `start_date`,
`end_date`, `after` and backfill ranges all bound that first tick.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from typing import Any, ClassVar

from dagrunner.timetables.base import DagRunInfo, Timetable
from dagrunner.timetables.cron import CronTicks, describe_cron, parse_cron
from dagrunner.timetables.delta import Delta, delta_from_json, delta_to_json, describe_delta, make_delta_ticks
from dagrunner.timetables.delta import validate_delta as _validate_delta
from dagrunner.timetables.ticks import Ticks


class PeriodicTimetable(Timetable):
    """Shared scheduling logic; subclasses say where the ticks come from and which family they are."""

    is_data_interval: ClassVar[bool] = False

    @abstractmethod
    def _ticks(self, anchor: datetime) -> Ticks:
        """The schedule's ticks. `anchor` is where a delta grid starts (the start_date); cron ignores it."""

    def next_dagrun_info(
        self,
        *,
        last: DagRunInfo | None,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DagRunInfo | None:
        """See Timetable. Without a start_date, a delta grid is anchored at the last run (or at `now`,
        whole seconds), and a first run with catchup is the most recent due one, as without catchup.
        """
        now = self._utc(now)
        start, end = self._utc_or_none(start_date), self._utc_or_none(end_date)
        anchor = start or (last.data_interval_start if last else now.replace(microsecond=0))
        ticks = self._ticks(anchor)
        if last is not None:
            candidates = [self._first_tick_after(ticks, last)]
        elif start is not None:
            candidates = [ticks.at_or_after(start)]
        else:
            candidates = [self._latest_due(ticks, now)]
        if not catchup:
            candidates.append(self._latest_due(ticks, now))
        if start is not None:
            candidates.append(ticks.at_or_after(start))
        first = max((c for c in candidates if c is not None), default=None)
        if first is None or (end is not None and first > end):
            return None
        return next(self._runs_from(ticks, first), None)

    def iter_runs(
        self,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        after: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[DagRunInfo]:
        start, end = self._utc_or_none(start_date), self._utc_or_none(end_date)
        lower = max((t for t in (start, self._utc_or_none(after)) if t is not None), default=None)
        if lower is None:
            raise ValueError("iter_runs needs a start_date or an `after` to start from")
        limit = self._utc_or_none(until)
        for info in self._runs_from(self._ticks(start or lower), lower):
            if end is not None and info.logical_date > end:
                return
            if limit is not None and info.run_after > limit:
                return
            yield info

    def runs_between(
        self, start: datetime, end: datetime, *, start_date: datetime | None, end_date: datetime | None
    ) -> list[DagRunInfo]:
        first, last = self._utc(start), self._utc(end)
        dag_start, dag_end = self._utc_or_none(start_date), self._utc_or_none(end_date)
        lower = max(first, dag_start) if dag_start is not None else first
        upper = min(last, dag_end) if dag_end is not None else last
        runs: list[DagRunInfo] = []
        for info in self._runs_from(self._ticks(dag_start or first), lower):
            if info.logical_date > upper:
                break
            runs.append(info)
        return runs

    def manual_run_info(self, when: datetime) -> DagRunInfo:
        moment = self._utc(when)
        if not self.is_data_interval:
            return DagRunInfo.at(moment)
        # No start_date here, so a delta grid is anchored at the trigger time: [X - delta, X).
        ticks = self._ticks(moment)
        end = ticks.at_or_before(moment)
        start = ticks.before(end) if end is not None else None
        if start is None or end is None:
            return DagRunInfo.at(moment)
        return DagRunInfo(run_after=moment, logical_date=moment, data_interval_start=start, data_interval_end=end)

    def _runs_from(self, ticks: Ticks, lower: datetime) -> Iterator[DagRunInfo]:
        """Every run whose first tick is at or after `lower`, oldest first."""
        stream = ticks.iter_from(lower)
        if self.is_data_interval:
            for start, end in pairwise(stream):
                yield DagRunInfo.interval(start, end)
        else:
            for tick in stream:
                yield DagRunInfo.at(tick)

    def _first_tick_after(self, ticks: Ticks, last: DagRunInfo) -> datetime | None:
        """Where the run following `last` starts. A data interval starts where the last one ended,
        aligned back onto the schedule if that changed (as Airflow does: overlap rather than a gap)."""
        if self.is_data_interval:
            return ticks.at_or_before(last.data_interval_end)
        return ticks.after(last.data_interval_end)

    def _latest_due(self, ticks: Ticks, now: datetime) -> datetime | None:
        """The first tick of the most recent run whose run_after is at or before `now`."""
        latest = ticks.at_or_before(now)
        if not self.is_data_interval or latest is None:
            return latest
        return ticks.before(latest)


class _CronTimetable(PeriodicTimetable):
    def __init__(self, cron: str, timezone: str | None = None) -> None:
        super().__init__(timezone)
        self.cron = cron.strip()
        self.expression = parse_cron(cron)

    @property
    def description(self) -> str:
        words = describe_cron(self.expression)
        return words if self.timezone == "UTC" else f"{words} ({self.timezone})"

    def _ticks(self, anchor: datetime) -> Ticks:  # noqa: ARG002 - cron ticks are fixed by the expression alone
        return CronTicks(self.expression, self.zone)

    def serialize(self) -> dict[str, Any]:
        return {"type": self.kind, "cron": self.cron, "timezone": self.timezone}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> _CronTimetable:
        return cls(data["cron"], data["timezone"])


class CronTriggerTimetable(_CronTimetable):
    """A cron schedule whose runs fire at each tick (Airflow 3's default for cron strings)."""

    kind = "cron_trigger"


class CronDataIntervalTimetable(_CronTimetable):
    """A cron schedule whose runs cover the interval between ticks and start at its end (Airflow 2)."""

    kind = "cron_data_interval"
    is_data_interval = True


class _DeltaTimetable(PeriodicTimetable):
    def __init__(self, delta: Delta, timezone: str | None = None) -> None:
        super().__init__(timezone)
        self.delta = _validate_delta(delta)

    @property
    def description(self) -> str:
        return describe_delta(self.delta)

    def _ticks(self, anchor: datetime) -> Ticks:
        return make_delta_ticks(self.delta, anchor, self.zone)

    def serialize(self) -> dict[str, Any]:
        return {"type": self.kind, "delta": delta_to_json(self.delta), "timezone": self.timezone}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> _DeltaTimetable:
        return cls(delta_from_json(data["delta"]), data["timezone"])


class DeltaTriggerTimetable(_DeltaTimetable):
    """Runs every `delta` from start_date: exactly start_date first, then each step after it."""

    kind = "delta_trigger"


class DeltaDataIntervalTimetable(_DeltaTimetable):
    """Runs covering `[start_date + k*delta, start_date + (k+1)*delta)`, each once it has ended."""

    kind = "delta_data_interval"
    is_data_interval = True
