"""Delta schedules: `timedelta` (fixed durations) and `relativedelta` (calendar steps).

A `timedelta` is a fixed duration in absolute time (DESIGN section 4): `timedelta(hours=24)` stays 24 hours
apart across a DST switch, so its local wall time shifts by the switch. A `relativedelta` with calendar
parts (days, months, years, weekday, absolute fields) steps the local calendar instead: `months=1` from
31 January 09:00 gives 28 February 09:00, 31 March 09:00, ... Each tick is computed from the anchor
(`start_date`), not from the previous tick, so month-end days do not drift (31 Jan, 28 Feb, 31 Mar).
A relativedelta of hours/minutes/seconds only is a duration and behaves like the equal timedelta.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta, weekday

from dagrunner.errors import InvalidScheduleError
from dagrunner.timetables.ticks import Ticks
from dagrunner.timetables.zones import local_wall, wall_to_utc

Delta: TypeAlias = timedelta | relativedelta

_RELATIVE = ("years", "months", "days", "leapdays", "hours", "minutes", "seconds", "microseconds")
_ABSOLUTE = ("year", "month", "day", "hour", "minute", "second", "microsecond")
_CLOCK_ONLY = ("hours", "minutes", "seconds", "microseconds")
# Dates where calendar steps misbehave if they are going to: month ends, leap days, year end.
_PROBES = [datetime(2000, 1, 31), datetime(2000, 2, 29), datetime(2001, 2, 28), datetime(2000, 12, 31, 23)]


def validate_delta(delta: object) -> Delta:
    """The delta itself if it moves time forward, else InvalidScheduleError naming it."""
    if isinstance(delta, timedelta):
        if delta <= timedelta(0):
            raise InvalidScheduleError(f"schedule {delta!r} must be a positive duration, e.g. timedelta(hours=1)")
        return delta
    if not isinstance(delta, relativedelta):
        raise InvalidScheduleError(f"schedule {delta!r} is not a timedelta or relativedelta")
    for probe in _PROBES:
        steps = [probe + delta * k for k in range(4)]
        if any(later <= earlier for earlier, later in zip(steps, steps[1:], strict=False)):
            raise InvalidScheduleError(
                f"schedule {delta!r} does not move forward in steps (from {probe:%Y-%m-%d %H:%M} it gives "
                f"{', '.join(f'{s:%Y-%m-%d %H:%M}' for s in steps)}): use e.g. relativedelta(months=1)"
            )
    return delta


def as_duration(delta: Delta) -> timedelta | None:
    """The fixed duration a delta stands for, or None when it steps the calendar."""
    if isinstance(delta, timedelta):
        return delta
    calendar_parts = [getattr(delta, name) for name in ("years", "months", "days", "leapdays")]
    absolute_parts = [getattr(delta, name) for name in _ABSOLUTE] + [delta.weekday]
    if any(calendar_parts) or any(part is not None for part in absolute_parts):
        return None
    return timedelta(**{name: getattr(delta, name) for name in _CLOCK_ONLY})


def make_delta_ticks(delta: Delta, anchor: datetime, zone: ZoneInfo) -> Ticks:
    """Ticks every `delta` from `anchor` (aware UTC), forward and backward."""
    duration = as_duration(delta)
    if duration is not None:
        return DurationTicks(anchor, duration)
    assert isinstance(delta, relativedelta)
    return CalendarTicks(anchor, delta, zone)


class DurationTicks(Ticks):
    """`anchor + k * duration` for every integer k, in absolute time."""

    def __init__(self, anchor: datetime, duration: timedelta) -> None:
        self._anchor = anchor
        self._duration = duration

    def iter_from(self, start: datetime) -> Iterator[datetime]:
        k = -((self._anchor - start) // self._duration)  # ceiling of (start - anchor) / duration
        while True:
            yield self._anchor + k * self._duration
            k += 1

    def at_or_before(self, instant: datetime) -> datetime | None:
        return self._anchor + ((instant - self._anchor) // self._duration) * self._duration


class CalendarTicks(Ticks):
    """`anchor + k * delta` on the local wall clock, each mapped to UTC with the DST rules.

    A wall time in a fold maps to its second occurrence, as for cron schedules that fire less than
    hourly; k=0 is the anchor itself, whichever occurrence it was.
    """

    def __init__(self, anchor: datetime, delta: relativedelta, zone: ZoneInfo) -> None:
        self._anchor = anchor
        self._wall = local_wall(anchor, zone)
        self._delta = delta
        self._zone = zone
        self._typical = (self._wall + delta) - self._wall

    def iter_from(self, start: datetime) -> Iterator[datetime]:
        k = self._index_at_or_before(start)
        if self._tick(k) < start:
            k += 1
        while True:
            yield self._tick(k)
            k += 1

    def at_or_before(self, instant: datetime) -> datetime | None:
        return self._tick(self._index_at_or_before(instant))

    def _tick(self, k: int) -> datetime:
        if k == 0:
            return self._anchor
        return wall_to_utc(self._wall + self._delta * k, self._zone, both_folds=False)[0]

    def _index_at_or_before(self, instant: datetime) -> int:
        # Estimate from the first step's length, then walk: months vary by days, not by whole steps.
        k: int = (instant - self._anchor) // self._typical
        while self._tick(k) > instant:
            k -= 1
        while self._tick(k + 1) <= instant:
            k += 1
        return k


def describe_delta(delta: Delta) -> str:
    """Human words: "every 30 minutes", "every day", "every 3 months"."""
    if isinstance(delta, timedelta):
        parts = _duration_parts(delta)
    elif any(getattr(delta, name) is not None for name in _ABSOLUTE) or delta.weekday or delta.leapdays:
        return f"every {delta!r}"
    else:
        parts = [(getattr(delta, name), name[:-1]) for name in _RELATIVE if getattr(delta, name)]
    if len(parts) == 1 and parts[0][0] == 1:
        return f"every {parts[0][1]}"
    return "every " + " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts)


def _duration_parts(duration: timedelta) -> list[tuple[int, str]]:
    hours, rest = divmod(duration.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    values = [duration.days, hours, minutes, seconds, duration.microseconds]
    units = ["day", "hour", "minute", "second", "microsecond"]
    return [(n, unit) for n, unit in zip(values, units, strict=True) if n]


def delta_to_json(delta: Delta) -> dict[str, Any]:
    """Exact JSON form: integers only, so a round trip gives an equal delta."""
    if isinstance(delta, timedelta):
        return {
            "kind": "timedelta",
            "days": delta.days,
            "seconds": delta.seconds,
            "microseconds": delta.microseconds,
        }
    data: dict[str, Any] = {"kind": "relativedelta"}
    data.update({name: getattr(delta, name) for name in _RELATIVE if getattr(delta, name)})
    data.update({name: getattr(delta, name) for name in _ABSOLUTE if getattr(delta, name) is not None})
    if delta.weekday is not None:
        data["weekday"] = [delta.weekday.weekday, delta.weekday.n]
    return data


def delta_from_json(data: dict[str, Any]) -> Delta:
    values = {key: value for key, value in data.items() if key != "kind"}
    if data.get("kind") == "timedelta":
        return timedelta(**values)
    if "weekday" in values:
        day, n = values["weekday"]
        values["weekday"] = weekday(day, n)
    return relativedelta(**values)
