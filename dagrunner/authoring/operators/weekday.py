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
from collections.abc import Iterable
from typing import Any

import pendulum

from dagrunner.authoring.operators.clock_branch import MomentBranchOperator


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


class BranchDayOfWeekOperator(MomentBranchOperator):
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
        super().__init__(follow_task_ids_if_true=follow_task_ids_if_true, follow_task_ids_if_false=follow_task_ids_if_false,
                         use_task_logical_date=use_task_logical_date, **kwargs)  # fmt: skip
        try:
            self._week_day_num = WeekDay.validate_week_day(week_day)
        except (AttributeError, TypeError) as exc:
            self._arg_check.fail("week_day", week_day, f"a day name, a WeekDay, or several of them ({exc})")
        self.week_day = week_day

    def holds(self, moment: pendulum.DateTime) -> bool:
        return moment.isoweekday() in self._week_day_num
