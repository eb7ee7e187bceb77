"""The half that LatestOnly, BranchDateTime and BranchDayOfWeek share: a branch chosen by the clock.

`ClockBranchOperator.execute` asks the subclass's `choose_branch(context, now)` (now passed in, so tests
choose it) and skips the rest. `MomentBranchOperator` adds Airflow's `follow_task_ids_if_true/_if_false`
and `use_task_logical_date`: the moment judged is now or the run's logical date, in the DAG's timezone, and
the subclass says whether it `holds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pendulum

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.operators.python import BranchMixin
from dagrunner.clock import utcnow


def follow_ids(check: Any, arg: str, value: str | Iterable[str]) -> list[str]:
    """A branch target argument (a task id or several) as a list."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable):
        check.fail(arg, value, "a task id or a list of task ids")
    return check.string_list(arg, list(value))  # type: ignore[no-any-return]


class ClockBranchOperator(BranchMixin, BaseOperator):
    """A branch whose choice depends on the time: `choose_branch(context, now)` decides."""

    def execute(self, context: Mapping[str, Any]) -> list[str]:
        chosen = self.choose_branch(context, utcnow())
        self.branches_to_skip(chosen)
        return chosen

    def choose_branch(self, context: Mapping[str, Any], now: datetime) -> list[str]:
        raise NotImplementedError


class MomentBranchOperator(ClockBranchOperator):
    """Follow `follow_task_ids_if_true` when `holds(moment)`, else `follow_task_ids_if_false`."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        self.follow_task_ids_if_true = follow_ids(check, "follow_task_ids_if_true", follow_task_ids_if_true)
        self.follow_task_ids_if_false = follow_ids(check, "follow_task_ids_if_false", follow_task_ids_if_false)
        self.use_task_logical_date = check.boolean("use_task_logical_date", use_task_logical_date)

    def choose_branch(self, context: Mapping[str, Any], now: datetime) -> list[str]:
        when = context["logical_date"] if self.use_task_logical_date else now
        moment = pendulum.instance(when).in_timezone(self.dag.timezone)
        return list(self.follow_task_ids_if_true if self.holds(moment) else self.follow_task_ids_if_false)

    def holds(self, moment: pendulum.DateTime) -> bool:
        raise NotImplementedError
