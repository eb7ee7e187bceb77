"""BranchDateTimeOperator: follow one branch inside a window of time, another outside it (Airflow's name).

    BranchDateTimeOperator(task_id="in_business_hours", target_lower=time(9), target_upper=time(17),
                           follow_task_ids_if_true="call", follow_task_ids_if_false="email")

The window is `[target_lower, target_upper]`, both ends included; either may be None (open). A `time` is
taken on the current date (with `use_task_logical_date`, the logical date's) in the DAG's timezone, and an
upper time earlier than the lower one means the next day (a window across midnight). A naive datetime is
read in the DAG's timezone. The moment judged is now, or the run's logical date with
`use_task_logical_date=True`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any

import pendulum

from dagrunner.authoring.operators.clock_branch import MomentBranchOperator


class BranchDateTimeOperator(MomentBranchOperator):
    """Follow `follow_task_ids_if_true` when the moment is within the target window, else the others."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        target_lower: datetime | time | None,
        target_upper: datetime | time | None,
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(follow_task_ids_if_true=follow_task_ids_if_true, follow_task_ids_if_false=follow_task_ids_if_false,
                         use_task_logical_date=use_task_logical_date, **kwargs)  # fmt: skip
        check = self._arg_check
        if target_lower is None and target_upper is None:
            check.fail("target_upper", target_upper, "a datetime or time when target_lower is None (both are None)")
        for name, value in (("target_lower", target_lower), ("target_upper", target_upper)):
            if value is not None and not isinstance(value, datetime | time):
                check.fail(name, value, "a datetime, a datetime.time, or None")
        self.target_lower = target_lower
        self.target_upper = target_upper

    def holds(self, moment: pendulum.DateTime) -> bool:
        lower, upper = self.window(moment)
        return (lower is None or lower <= moment) and (upper is None or moment <= upper)

    def window(self, moment: pendulum.DateTime) -> tuple[datetime | None, datetime | None]:
        """The window's ends as aware datetimes, times taken on `moment`'s date (DAG timezone)."""
        lower, upper = self._on(moment, self.target_lower), self._on(moment, self.target_upper)
        times = isinstance(self.target_lower, time) or isinstance(self.target_upper, time)
        if times and lower is not None and upper is not None and upper < lower:
            upper += timedelta(days=1)
        return lower, upper

    def _on(self, moment: pendulum.DateTime, value: datetime | time | None) -> datetime | None:
        zone = pendulum.timezone(self.dag.timezone)
        if value is None:
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=zone)
        combined = datetime.combine(moment.date(), value)
        return combined if combined.tzinfo else combined.replace(tzinfo=zone)
