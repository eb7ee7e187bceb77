"""ExternalTaskSensor: wait for tasks (or a whole run) of another DAG at a matching logical date.

    ExternalTaskSensor(task_id="wait_extract", external_dag_id="extract", external_task_id="load",
                       execution_delta=timedelta(hours=1), mode="reschedule", poke_interval=300)

Airflow's name and arguments. Which runs of `external_dag_id` count: those whose logical date is this
run's logical date minus `execution_delta`, or the date(s) `execution_date_fn(logical_date, context)`
returns (a callable may also name context keys as parameters, as a PythonOperator's does). With
`external_task_id(s)` it waits for those task instances, otherwise for the runs themselves:

- done when every one (each task on each date) is in `allowed_states` (default `["success"]`);
- fails when any is in `failed_states` (default none; a skip with `soft_fail`);
- skips when any is in `skipped_states` (default none).

A run that does not exist yet simply does not count yet. The states are read through the try's
`ti.get_ti_count` / `ti.get_dr_count` (Airflow 3's calls), so a task process needs no database
connection. `deferrable` is accepted and ignored (no triggerer): use `mode="reschedule"` to free the slot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from dagrunner.authoring.operators.empty import EmptyOperator
from dagrunner.authoring.operators.python import determine_kwargs
from dagrunner.authoring.sensors.base import BaseSensorOperator
from dagrunner.errors import FailTask, SkipTask
from dagrunner.states import DagRunState, TaskInstanceState


class ExternalTaskSensor(BaseSensorOperator):
    """Wait for `external_task_id(s)` of `external_dag_id` (or its run) at the matching logical date(s)."""

    template_fields = ("external_dag_id", "external_task_id", "external_task_ids")

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Iterable[str] | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Callable[..., Any] | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        self.external_dag_id = check.string("external_dag_id", external_dag_id)
        if external_task_id is not None and external_task_ids is not None:
            check.fail("external_task_ids", external_task_ids, "None when external_task_id is given (one of the two)")
        self.external_task_id = check.optional_string("external_task_id", external_task_id)
        ids = [external_task_id] if external_task_id is not None else external_task_ids
        self.external_task_ids: list[str] | None = None
        if ids is not None:
            self.external_task_ids = check.string_list("external_task_ids", list(ids))
            if not self.external_task_ids or len(set(self.external_task_ids)) != len(self.external_task_ids):
                check.fail("external_task_ids", external_task_ids, "a non-empty list of distinct task ids")
        valid = [s.value for s in (TaskInstanceState if ids is not None else DagRunState)]
        self.allowed_states = _states(check, "allowed_states", allowed_states, ["success"], valid)
        self.skipped_states = _states(check, "skipped_states", skipped_states, [], valid)
        self.failed_states = _states(check, "failed_states", failed_states, [], valid)
        overlap = set(self.allowed_states) & (set(self.failed_states) | set(self.skipped_states))
        if overlap:
            check.fail("allowed_states", allowed_states, f"states not also failed or skipped ({', '.join(overlap)})")
        if execution_delta is not None and execution_date_fn is not None:
            check.fail("execution_date_fn", execution_date_fn, "None when execution_delta is given (one of the two)")
        self.execution_delta = None if execution_delta is None else check.duration("execution_delta", execution_delta)
        self.execution_date_fn = None if execution_date_fn is None else check.callable_(
            "execution_date_fn", execution_date_fn)  # fmt: skip
        self.deferrable = check.boolean("deferrable", deferrable)

    def logical_dates(self, context: Mapping[str, Any]) -> list[datetime]:
        """The logical dates of the external runs to look at."""
        logical_date: datetime = context["logical_date"]
        if self.execution_delta is not None:
            return [logical_date - self.execution_delta]
        if self.execution_date_fn is not None:
            fn = self.execution_date_fn
            result = fn(logical_date, **determine_kwargs(fn, [logical_date], {}, context))
            dates = list(result) if isinstance(result, list | tuple | set) else [result]
            if not dates or not all(isinstance(d, datetime) for d in dates):
                raise FailTask(f"sensor {self.task_id!r}: execution_date_fn returned {result!r}; "
                               "it must return a datetime or a list of them")  # fmt: skip
            return dates
        return [logical_date]

    def poke(self, context: Mapping[str, Any]) -> bool:
        ti = context["ti"]
        dates = self.logical_dates(context)
        what = self._describe(dates)
        expected = len(dates) * len(self.external_task_ids or [None])

        def count(states: Sequence[str]) -> int:
            if self.external_task_ids is None:
                return int(ti.get_dr_count(self.external_dag_id, logical_dates=dates, states=states))
            return int(ti.get_ti_count(self.external_dag_id, task_ids=self.external_task_ids, logical_dates=dates,
                                       states=states))  # fmt: skip

        if self.failed_states and count(self.failed_states):
            message = f"{what} is in a failed state ({', '.join(self.failed_states)})"
            raise SkipTask(message) if self.soft_fail else FailTask(message)
        if self.skipped_states and count(self.skipped_states):
            raise SkipTask(f"{what} is in a skipped state ({', '.join(self.skipped_states)})")
        done = count(self.allowed_states)
        print(f"[dagrunner] poking for {what}: {done} of {expected} in {', '.join(self.allowed_states)}")
        return done >= expected

    def _describe(self, dates: Sequence[datetime]) -> str:
        when = ", ".join(d.isoformat() for d in dates)
        if self.external_task_ids is None:
            return f"the run of DAG {self.external_dag_id!r} at {when}"
        return f"{', '.join(self.external_task_ids)} of DAG {self.external_dag_id!r} at {when}"


class ExternalTaskMarker(EmptyOperator):
    """Marks that `external_task_id` of `external_dag_id` depends on this task: clearing this task (with
    `dagrunner tasks clear`) also clears that task and what is downstream of it, in the external run whose
    logical date is `logical_date` (a template rendered with the cleared run's values; default this run's
    logical date), and so on through the markers there, at most `recursion_depth` DAGs deep. Running it
    does nothing. Usually paired with an ExternalTaskSensor in the external DAG (Airflow's names).
    """

    template_fields = ("external_dag_id", "external_task_id", "logical_date")

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        logical_date: str | datetime | None = "{{ logical_date.isoformat() }}",
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        self.external_dag_id = check.string("external_dag_id", external_dag_id)
        self.external_task_id = check.string("external_task_id", external_task_id)
        if isinstance(logical_date, datetime):
            logical_date = logical_date.isoformat()
        self.logical_date = check.string("logical_date", logical_date or "{{ logical_date.isoformat() }}")
        self.recursion_depth = check.integer("recursion_depth", recursion_depth, minimum=1)

    def marker_target(self) -> dict[str, Any]:
        """What `tasks clear` follows (stored with the serialized DAG)."""
        return {
            "external_dag_id": self.external_dag_id,
            "external_task_id": self.external_task_id,
            "logical_date": self.logical_date,
            "recursion_depth": self.recursion_depth,
        }


def _states(check: Any, arg: str, value: Iterable[str] | None, default: list[str], valid: list[str]) -> list[str]:
    states = default if value is None else check.string_list(arg, [str(s) for s in value])
    wrong = [s for s in states if s not in valid]
    if wrong:
        check.fail(arg, value, f"states among {', '.join(valid)}")
    return states
