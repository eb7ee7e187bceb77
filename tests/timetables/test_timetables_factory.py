"""Building timetables from `schedule=`, storing them as JSON, run ids, and DST flags for the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pendulum
import pytest
from dateutil.relativedelta import FR, relativedelta

from dagrunner.errors import InvalidRunIdError, InvalidScheduleError, InvalidTimezoneError
from dagrunner.timetables import (
    PRESETS,
    RUN_ID_PATTERN,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DagRunInfo,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    NullTimetable,
    OnceTimetable,
    Timetable,
    deserialize_timetable,
    is_dst_affected,
    make_run_id,
    make_timetable,
    timezone_name,
    validate_run_id,
)

AMS = "Europe/Amsterdam"


@pytest.mark.parametrize(
    ("schedule", "data_intervals", "expected_type"),
    [
        ("0 6 * * *", False, CronTriggerTimetable),
        ("0 6 * * *", True, CronDataIntervalTimetable),
        ("@daily", False, CronTriggerTimetable),
        ("@daily", True, CronDataIntervalTimetable),
        (timedelta(hours=1), False, DeltaTriggerTimetable),
        (timedelta(hours=1), True, DeltaDataIntervalTimetable),
        (relativedelta(months=1), False, DeltaTriggerTimetable),
        (relativedelta(months=1), True, DeltaDataIntervalTimetable),
        ("@once", False, OnceTimetable),
        ("@once", True, OnceTimetable),
        (None, False, NullTimetable),
        (None, True, NullTimetable),
    ],
)
def test_make_timetable_picks_the_family(schedule: object, data_intervals: bool, expected_type: type) -> None:
    timetable = make_timetable(schedule, timezone=AMS, create_cron_data_intervals=data_intervals)
    assert type(timetable) is expected_type
    assert timetable.timezone == AMS
    assert timetable.is_data_interval == (data_intervals and timetable.periodic)


@pytest.mark.parametrize(
    ("preset", "expression"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@quarterly", "0 0 1 */3 *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_presets(preset: str, expression: str) -> None:
    timetable = make_timetable(preset, timezone="UTC")
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.expression == expression == PRESETS[preset]


def test_quarterly_fires_on_the_first_of_each_quarter() -> None:
    runs = make_timetable("@quarterly", timezone="UTC").runs_between(
        datetime(2026, 1, 1), datetime(2026, 12, 31), start_date=None, end_date=None
    )
    assert [r.logical_date.month for r in runs] == [1, 4, 7, 10]


def test_a_timetable_object_keeps_its_own_timezone_or_takes_the_dags() -> None:
    explicit = CronTriggerTimetable("0 6 * * *", "America/New_York")
    assert make_timetable(explicit, timezone=AMS) is explicit
    unset = CronTriggerTimetable("0 6 * * *")
    placed = make_timetable(unset, timezone=AMS)
    assert placed.timezone == AMS and type(placed) is CronTriggerTimetable
    assert unset.timezone == "UTC"  # the caller's object is not changed: it may serve other DAGs


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("61 * * * *", "out of range"),
        ("not a cron", "3 fields"),
        ("@fortnightly", "unknown schedule preset"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 * * * *", "6 fields"),
        ("R * * * *", "random"),
        ("", "0 fields"),
    ],
)
def test_invalid_cron_names_the_value_and_what_is_valid(schedule: str, words: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        make_timetable(schedule, timezone="UTC")
    message = str(caught.value)
    assert repr(schedule) in message and words in message
    assert "'0 6 * * *'" in message and "@daily" in message


@pytest.mark.parametrize(
    "schedule",
    [42, 1.5, timedelta(0), timedelta(hours=-1), relativedelta(day=1), relativedelta(), ["0 6 * * *"]],
    ids=["int", "float", "zero", "negative", "absolute-day-only", "empty-relativedelta", "list"],
)
def test_other_invalid_schedules(schedule: object) -> None:
    with pytest.raises(InvalidScheduleError, match="schedule"):
        make_timetable(schedule, timezone="UTC")


@pytest.mark.parametrize("build", [
    lambda: make_timetable("@daily", timezone="Mars/Olympus"),
    lambda: CronTriggerTimetable("@daily", "Mars/Olympus"),
    lambda: OnceTimetable("Mars/Olympus"),
    lambda: make_timetable(CronTriggerTimetable("@daily"), timezone="Mars/Olympus"),
])  # fmt: skip
def test_unknown_timezone_names_the_value(build: object) -> None:
    with pytest.raises(InvalidTimezoneError, match="'Mars/Olympus'.*IANA"):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("name", ["Europe", "../etc/passwd", "/etc/passwd", "", "utc "])
def test_timezone_names_that_are_not_zones(name: str) -> None:
    with pytest.raises(InvalidTimezoneError):
        make_timetable(None, timezone=name)


ALL_KINDS: list[Timetable] = [
    CronTriggerTimetable("0 6 * * 1-5", AMS),
    CronDataIntervalTimetable("@daily", "America/New_York"),
    DeltaTriggerTimetable(timedelta(minutes=30), AMS),
    DeltaDataIntervalTimetable(timedelta(days=1, seconds=5, microseconds=7)),
    DeltaTriggerTimetable(relativedelta(months=1, day=31), AMS),
    DeltaDataIntervalTimetable(relativedelta(weeks=1, weekday=FR(+1), hour=6)),
    OnceTimetable(AMS),
    NullTimetable(),
]


@pytest.mark.parametrize("timetable", ALL_KINDS, ids=lambda t: type(t).__name__)
def test_serialize_round_trip(timetable: Timetable) -> None:
    data = json.loads(json.dumps(timetable.serialize()))
    restored = deserialize_timetable(data)
    assert restored == timetable and hash(restored) == hash(timetable)
    assert type(restored) is type(timetable)
    assert restored.timezone == timetable.timezone
    assert restored.description == timetable.description
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert list(restored.iter_runs(start_date=start, end_date=datetime(2026, 1, 20, tzinfo=UTC))) == list(
        timetable.iter_runs(start_date=start, end_date=datetime(2026, 1, 20, tzinfo=UTC))
    )


@pytest.mark.parametrize(
    "data",
    [
        {"type": "lunar"},
        {},
        {"type": "cron_trigger"},
        {"type": "cron_trigger", "cron": "61 * * * *", "timezone": "UTC"},
    ],
    ids=["unknown-type", "no-type", "missing-field", "bad-cron"],
)
def test_deserialize_rejects_broken_data(data: dict) -> None:
    with pytest.raises(InvalidScheduleError):
        deserialize_timetable(data)


@pytest.mark.parametrize(
    ("schedule", "tz", "description"),
    [
        ("0 6 * * *", AMS, "every day at 06:00 (Europe/Amsterdam)"),
        ("@hourly", "UTC", "every hour at :00"),
        ("*/30 * * * *", "UTC", "every 30 minutes"),
        ("* * * * *", "UTC", "every minute"),
        ("@weekly", "UTC", "every Sunday at 00:00"),
        ("30 7 * * MON", "UTC", "every Monday at 07:30"),
        ("@monthly", "UTC", "on day 1 of every month at 00:00"),
        ("@yearly", "UTC", "every year on 1 January at 00:00"),
        ("0 9 * * 1-5", "UTC", "cron '0 9 * * 1-5'"),
        (timedelta(minutes=30), "UTC", "every 30 minutes"),
        (timedelta(days=1), "UTC", "every day"),
        (timedelta(hours=1, minutes=30), "UTC", "every 1 hour 30 minutes"),
        (relativedelta(months=1), "UTC", "every month"),
        (relativedelta(months=3), "UTC", "every 3 months"),
        ("@once", "UTC", "once"),
        (None, "UTC", "never (manual only)"),
    ],
)
def test_descriptions(schedule: object, tz: str, description: str) -> None:
    assert make_timetable(schedule, timezone=tz).description == description


class TestRunIds:
    @pytest.mark.parametrize(
        ("run_type", "when", "expected"),
        [
            ("scheduled", datetime(2026, 1, 5, tzinfo=UTC), "scheduled__2026-01-05T00:00:00+00:00"),
            ("manual", pendulum.datetime(2026, 1, 5, 1, tz=AMS), "manual__2026-01-05T00:00:00+00:00"),
            ("backfill", datetime(2026, 1, 5, 0, 0, 0, 1500, tzinfo=UTC), "backfill__2026-01-05T00:00:00.001500+00:00"),
            ("asset_triggered", datetime(2026, 7, 1, 12, 30, 15, tzinfo=timezone(timedelta(hours=-4))), "asset_triggered__2026-07-01T16:30:15+00:00"),
        ],
    )  # fmt: skip
    def test_make_run_id(self, run_type: str, when: datetime, expected: str) -> None:
        assert make_run_id(run_type, when) == expected
        assert validate_run_id(expected) == expected

    def test_make_run_id_refuses_guesses(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            make_run_id("manual", datetime(2026, 1, 5))
        with pytest.raises(ValueError, match="run_type"):
            make_run_id("cron", datetime(2026, 1, 5, tzinfo=UTC))

    @pytest.mark.parametrize("run_id", ["nightly", "my-run.1~x", "manual__2026-01-05T00:00:00+00:00", "a" * 250])
    def test_valid_run_ids(self, run_id: str) -> None:
        assert validate_run_id(run_id) == run_id

    @pytest.mark.parametrize(
        "run_id", ["", "a b", "../etc", "run/1", "x;rm -rf", "é", "line\nbreak", "..", ".", "a" * 251]
    )
    def test_invalid_run_ids_name_the_value_and_pattern(self, run_id: str) -> None:
        with pytest.raises(InvalidRunIdError) as caught:
            validate_run_id(run_id)
        message = str(caught.value)
        assert RUN_ID_PATTERN.pattern in message
        assert repr(run_id[:80]).rstrip("'") in message


class TestDstAffected:
    @pytest.mark.parametrize(
        ("info", "tz", "expected"),
        [
            (DagRunInfo.at(datetime(2026, 3, 28, 23, tzinfo=UTC)), AMS, True),  # 29 Mar 00:00 local
            (DagRunInfo.at(datetime(2026, 3, 27, 23, tzinfo=UTC)), AMS, False),
            (DagRunInfo.at(datetime(2026, 3, 29, 22, tzinfo=UTC)), AMS, False),  # 30 Mar 00:00 CEST
            (DagRunInfo.at(datetime(2026, 10, 25, 1, 30, tzinfo=UTC)), AMS, True),
            (DagRunInfo.at(datetime(2026, 11, 1, 6, 30, tzinfo=UTC)), "America/New_York", True),
            (DagRunInfo.at(datetime(2026, 11, 1, 6, 30, tzinfo=UTC)), AMS, False),
            (DagRunInfo.at(datetime(2026, 3, 29, 1, 30, tzinfo=UTC)), "UTC", False),
            (
                DagRunInfo.interval(datetime(2026, 3, 22, 23, tzinfo=UTC), datetime(2026, 3, 30, 22, tzinfo=UTC)),
                AMS,
                True,
            ),  # a week holding the switch, though neither end is on that day
        ],
    )
    def test_flags_runs_on_switch_days(self, info: DagRunInfo, tz: str, expected: bool) -> None:
        assert is_dst_affected(info, tz) is expected


@pytest.mark.parametrize(
    ("tz", "name"),
    [
        (None, "UTC"),
        (UTC, "UTC"),
        (pendulum.timezone(AMS), AMS),
        (pendulum.UTC, "UTC"),
        (timezone(timedelta(hours=2)), "Etc/GMT-2"),
        (timezone(timedelta(hours=-5)), "Etc/GMT+5"),
    ],
)
def test_timezone_name_of_a_start_date(tz: object, name: str) -> None:
    assert timezone_name(tz) == name  # type: ignore[arg-type]
    make_timetable("@daily", timezone=name)


def test_timezone_name_refuses_offsets_without_a_zone() -> None:
    with pytest.raises(InvalidTimezoneError, match="no IANA name"):
        timezone_name(timezone(timedelta(hours=5, minutes=30)))
