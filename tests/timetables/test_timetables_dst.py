"""DST behaviour of every schedule kind, as exact UTC instants (DESIGN section 4, "DST").

Switches used: Europe/Amsterdam 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z) and 2026-10-25 03:00 CEST ->
02:00 CET (01:00Z); America/New_York 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) and 2026-11-01 02:00 EDT
-> 01:00 EST (06:00Z).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from dateutil.relativedelta import relativedelta

from dagrunner.timetables import CronDataIntervalTimetable, DeltaDataIntervalTimetable, make_timetable
from dagrunner.timetables.cron import covers_every_hour
from dagrunner.timetables.zones import load_zone, wall_to_utc

AMS = "Europe/Amsterdam"
NYC = "America/New_York"


def z(text: str) -> datetime:
    """A UTC instant from 'YYYY-MM-DD HH:MM'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def run_afters(schedule: object, tz: str, start_local: datetime, until: datetime) -> list[datetime]:
    timetable = make_timetable(schedule, timezone=tz)
    runs = timetable.iter_runs(start_date=start_local, end_date=None, until=until)
    return [run.run_after for run in runs]


CASES = [
    pytest.param(
        "30 2 * * *", AMS, datetime(2026, 3, 28), z("2026-03-31 00:00"),
        ["2026-03-28 01:30", "2026-03-29 01:30", "2026-03-30 00:30"],
        id="ams-spring-daily-0230-moves-to-0330",
    ),
    pytest.param(
        "0 2 * * *", AMS, datetime(2026, 3, 28), z("2026-03-30 12:00"),
        ["2026-03-28 01:00", "2026-03-29 01:00", "2026-03-30 00:00"],
        id="ams-spring-daily-0200-moves-to-0300",
    ),
    pytest.param(
        "30 2 * * *", AMS, datetime(2026, 10, 24), z("2026-10-27 00:00"),
        ["2026-10-24 00:30", "2026-10-25 01:30", "2026-10-26 01:30"],
        id="ams-fall-daily-0230-once-at-second",
    ),
    pytest.param(
        "0 0 * * *", AMS, datetime(2026, 3, 28), z("2026-03-30 12:00"),
        ["2026-03-27 23:00", "2026-03-28 23:00", "2026-03-29 22:00"],
        id="ams-spring-midnight-keeps-wall-time",
    ),
    pytest.param(
        "30 * * * *", AMS, datetime(2026, 3, 29), z("2026-03-29 03:00"),
        ["2026-03-28 23:30", "2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29 02:30"],
        id="ams-spring-hourly-skips-missing-hour",
    ),
    pytest.param(
        "30 * * * *", AMS, datetime(2026, 10, 25), z("2026-10-25 04:00"),
        ["2026-10-24 22:30", "2026-10-24 23:30", "2026-10-25 00:30", "2026-10-25 01:30",
         "2026-10-25 02:30", "2026-10-25 03:30"],
        id="ams-fall-hourly-fires-twice-in-repeated-hour",
    ),
    pytest.param(
        "*/30 * * * *", AMS, datetime(2026, 10, 25, 2, 0), z("2026-10-25 01:59"),
        ["2026-10-25 00:00", "2026-10-25 00:30", "2026-10-25 01:00", "2026-10-25 01:30"],
        id="ams-fall-half-hourly-both-passes",
    ),
    pytest.param(
        "*/30 * * * *", AMS, datetime(2026, 3, 29, 1, 0), z("2026-03-29 02:00"),
        ["2026-03-29 00:00", "2026-03-29 00:30", "2026-03-29 01:00", "2026-03-29 01:30", "2026-03-29 02:00"],
        id="ams-spring-half-hourly-no-duplicates",
    ),
    pytest.param(
        "30 2 * * *", NYC, datetime(2026, 3, 7), z("2026-03-10 00:00"),
        ["2026-03-07 07:30", "2026-03-08 07:30", "2026-03-09 06:30"],
        id="nyc-spring-daily-0230-moves-to-0330",
    ),
    pytest.param(
        "30 1 * * *", NYC, datetime(2026, 10, 31), z("2026-11-03 00:00"),
        ["2026-10-31 05:30", "2026-11-01 06:30", "2026-11-02 06:30"],
        id="nyc-fall-daily-0130-once-at-second",
    ),
    pytest.param(
        "30 * * * *", NYC, datetime(2026, 3, 8), z("2026-03-08 08:00"),
        ["2026-03-08 05:30", "2026-03-08 06:30", "2026-03-08 07:30"],
        id="nyc-spring-hourly-skips-missing-hour",
    ),
    pytest.param(
        "30 * * * *", NYC, datetime(2026, 11, 1), z("2026-11-01 08:00"),
        ["2026-11-01 04:30", "2026-11-01 05:30", "2026-11-01 06:30", "2026-11-01 07:30"],
        id="nyc-fall-hourly-fires-twice-in-repeated-hour",
    ),
    pytest.param(
        timedelta(hours=24), AMS, datetime(2026, 3, 28), z("2026-03-30 00:00"),
        ["2026-03-27 23:00", "2026-03-28 23:00", "2026-03-29 23:00"],
        id="ams-spring-timedelta-keeps-absolute-spacing",
    ),
    pytest.param(
        timedelta(hours=24), NYC, datetime(2026, 10, 31), z("2026-11-02 05:00"),
        ["2026-10-31 04:00", "2026-11-01 04:00", "2026-11-02 04:00"],
        id="nyc-fall-timedelta-keeps-absolute-spacing",
    ),
    pytest.param(
        timedelta(hours=1), AMS, datetime(2026, 10, 25, 1, 0), z("2026-10-25 02:00"),
        ["2026-10-24 23:00", "2026-10-25 00:00", "2026-10-25 01:00", "2026-10-25 02:00"],
        id="ams-fall-hourly-timedelta-absolute",
    ),
    pytest.param(
        relativedelta(days=1), AMS, datetime(2026, 3, 28, 0, 30), z("2026-03-30 00:00"),
        ["2026-03-27 23:30", "2026-03-28 23:30", "2026-03-29 22:30"],
        id="ams-spring-relativedelta-days-keeps-wall-time",
    ),
    pytest.param(
        relativedelta(days=1), AMS, datetime(2026, 3, 28, 2, 30), z("2026-03-30 12:00"),
        ["2026-03-28 01:30", "2026-03-29 01:30", "2026-03-30 00:30"],
        id="ams-spring-relativedelta-gap-moves-forward",
    ),
    pytest.param(
        relativedelta(months=1), AMS, datetime(2026, 1, 31, 9, 0), z("2026-05-01 00:00"),
        ["2026-01-31 08:00", "2026-02-28 08:00", "2026-03-31 07:00", "2026-04-30 07:00"],
        id="ams-relativedelta-month-ends-without-drift",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("schedule", "tz", "start_local", "until", "expected"), CASES)
def test_run_afters_across_dst(
    schedule: object, tz: str, start_local: datetime, until: datetime, expected: list[str]
) -> None:
    assert run_afters(schedule, tz, start_local, until) == [z(text) for text in expected]


def test_daily_data_intervals_stretch_to_25_hours_on_fall_back() -> None:
    timetable = CronDataIntervalTimetable("0 0 * * *", AMS)
    runs = list(timetable.iter_runs(start_date=datetime(2026, 10, 24), end_date=datetime(2026, 10, 26)))
    assert [(r.data_interval_start, r.data_interval_end) for r in runs] == [
        (z("2026-10-23 22:00"), z("2026-10-24 22:00")),
        (z("2026-10-24 22:00"), z("2026-10-25 23:00")),
        (z("2026-10-25 23:00"), z("2026-10-26 23:00")),
    ]
    assert all(r.logical_date == r.data_interval_start and r.run_after == r.data_interval_end for r in runs)


def test_timedelta_data_intervals_are_fixed_durations_across_spring_forward() -> None:
    timetable = DeltaDataIntervalTimetable(timedelta(days=1), AMS)
    runs = list(timetable.iter_runs(start_date=datetime(2026, 3, 28), end_date=datetime(2026, 3, 29)))
    assert [r.data_interval_end - r.data_interval_start for r in runs] == [timedelta(days=1)] * 2
    assert [r.logical_date for r in runs] == [z("2026-03-27 23:00"), z("2026-03-28 23:00")]


def test_hourly_preset_keeps_absolute_hours_through_the_repeated_hour() -> None:
    after = z("2026-10-24 22:00")
    ticks = run_afters("@hourly", AMS, after, z("2026-10-25 03:00"))
    assert ticks == [after + timedelta(hours=h) for h in range(6)]


def test_next_dagrun_info_steps_through_the_fold_one_run_at_a_time() -> None:
    timetable = make_timetable("30 * * * *", timezone=AMS)
    first = timetable.next_dagrun_info(
        last=None,
        start_date=datetime(2026, 10, 25, 2, 0),
        end_date=None,
        catchup=True,
        now=z("2026-10-26 00:00"),
    )
    assert first is not None and first.run_after == z("2026-10-25 00:30")
    second = timetable.next_dagrun_info(
        last=first,
        start_date=datetime(2026, 10, 25, 2, 0),
        end_date=None,
        catchup=True,
        now=z("2026-10-26 00:00"),
    )
    assert second is not None and second.run_after == z("2026-10-25 01:30")


def test_catchup_false_inside_the_repeated_hour_picks_the_latest_pass() -> None:
    timetable = make_timetable("30 * * * *", timezone=AMS)
    info = timetable.next_dagrun_info(
        last=None, start_date=datetime(2026, 1, 1), end_date=None, catchup=False, now=z("2026-10-25 01:45")
    )
    assert info is not None and info.run_after == z("2026-10-25 01:30")


@functools.cache
def _minutes_of_day(expression: str) -> frozenset[tuple[int, int]]:
    return frozenset(
        (h, m) for h in range(24) for m in range(60) if croniter.match(expression, datetime(2026, 1, 1, h, m))
    )


def _reference_ticks(expression: str, tz: str, first: datetime, last: datetime) -> list[datetime]:
    """The DST rules applied by brute force: test every local minute with croniter.match, map it to UTC.

    The expressions used here fire every day, so a match depends on the hour and minute only.
    """
    zone, both, day_matches = load_zone(tz), covers_every_hour(expression), _minutes_of_day(expression)
    wall = first.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
    instants: set[datetime] = set()
    while wall <= last.astimezone(zone).replace(tzinfo=None) + timedelta(hours=3):
        if (wall.hour, wall.minute) in day_matches:
            instants.update(wall_to_utc(wall, zone, both_folds=both))
        wall += timedelta(minutes=1)
    return sorted(t for t in instants if first <= t <= last)


@pytest.mark.parametrize(
    ("tz", "switch"),
    [
        (AMS, z("2026-03-29 01:00")),
        (AMS, z("2026-10-25 01:00")),
        (NYC, z("2026-03-08 07:00")),
        (NYC, z("2026-11-01 06:00")),
        ("Australia/Lord_Howe", z("2026-04-04 15:00")),  # a half-hour switch
        ("Australia/Lord_Howe", z("2026-10-03 15:30")),
    ],
    ids=lambda value: value if isinstance(value, str) else value.strftime("%m-%d"),
)
@pytest.mark.parametrize("expression", ["*/20 * * * *", "30 * * * *", "20,40 1-3 * * *", "15 2 * * *"])
def test_tick_enumeration_matches_brute_force(tz: str, switch: datetime, expression: str) -> None:
    # The enumeration starts a switch's size early and holds ticks back until they are settled; a
    # minute-by-minute reference shows nothing is lost, duplicated or out of order, wherever it starts.
    first, last = switch - timedelta(hours=26), switch + timedelta(hours=26)
    expected = _reference_ticks(expression, tz, first, last)
    timetable = make_timetable(expression, timezone=tz)
    for start in (first, switch - timedelta(minutes=10), switch, switch + timedelta(minutes=40)):
        runs = timetable.iter_runs(start_date=start, end_date=None, until=last)
        assert [run.run_after for run in runs] == [t for t in expected if t >= start]
