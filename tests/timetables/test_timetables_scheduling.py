"""What the scheduler, backfill and `dags next-runs` get from each timetable (DESIGN section 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pendulum
import pytest
from dateutil.relativedelta import relativedelta

from dagrunner.timetables import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DagRunInfo,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    NullTimetable,
    OnceTimetable,
    Timetable,
    make_timetable,
)

AMS = "Europe/Amsterdam"


def u(day: int, hour: int = 0, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


START = u(1)
NOW = u(10, 13, 45)


def trigger(day: int, hour: int = 0) -> DagRunInfo:
    return DagRunInfo.at(u(day, hour))


def interval(start_day: int, end_day: int) -> DagRunInfo:
    return DagRunInfo.interval(u(start_day), u(end_day))


def next_info(
    timetable: Timetable,
    *,
    last: DagRunInfo | None = None,
    start: datetime | None = START,
    end: datetime | None = None,
    catchup: bool = True,
    now: datetime = NOW,
) -> DagRunInfo | None:
    return timetable.next_dagrun_info(last=last, start_date=start, end_date=end, catchup=catchup, now=now)


DAILY_TRIGGER = CronTriggerTimetable("@daily")
DAILY_INTERVAL = CronDataIntervalTimetable("@daily")

NEXT_CASES = [
    # trigger family: the run is the tick itself
    pytest.param(DAILY_TRIGGER, {}, trigger(1), id="trigger-catchup-first-is-start"),
    pytest.param(DAILY_TRIGGER, {"last": trigger(1)}, trigger(2), id="trigger-catchup-next-after-last"),
    pytest.param(DAILY_TRIGGER, {"start": u(1, 6)}, trigger(2), id="trigger-start-aligned-forward"),
    pytest.param(DAILY_TRIGGER, {"catchup": False}, trigger(10), id="trigger-no-catchup-runs-today-at-once"),
    pytest.param(DAILY_TRIGGER, {"catchup": False, "last": trigger(3)}, trigger(10), id="trigger-no-catchup-skips-backlog"),
    pytest.param(DAILY_TRIGGER, {"catchup": False, "last": trigger(10)}, trigger(11), id="trigger-no-catchup-then-future"),
    pytest.param(DAILY_TRIGGER, {"catchup": False, "start": u(1, month=2)}, DagRunInfo.at(u(1, month=2)), id="trigger-future-start"),
    pytest.param(DAILY_TRIGGER, {"catchup": False, "now": u(10)}, trigger(10), id="trigger-now-on-a-tick"),
    pytest.param(DAILY_TRIGGER, {"last": trigger(4), "end": u(5)}, trigger(5), id="trigger-end-date-inclusive"),
    pytest.param(DAILY_TRIGGER, {"last": trigger(5), "end": u(5)}, None, id="trigger-past-end-date"),
    pytest.param(DAILY_TRIGGER, {"start": None, "catchup": True}, trigger(10), id="trigger-no-start-latest-due"),
    # data-interval family: the run covers [tick, next tick) and starts at its end
    pytest.param(DAILY_INTERVAL, {}, interval(1, 2), id="interval-catchup-first"),
    pytest.param(DAILY_INTERVAL, {"last": interval(1, 2)}, interval(2, 3), id="interval-catchup-next"),
    pytest.param(DAILY_INTERVAL, {"start": u(1, 6)}, interval(2, 3), id="interval-start-aligned-forward"),
    pytest.param(DAILY_INTERVAL, {"catchup": False}, interval(9, 10), id="interval-no-catchup-yesterday"),
    pytest.param(DAILY_INTERVAL, {"catchup": False, "last": interval(2, 3)}, interval(9, 10), id="interval-no-catchup-skips-backlog"),
    pytest.param(DAILY_INTERVAL, {"catchup": False, "last": interval(9, 10)}, interval(10, 11), id="interval-no-catchup-then-future"),
    pytest.param(DAILY_INTERVAL, {"catchup": False, "now": u(10)}, interval(9, 10), id="interval-now-on-a-boundary"),
    pytest.param(DAILY_INTERVAL, {"catchup": False, "start": u(10)}, interval(10, 11), id="interval-start-today"),
    pytest.param(DAILY_INTERVAL, {"last": interval(4, 5), "end": u(5)}, interval(5, 6), id="interval-end-bounds-start"),
    pytest.param(DAILY_INTERVAL, {"last": interval(5, 6), "end": u(5)}, None, id="interval-past-end-date"),
    pytest.param(
        DAILY_INTERVAL, {"last": DagRunInfo.interval(u(1, 6), u(2, 6))}, interval(2, 3), id="interval-realigns-after-schedule-change"
    ),
    # deltas: a grid from start_date in absolute time
    pytest.param(DeltaTriggerTimetable(timedelta(hours=6)), {"start": u(1, 3)}, trigger(1, 3), id="delta-first-is-start"),
    pytest.param(DeltaTriggerTimetable(timedelta(hours=6)), {"start": u(1, 3), "last": trigger(1, 3)}, trigger(1, 9), id="delta-next"),
    pytest.param(DeltaTriggerTimetable(timedelta(hours=6)), {"start": u(1, 3), "catchup": False}, trigger(10, 9), id="delta-no-catchup"),
    pytest.param(
        DeltaDataIntervalTimetable(timedelta(hours=6)), {"start": u(1, 3), "catchup": False},
        DagRunInfo.interval(u(10, 3), u(10, 9)), id="delta-interval-no-catchup",
    ),
    pytest.param(
        DeltaTriggerTimetable(timedelta(hours=6)), {"start": None, "catchup": False, "now": u(10, 13)}, trigger(10, 13),
        id="delta-no-start-runs-now",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("timetable", "kwargs", "expected"), NEXT_CASES)
def test_next_dagrun_info(timetable: Timetable, kwargs: dict, expected: DagRunInfo | None) -> None:
    assert next_info(timetable, **kwargs) == expected


def test_catchup_walks_every_tick_oldest_first_until_caught_up() -> None:
    runs, last = [], None
    while (info := next_info(DAILY_TRIGGER, last=last, end=u(5))) is not None:
        runs.append(info)
        last = info
    assert [r.logical_date for r in runs] == [u(d) for d in range(1, 6)]


def test_no_catchup_in_amsterdam_runs_todays_tick_in_local_time() -> None:
    timetable = make_timetable("0 6 * * *", timezone=AMS)
    info = next_info(timetable, start=datetime(2026, 1, 1), catchup=False, now=datetime(2026, 1, 10, 13, 45))
    assert info == DagRunInfo.at(u(10, 5))


def test_naive_inputs_are_read_in_the_timetable_timezone() -> None:
    timetable = CronTriggerTimetable("0 0 * * *", AMS)
    info = next_info(timetable, start=datetime(2026, 1, 5), catchup=True)
    assert info is not None and info.logical_date == u(4, 23)


def test_results_are_plain_utc_datetimes_even_from_pendulum_inputs() -> None:
    start = pendulum.datetime(2026, 1, 1, tz=AMS)
    info = next_info(make_timetable("@daily", timezone=AMS), start=start)
    assert info is not None
    assert type(info.run_after) is datetime and info.run_after.tzinfo is UTC
    assert info.run_after == u(1) - timedelta(hours=1)


def test_relativedelta_months_from_month_end() -> None:
    timetable = make_timetable(relativedelta(months=1), timezone="UTC")
    runs = islice(timetable.iter_runs(start_date=u(31), end_date=None), 4)
    assert [r.logical_date for r in runs] == [u(31), u(28, month=2), u(31, month=3), u(30, month=4)]


def test_relativedelta_data_intervals_cover_calendar_months() -> None:
    timetable = DeltaDataIntervalTimetable(relativedelta(months=1))
    info = next_info(timetable, start=u(1), catchup=False, now=u(15, month=3))
    assert info == DagRunInfo.interval(u(1, month=2), u(1, month=3))


class TestOnce:
    def test_runs_once_at_exactly_start_date_even_without_catchup(self) -> None:
        assert next_info(OnceTimetable(), start=u(5, 7), catchup=False, now=u(20)) == trigger(5, 7)

    @pytest.mark.parametrize(
        "kwargs",
        [{"last": trigger(5, 7)}, {"start": None}, {"start": u(5), "end": u(4)}],
        ids=["after-its-run", "no-start-date", "end-before-start"],
    )
    def test_nothing_more(self, kwargs: dict) -> None:
        assert next_info(OnceTimetable(), **{"start": u(5, 7), **kwargs}) is None

    def test_previews_and_backfills_its_single_run(self) -> None:
        once = OnceTimetable()
        assert list(once.iter_runs(start_date=u(5), end_date=None)) == [trigger(5)]
        assert list(once.iter_runs(start_date=u(5), end_date=None, after=u(6))) == []
        assert once.runs_between(u(5), u(5), start_date=u(5), end_date=None) == [trigger(5)]
        assert once.runs_between(u(6), u(9), start_date=u(5), end_date=None) == []
        assert not once.periodic and once.can_be_scheduled


class TestNull:
    def test_never_scheduled(self) -> None:
        null = NullTimetable()
        assert not null.can_be_scheduled and not null.periodic
        for catchup in (True, False):
            assert next_info(null, catchup=catchup) is None
        assert list(null.iter_runs(start_date=u(1), end_date=None)) == []
        assert null.runs_between(u(1), u(9), start_date=u(1), end_date=None) == []

    def test_manual_runs_still_get_a_logical_date(self) -> None:
        assert NullTimetable().manual_run_info(u(3, 12)) == trigger(3, 12)


class TestIterRuns:
    def test_from_start_date_until_inclusive(self) -> None:
        runs = DAILY_TRIGGER.iter_runs(start_date=u(1), end_date=None, until=u(3))
        assert [r.run_after for r in runs] == [u(1), u(2), u(3)]

    def test_after_skips_to_the_first_logical_date_at_or_after_it(self) -> None:
        runs = DAILY_INTERVAL.iter_runs(start_date=u(1), end_date=None, after=u(4, 1), until=u(7))
        assert list(runs) == [interval(5, 6), interval(6, 7)]

    def test_stops_at_end_date(self) -> None:
        trigger_runs = DAILY_TRIGGER.iter_runs(start_date=u(1), end_date=u(3))
        interval_runs = DAILY_INTERVAL.iter_runs(start_date=u(1), end_date=u(3))
        assert [r.logical_date for r in trigger_runs] == [u(1), u(2), u(3)]
        assert [r.logical_date for r in interval_runs] == [u(1), u(2), u(3)]

    def test_delta_grid_is_anchored_at_start_date_not_after(self) -> None:
        timetable = DeltaTriggerTimetable(timedelta(hours=5))
        runs = timetable.iter_runs(start_date=u(1), end_date=None, after=u(1, 12), until=u(2))
        assert [r.run_after for r in runs] == [u(1, 15), u(1, 20)]

    def test_needs_somewhere_to_start(self) -> None:
        with pytest.raises(ValueError, match="start_date or an `after`"):
            next(DAILY_TRIGGER.iter_runs(start_date=None, end_date=None))


class TestRunsBetween:
    @pytest.mark.parametrize("timetable", [DAILY_TRIGGER, DAILY_INTERVAL], ids=["trigger", "interval"])
    def test_both_ends_inclusive(self, timetable: Timetable) -> None:
        runs = timetable.runs_between(u(3), u(5), start_date=u(1), end_date=None)
        assert [r.logical_date for r in runs] == [u(3), u(4), u(5)]

    def test_interval_runs_cover_the_days_asked_for(self) -> None:
        runs = DAILY_INTERVAL.runs_between(u(3), u(4), start_date=u(1), end_date=None)
        assert runs == [interval(3, 4), interval(4, 5)]

    def test_clamped_to_the_dags_own_start_and_end(self) -> None:
        runs = DAILY_TRIGGER.runs_between(u(1), u(9), start_date=u(3), end_date=u(5))
        assert [r.logical_date for r in runs] == [u(3), u(4), u(5)]

    def test_naive_bounds_are_local_dates(self) -> None:
        timetable = CronTriggerTimetable("@daily", AMS)
        runs = timetable.runs_between(datetime(2026, 1, 3), datetime(2026, 1, 5), start_date=None, end_date=None)
        assert [r.logical_date for r in runs] == [u(2, 23), u(3, 23), u(4, 23)]

    def test_unaligned_bounds(self) -> None:
        runs = DAILY_TRIGGER.runs_between(u(3, 1), u(5, 23), start_date=None, end_date=None)
        assert [r.logical_date for r in runs] == [u(4), u(5)]


class TestManualRunInfo:
    def test_trigger_family_is_the_instant(self) -> None:
        assert DAILY_TRIGGER.manual_run_info(u(10, 13, 45)) == DagRunInfo.at(u(10, 13, 45))

    @pytest.mark.parametrize("when", [u(10, 13, 45), u(10)], ids=["mid-period", "on-a-boundary"])
    def test_data_interval_is_last_complete_period_with_logical_date_x(self, when: datetime) -> None:
        info = DAILY_INTERVAL.manual_run_info(when)
        assert (info.data_interval_start, info.data_interval_end) == (u(9), u(10))
        assert info.logical_date == info.run_after == when

    def test_delta_data_interval_ends_at_x(self) -> None:
        info = DeltaDataIntervalTimetable(timedelta(hours=6)).manual_run_info(u(10, 13, 45))
        assert (info.data_interval_start, info.data_interval_end) == (u(10, 7, 45), u(10, 13, 45))

    def test_naive_when_is_local(self) -> None:
        info = CronDataIntervalTimetable("@daily", AMS).manual_run_info(datetime(2026, 1, 10, 13, 45))
        assert info.logical_date == u(10, 12, 45)
        assert (info.data_interval_start, info.data_interval_end) == (u(8, 23), u(9, 23))


def test_day_of_month_and_day_of_week_both_set_means_either() -> None:
    timetable = make_timetable("0 0 1 * 1", timezone="UTC")  # the 1st, or any Monday
    runs = islice(timetable.iter_runs(start_date=u(28, month=5), end_date=None), 8)
    days = [r.logical_date.date().isoformat() for r in runs]
    assert days == [
        "2026-06-01", "2026-06-08", "2026-06-15", "2026-06-22",
        "2026-06-29", "2026-07-01", "2026-07-06", "2026-07-13",
    ]  # fmt: skip


def test_dagruninfo_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DagRunInfo.at(datetime(2026, 1, 1))
