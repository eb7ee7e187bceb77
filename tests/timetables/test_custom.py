"""Custom timetables written as in Airflow, answered through the engine's timetable interface."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dagrunner.errors import InvalidScheduleError
from dagrunner.timetables import deserialize_timetable, make_timetable
from dagrunner.timetables.custom import (
    CustomTimetableAdapter,
    DagRunInfo,
    DataInterval,
    TimeRestriction,
    Timetable,
    register_timetable,
)


class EveryNDays(Timetable):
    """Runs covering N days from start_date, with an argument that must survive serialization."""

    def __init__(self, days: int = 2) -> None:
        self.days = days

    @property
    def summary(self) -> str:
        return f"every {self.days} days"

    def serialize(self) -> dict[str, Any]:
        return {"days": self.days}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(data["days"])

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        return DataInterval(run_after - timedelta(days=self.days), run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is None:
            if restriction.earliest is None:
                return None
            start = restriction.earliest
        else:
            start = last_automated_data_interval.end
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.interval(start=start, end=start + timedelta(days=self.days))


register_timetable(EveryNDays)
START = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_custom_timetable_plans_runs_like_a_built_in_one() -> None:
    timetable = make_timetable(EveryNDays(3), timezone="UTC")
    assert isinstance(timetable, CustomTimetableAdapter) and timetable.description == "every 3 days"
    first = timetable.next_dagrun_info(last=None, start_date=START, end_date=None, catchup=True, now=START)
    assert first == DagRunInfo.interval(START, START + timedelta(days=3))
    runs = list(itertools.islice(timetable.iter_runs(start_date=START, end_date=None), 3))
    assert [r.logical_date.day for r in runs] == [1, 4, 7]
    between = timetable.runs_between(
        START + timedelta(days=2), START + timedelta(days=9), start_date=START, end_date=None
    )
    assert [r.logical_date.day for r in between] == [4, 7, 10]
    manual = timetable.manual_run_info(datetime(2026, 2, 1, 12, tzinfo=UTC))
    assert manual.logical_date == manual.run_after == datetime(2026, 2, 1, 12, tzinfo=UTC)
    assert manual.data_interval == DataInterval(datetime(2026, 1, 29, 12, tzinfo=UTC), manual.run_after)


def test_serialization_round_trip_needs_the_class_registered() -> None:
    timetable = make_timetable(EveryNDays(5), timezone="UTC")
    data = timetable.serialize()
    assert data["type"] == "custom" and data["value"] == {"days": 5}
    assert deserialize_timetable(data) == timetable
    with pytest.raises(InvalidScheduleError, match="is not registered"):
        deserialize_timetable({**data, "class": "nowhere.Unknown"})


def test_a_timetable_that_does_not_move_forward_or_answers_nonsense_is_reported() -> None:
    class Stuck(EveryNDays):
        def next_dagrun_info(self, **kwargs: Any) -> DagRunInfo | None:
            return DagRunInfo.exact(START)

    class Wrong(EveryNDays):
        def next_dagrun_info(self, **kwargs: Any) -> Any:
            return START

    with pytest.raises(InvalidScheduleError, match="must move forward"):
        list(itertools.islice(make_timetable(Stuck(), timezone="UTC").iter_runs(start_date=START, end_date=None), 3))
    with pytest.raises(InvalidScheduleError, match="expected a DagRunInfo"):
        make_timetable(Wrong(), timezone="UTC").next_dagrun_info(
            last=None, start_date=START, end_date=None, catchup=True, now=START
        )
