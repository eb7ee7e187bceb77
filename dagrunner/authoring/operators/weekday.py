"""WeekDay and BranchDayOfWeekOperator: follow one branch on some days of the week (Airflow's names).

    BranchDayOfWeekOperator(task_id="weekend_or_not", week_day={WeekDay.SATURDAY, WeekDay.SUNDAY},
                            follow_task_ids_if_true="weekend", follow_task_ids_if_false="weekday",
                            use_task_logical_date=True)

The day is today's (or with `use_task_logical_date`, the run's logical date's) in the DAG's timezone.
Deliberate difference: Airflow takes the logical date's weekday in UTC; here both are in the DAG's timezone,
so a run at midnight Europe/Amsterdam is on the day its DAG says.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pendulum

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.operators.python import BranchMixin
from dagrunner.clock import utcnow


@enum.unique
class WeekDay(enum.IntEnum):
    """The days of the week, numbered as `datetime.isoweekday()` (Monday 1 ... Sunday 7)."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> int:
        """The number of a day named in any case ("monday", "Monday"); AttributeError for another name."""
        name = week_day_str.upper()
        if name not in cls.__members__:
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"')
        return int(cls[name])

    @classmethod
    def convert(cls, day: str | WeekDay) -> int:
        """A WeekDay or a day's name, as its number."""
        if isinstance(day, WeekDay):
            return int(day)
        return cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str] | Iterable[WeekDay]) -> set[int]:
        """The day numbers of one day or several (names or WeekDays); TypeError for anything else."""
        if isinstance(week_day, str | WeekDay):
            return {cls.convert(week_day)}
        if isinstance(week_day, Iterable):
            days: list[Any] = list(week_day)
            if all(isinstance(d, str | WeekDay) for d in days):
                return {cls.convert(d) for d in days}
        raise TypeError(
            f"Unsupported Type for week_day parameter: {type(week_day).__name__}. Input should be iterable type: "
            "str, set, list, dict or Weekday enum type"
        )


def follow_ids(check: Any, arg: str, value: str | Iterable[str]) -> list[str]:
    """A branch target argument (a task id or several) as a list."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable):
        check.fail(arg, value, "a task id or a list of task ids")
    return check.string_list(arg, list(value))  # type: ignore[no-any-return]


class BranchDayOfWeekOperator(BranchMixin, BaseOperator):
    """Follow `follow_task_ids_if_true` on the days in `week_day`, else `follow_task_ids_if_false`."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        week_day: str | WeekDay | Iterable[str] | Iterable[WeekDay],
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        self.follow_task_ids_if_true = follow_ids(check, "follow_task_ids_if_true", follow_task_ids_if_true)
        self.follow_task_ids_if_false = follow_ids(check, "follow_task_ids_if_false", follow_task_ids_if_false)
        try:
            self._week_day_num = WeekDay.validate_week_day(week_day)
        except (AttributeError, TypeError) as exc:
            check.fail("week_day", week_day, f"a day name, a WeekDay, or several of them ({exc})")
        self.week_day = week_day
        self.use_task_logical_date = check.boolean("use_task_logical_date", use_task_logical_date)

    def execute(self, context: Mapping[str, Any]) -> list[str]:
        chosen = self.choose_branch(context, utcnow())
        self.branches_to_skip(chosen)
        return chosen

    def choose_branch(self, context: Mapping[str, Any], now: datetime) -> list[str]:
        when = context["logical_date"] if self.use_task_logical_date else now
        day = pendulum.instance(when).in_timezone(self.dag.timezone).isoweekday()
        return list(self.follow_task_ids_if_true if day in self._week_day_num else self.follow_task_ids_if_false)
