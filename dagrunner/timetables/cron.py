"""Cron expressions: validation, presets, human descriptions, and DST-correct tick enumeration.

croniter (7.x) parses and matches the expression, but we only ever ask it about *naive* wall times,
where it does plain calendar arithmetic, and map each matching wall time to UTC ourselves
(`zones.wall_to_utc`). Given aware datetimes croniter gets DST wrong for our rules: on spring-forward day
it fires "30 2 * * *" at 03:00 instead of 03:30, and on fall-back day it fires a daily "30 2 * * *"
twice. Owning the mapping keeps the rules in one place and testable.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from dagrunner.errors import InvalidScheduleError
from dagrunner.timetables.ticks import Ticks
from dagrunner.timetables.zones import local_wall, offset_change_near, wall_to_utc

PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_VALID = (
    "a valid schedule is five cron fields (minute hour day-of-month month day-of-week, e.g. '0 6 * * *'), "
    f"a preset ({', '.join(PRESETS)}), '@once' or None"
)
# croniter's "R" (random) and "H" (hashed) fields would give a different schedule per process.
_RANDOM_FIELD = re.compile(r"(?<![A-Za-z])[RH](?![A-Za-z])", re.IGNORECASE)
# A leap-day schedule waits up to eight years; nothing valid waits longer than this.
_HORIZON = timedelta(days=366 * 12)
_DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_DAY_ABBREVIATIONS = {name[:3].lower(): i for i, name in enumerate(_DAY_NAMES[:7])}
_MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def parse_cron(schedule: str) -> str:
    """The five-field expression for a cron string or preset, or InvalidScheduleError naming it."""
    text = schedule.strip()
    if text.startswith("@"):
        if text.lower() not in PRESETS:
            raise InvalidScheduleError(f"unknown schedule preset {schedule!r}: {_VALID}")
        return PRESETS[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        raise InvalidScheduleError(f"invalid cron expression {schedule!r} ({len(fields)} fields): {_VALID}")
    if _RANDOM_FIELD.search(text):
        raise InvalidScheduleError(f"cron expression {schedule!r} uses a random or hashed field: {_VALID}")
    expression = " ".join(fields)
    try:
        croniter(expression, datetime(2000, 1, 1), day_or=True).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidScheduleError(f"cron expression {schedule!r} never fires: {_VALID}") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError, IndexError) as error:
        raise InvalidScheduleError(f"invalid cron expression {schedule!r} ({error}): {_VALID}") from None
    return expression


def covers_every_hour(expression: str) -> bool:
    """Whether the schedule fires in every hour of its days (hour field `*`): "hourly or faster".

    Such schedules fire in both passes of a repeated (fall-back) hour; slower ones fire once, in the
    second. Judged on the hour field, as Airflow does: "*/15 * * * *" and "30 * * * *" qualify,
    "*/5 2 * * *" (every five minutes, but only at two o'clock) does not.
    """
    hours = croniter(expression).expanded[1]
    return hours == ["*"] or set(range(24)) <= set(hours)


class CronTicks(Ticks):
    """The instants a cron expression fires at in a zone, with DESIGN's DST rules applied."""

    def __init__(self, expression: str, zone: ZoneInfo) -> None:
        self._expression = expression
        self._zone = zone
        self._both_folds = covers_every_hour(expression)

    def iter_from(self, start: datetime) -> Iterator[datetime]:
        # Matching wall times come from croniter in wall order, but near a DST switch wall order and
        # time order differ (a gap time maps past later wall times; the second pass of a fold repeats
        # earlier wall times). So we start a switch's size early and hold each instant in a heap until
        # no later wall time can map before it any more.
        pending: list[datetime] = []
        last: datetime | None = None
        lookback = offset_change_near(self._zone, start)
        for wall in self._walls_from(local_wall(start, self._zone) - lookback):
            while pending and wall > self._settled_after(pending[0]):
                tick = heapq.heappop(pending)
                if last is None or tick > last:
                    last = tick
                    yield tick
            for tick in wall_to_utc(wall, self._zone, both_folds=self._both_folds):
                if tick >= start:
                    heapq.heappush(pending, tick)
        yield from sorted(t for t in set(pending) if last is None or t > last)

    def at_or_before(self, instant: datetime) -> datetime | None:
        # Search forward through windows that end at `instant`, sized first by croniter's latest match
        # on the wall clock (plus any nearby DST switch), so the first window nearly always suffices;
        # widen it if DST arithmetic pushed that match past `instant`.
        wall = local_wall(instant, self._zone)
        try:
            latest_wall = croniter(self._expression, wall + timedelta(seconds=1), day_or=True).get_prev(datetime)
        except (CroniterBadDateError, OverflowError, ValueError):
            return None
        window = (wall - latest_wall) + offset_change_near(self._zone, instant) + timedelta(minutes=1)
        while window <= _HORIZON:
            found = None
            for tick in self.iter_from(instant - window):
                if tick > instant:
                    break
                found = tick
            if found is not None:
                return found
            window *= 4
        return None

    def _settled_after(self, tick: datetime) -> datetime:
        """The wall time after which no matching wall time can map to an instant before `tick`."""
        return local_wall(tick, self._zone) + offset_change_near(self._zone, tick)

    def _walls_from(self, lowest: datetime) -> Iterator[datetime]:
        """Naive wall times matching the expression, from `lowest` on (croniter's get_next is strict)."""
        matches = croniter(self._expression, lowest - timedelta(seconds=1), day_or=True)
        while True:
            try:
                yield matches.get_next(datetime)
            except (CroniterBadDateError, OverflowError, ValueError):
                return


def describe_cron(expression: str) -> str:
    """Human words for common shapes ("every day at 06:00"), else the expression itself."""
    minute, hour, dom, month, dow = expression.split()
    step = re.fullmatch(r"\*/(\d+)", minute)
    if (hour, dom, month, dow) == ("*", "*", "*", "*"):
        if minute == "*":
            return "every minute"
        if step:
            return f"every {step.group(1)} minutes"
        if minute.isdigit():
            return f"every hour at :{int(minute):02d}"
    if not (minute.isdigit() and hour.isdigit()):
        return f"cron '{expression}'"
    at = f"at {int(hour):02d}:{int(minute):02d}"
    return _describe_days(dom, month, dow, at) or f"cron '{expression}'"


def _describe_days(dom: str, month: str, dow: str, at: str) -> str | None:
    day = _day_of_week(dow)
    month_step = re.fullmatch(r"\*/(\d+)", month)
    if (dom, month, dow) == ("*", "*", "*"):
        return f"every day {at}"
    if (dom, month) == ("*", "*") and day is not None:
        return f"every {day} {at}"
    if not dom.isdigit() or dow != "*":
        return None
    if month == "*":
        return f"on day {int(dom)} of every month {at}"
    if month_step:
        return f"on day {int(dom)} of every {month_step.group(1)} months from January {at}"
    if month.isdigit() and 1 <= int(month) <= 12:
        return f"every year on {int(dom)} {_MONTH_NAMES[int(month) - 1]} {at}"
    return None


def _day_of_week(field: str) -> str | None:
    if field.isdigit() and int(field) <= 7:
        return _DAY_NAMES[int(field)]
    index = _DAY_ABBREVIATIONS.get(field.lower())
    return None if index is None else _DAY_NAMES[index]
