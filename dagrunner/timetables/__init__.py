"""Timetables: when DAG runs happen. Pure time arithmetic; no database, no clock, no other layer.

This is a leaf package (only `dagrunner.errors` below it) so that authoring can validate a schedule
when a DAG is defined and scheduling can plan runs, without either importing the other.
"""

from dagrunner.timetables.base import DagRunInfo, DataInterval, Timetable
from dagrunner.timetables.cron import PRESETS
from dagrunner.timetables.custom import TimeRestriction
from dagrunner.timetables.factory import deserialize_timetable, make_timetable
from dagrunner.timetables.periodic import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    PeriodicTimetable,
)
from dagrunner.timetables.run_ids import (
    MAX_RUN_ID_LENGTH,
    RUN_ID_PATTERN,
    RUN_TYPES,
    make_run_id,
    validate_run_id,
)
from dagrunner.timetables.simple import NullTimetable, OnceTimetable
from dagrunner.timetables.zones import is_dst_affected, timezone_name

__all__ = [
    "MAX_RUN_ID_LENGTH",
    "PRESETS",
    "RUN_ID_PATTERN",
    "RUN_TYPES",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DagRunInfo",
    "DataInterval",
    "TimeRestriction",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "NullTimetable",
    "OnceTimetable",
    "PeriodicTimetable",
    "Timetable",
    "deserialize_timetable",
    "is_dst_affected",
    "make_run_id",
    "make_timetable",
    "timezone_name",
    "validate_run_id",
]
