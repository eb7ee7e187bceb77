"""From what a DAG author writes (`schedule=...`) or what the loader stored (JSON) to a Timetable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from dagrunner.errors import InvalidScheduleError
from dagrunner.timetables.assets import AssetTriggeredTimetable, as_condition
from dagrunner.timetables.base import Timetable
from dagrunner.timetables.cron import PRESETS
from dagrunner.timetables.custom import CustomTimetableAdapter
from dagrunner.timetables.custom import Timetable as CustomTimetable
from dagrunner.timetables.periodic import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
)
from dagrunner.timetables.simple import NullTimetable, OnceTimetable
from dagrunner.timetables.zones import load_zone

_BY_KIND: dict[str, Any] = {
    cls.kind: cls
    for cls in (
        CronTriggerTimetable,
        CronDataIntervalTimetable,
        DeltaTriggerTimetable,
        DeltaDataIntervalTimetable,
        OnceTimetable,
        NullTimetable,
        AssetTriggeredTimetable,
        CustomTimetableAdapter,
    )
}


def make_timetable(schedule: object, *, timezone: str, create_cron_data_intervals: bool = False) -> Timetable:
    """The Timetable for a DAG's `schedule` argument, read in `timezone` (the start_date's zone).

    Cron strings, presets and deltas give the trigger family unless `create_cron_data_intervals` (the
    setting of that name: Airflow 2's behaviour) asks for the data-interval family. A Timetable is
    returned as is, or as a copy in `timezone` when it was built without one. Raises
    InvalidScheduleError / InvalidTimezoneError naming the bad value, so a DAG file fails at import.
    """
    load_zone(timezone)
    if isinstance(schedule, Timetable):
        return schedule if schedule.timezone_is_set else schedule.with_timezone(timezone)
    if isinstance(schedule, CustomTimetable):  # written as in Airflow: answered through the adapter
        schedule.validate()
        return CustomTimetableAdapter(schedule, timezone)
    if schedule is None:
        return NullTimetable(timezone)
    condition = as_condition(schedule)
    if condition is not None:  # an asset, an alias, a condition of them, or a list (all of them)
        return AssetTriggeredTimetable(condition, timezone)
    if isinstance(schedule, str):
        if schedule.strip().lower() == "@once":
            return OnceTimetable(timezone)
        cron_family = CronDataIntervalTimetable if create_cron_data_intervals else CronTriggerTimetable
        return cron_family(schedule, timezone)
    if isinstance(schedule, timedelta | relativedelta):
        delta_family = DeltaDataIntervalTimetable if create_cron_data_intervals else DeltaTriggerTimetable
        return delta_family(schedule, timezone)
    raise InvalidScheduleError(
        f"schedule {schedule!r} ({type(schedule).__name__}) is not understood: use a cron string such as "
        f"'0 6 * * *', a preset ({', '.join(PRESETS)}), '@once', None, a timedelta, a relativedelta, "
        "a Timetable (dagrunner.timetables.custom.Timetable for your own), or assets (Asset('x'), [a, b], a | b)"
    )


def deserialize_timetable(data: dict[str, Any]) -> Timetable:
    """The Timetable that `serialize()` described; InvalidScheduleError for an unknown or broken dict."""
    kind = data.get("type") if isinstance(data, dict) else None
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidScheduleError(
            f"serialized timetable {data!r} has unknown type {kind!r}: expected one of {', '.join(_BY_KIND)}"
        )
    try:
        timetable: Timetable = cls.deserialize(data)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, InvalidScheduleError):
            raise
        raise InvalidScheduleError(f"serialized timetable {data!r} is malformed: {error!r}") from None
    return timetable
