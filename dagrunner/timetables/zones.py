"""Timezones and wall-clock arithmetic: the one place that knows how local times map to UTC.

Everything a timetable returns is an aware UTC datetime, but cron and calendar schedules are defined on
the local wall clock. The mapping between the two is not one-to-one around DST switches, and the rules
for those moments (DESIGN section 4) live here so every schedule applies them the same way:

* a wall time that does not exist (the spring-forward gap) moves forward by the gap: 02:30 on the day
  Amsterdam jumps 02:00 -> 03:00 becomes 03:30 CEST;
* a wall time that exists twice (the fall-back fold) maps to its second, standard-time occurrence, or to
  both occurrences when the caller asks (hourly-or-faster cron schedules fire twice in the repeated hour).

We use the stdlib `zoneinfo` (pendulum's timezones subclass it) because its PEP 495 `fold` semantics give
exactly these rules: for a gap, fold=0 reads the wall time with the offset from before the switch, which
lands after the gap; for a fold, fold=0/1 pick the first/second occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagrunner.errors import InvalidTimezoneError

if TYPE_CHECKING:
    from dagrunner.timetables.base import DagRunInfo

# How far around an instant we look for an offset change. A day covers every real DST switch (and the
# 24-hour date-line jumps), while two switches in opposite directions within a day do not occur.
_NEAR = timedelta(days=1)


@lru_cache(maxsize=256)
def load_zone(name: str) -> ZoneInfo:
    """The zone for an IANA name, or InvalidTimezoneError naming the value and what a valid one is."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        raise InvalidTimezoneError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Amsterdam', 'America/New_York' or 'UTC'"
        ) from None


def timezone_name(tz: tzinfo | None) -> str:
    """The IANA name of a datetime's tzinfo (a `start_date`'s, say), so a DAG can store its timezone.

    Accepts zoneinfo and pendulum zones, `datetime.timezone.utc`, pytz zones and whole-hour fixed
    offsets (as `Etc/GMT-N`, whose sign is inverted by POSIX convention). A fixed offset with minutes
    has no IANA name, and a timetable needs DST rules, so that is an InvalidTimezoneError.
    """
    if tz is None:
        return "UTC"
    if isinstance(tz, ZoneInfo):
        return tz.key
    pytz_name = getattr(tz, "zone", None)
    if isinstance(pytz_name, str):
        return load_zone(pytz_name).key
    offset = tz.utcoffset(None)
    if offset is not None and offset % timedelta(hours=1) == timedelta(0):
        hours = offset // timedelta(hours=1)
        return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    raise InvalidTimezoneError(
        f"timezone {tz!r} has no IANA name: give the start_date a named zone, e.g. "
        "pendulum.datetime(2026, 1, 1, tz='Europe/Amsterdam')"
    )


def to_utc(value: datetime, zone: ZoneInfo) -> datetime:
    """`value` as a plain stdlib datetime in UTC; a naive value is read as wall time in `zone`."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return plain_utc(aware)


def plain_utc(value: datetime) -> datetime:
    """An aware datetime converted to UTC as a stdlib `datetime` (never a pendulum subclass).

    Callers compare, hash and serialize these; one concrete type keeps equality and `isoformat` exact.
    """
    u = value.astimezone(UTC)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=UTC)


def local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading of an aware instant in `zone`."""
    return instant.astimezone(zone).replace(tzinfo=None)


def wall_to_utc(wall: datetime, zone: ZoneInfo, *, both_folds: bool) -> list[datetime]:
    """The UTC instants at which a naive wall time happens in `zone`, earliest first.

    One instant normally; for a time in the spring-forward gap, the instant the gap pushes it to; for a
    time in the fall-back fold, the second occurrence, or both when `both_folds`.
    """
    first = plain_utc(wall.replace(tzinfo=zone, fold=0))
    second = plain_utc(wall.replace(tzinfo=zone, fold=1))
    if first == second:
        return [first]
    if first > second:  # a gap: fold=0 used the pre-switch offset, which is the moved-forward time
        return [first]
    return [first, second] if both_folds else [second]


def offset_change_near(zone: ZoneInfo, instant: datetime) -> timedelta:
    """How far the zone's UTC offset moves within a day of `instant` (zero away from DST switches).

    Tick enumeration uses this as its look-around: only near a switch can a later wall time map to an
    earlier instant (or a gap time map past a later one), and never by more than the switch's size.
    """
    here = _offset(zone, instant)
    return max(abs(_offset(zone, instant - _NEAR) - here), abs(_offset(zone, instant + _NEAR) - here))


def is_dst_affected(info: DagRunInfo, timezone: str) -> bool:
    """Whether a run touches a local day on which the UTC offset changes (for the CLI to flag it).

    True if the logical date, run_after or either end of the data interval falls on such a day, or the
    interval spans a switch (a weekly interval holding one is an hour shorter or longer than a week).
    """
    zone = load_zone(timezone)
    instants = (info.logical_date, info.run_after, info.data_interval_start, info.data_interval_end)
    if _offset(zone, info.data_interval_start) != _offset(zone, info.data_interval_end):
        return True
    return any(_day_has_switch(zone, instant) for instant in instants)


def _day_has_switch(zone: ZoneInfo, instant: datetime) -> bool:
    day = instant.astimezone(zone).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    next_midnight = midnight + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
    return _offset(zone, midnight) != _offset(zone, next_midnight)


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset for an aware instant
    return offset
