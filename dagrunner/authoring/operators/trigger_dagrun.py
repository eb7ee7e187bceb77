"""TriggerDagRunOperator: create a manual run of another DAG, and optionally wait for it (Airflow's name).

    TriggerDagRunOperator(task_id="kick_report", trigger_dag_id="report", conf={"day": "{{ ds }}"},
                          wait_for_completion=True, poke_interval=30)

The run is created from the task as `dagrunner dags trigger` creates it (`run_creation.trigger_run`: the
conf is checked against the DAG's Params, audited with the triggering task as the actor), through the
try's `ti.trigger_dag_run` (Airflow 3 raises `DagRunTriggerException` for its task runner to do the same).
The run id and logical date are pushed as the XComs `trigger_run_id` and `trigger_logical_date_iso`.

- `trigger_run_id`: default `manual__<logical date>`; `logical_date`: default now (a datetime or an
  ISO string, templated; a naive one is read in this DAG's timezone).
- An existing run with that id fails the task, unless `reset_dag_run=True` (its task instances are
  cleared and it runs again) or `skip_when_already_exists=True` (the task is skipped).
- `wait_for_completion=True`: check the run's state every `poke_interval` seconds; a state in
  `failed_states` (default `["failed"]`) fails the task, one in `allowed_states` (default `["success"]`)
  ends it. The task keeps its worker slot meanwhile, as in Airflow without `deferrable`; `deferrable` is
  accepted and ignored (no triggerer here). The inline executor (`dags test`'s default) runs tries in the
  scheduler's thread, where the triggered run could never start: there the wait fails at once, clearly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pendulum

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.errors import DuplicateRunError, FailTask, InvalidArgumentError, SkipTask

XCOM_RUN_ID = "trigger_run_id"
XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"
_RUN_STATES = ("queued", "running", "success", "failed")


class TriggerDagRunOperator(BaseOperator):
    """Trigger a run of `trigger_dag_id` (see the module docstring for every argument)."""

    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf", "wait_for_completion",
                       "skip_when_already_exists")  # fmt: skip

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: Mapping[str, Any] | None = None,
        logical_date: str | datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Sequence[str] | None = None,
        failed_states: Sequence[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        self.trigger_dag_id = check.string("trigger_dag_id", trigger_dag_id)
        self.trigger_run_id = check.optional_string("trigger_run_id", trigger_run_id)
        self.conf = check.mapping("conf", conf)
        if logical_date is not None and not isinstance(logical_date, str | datetime):
            check.fail("logical_date", logical_date, "a datetime, an ISO date string (may be a template), or None")
        self.logical_date = logical_date
        self.reset_dag_run = check.boolean("reset_dag_run", reset_dag_run)
        self.wait_for_completion = wait_for_completion  # templated in Airflow: judged after rendering
        self.poke_interval = check.duration("poke_interval", poke_interval).total_seconds()
        self.allowed_states = _states(check, "allowed_states", allowed_states, ["success"])
        self.failed_states = _states(check, "failed_states", failed_states, ["failed"])
        if set(self.allowed_states) & set(self.failed_states):
            check.fail("failed_states", failed_states, "states not also in allowed_states")
        self.skip_when_already_exists = skip_when_already_exists
        self.deferrable = check.boolean("deferrable", deferrable)

    def execute(self, context: Mapping[str, Any]) -> None:
        ti = context["ti"]
        try:
            triggered = ti.trigger_dag_run(
                self.trigger_dag_id,
                run_id=self.trigger_run_id or None,
                logical_date=self._logical_date(),
                conf=self.conf,
                reset_dag_run=self.reset_dag_run,
            )
        except DuplicateRunError as exc:
            if _truthy(self.skip_when_already_exists):
                raise SkipTask(f"{exc} (skip_when_already_exists=True)") from None
            raise
        what = "reset and re-queued" if triggered.reset else "created"
        print(f"[dagrunner] {what} run {triggered.run_id} of DAG {triggered.dag_id}")
        ti.xcom_push(XCOM_RUN_ID, triggered.run_id)
        ti.xcom_push(XCOM_LOGICAL_DATE_ISO, pendulum.instance(triggered.logical_date).isoformat())
        if _truthy(self.wait_for_completion):
            self.wait(ti, triggered.run_id)

    def wait(self, ti: Any, run_id: str, *, sleep: Any = time.sleep) -> str:
        """Check the run's state every poke_interval until it is allowed (returned) or failed (FailTask)."""
        if not getattr(ti, "runs_progress_while_waiting", True):
            raise FailTask(
                f"wait_for_completion cannot wait for run {run_id} of {self.trigger_dag_id} here: this executor "
                "runs tries in the scheduler's own thread, so that run could not start while this task waits; "
                "use the local or celery executor (e.g. `dagrunner dags test --executor local`)"
            )
        while True:
            sleep(self.poke_interval)
            state = ti.get_dagrun_state(self.trigger_dag_id, run_id)
            print(f"[dagrunner] run {run_id} of {self.trigger_dag_id} is {state}")
            if state in self.failed_states:
                raise FailTask(f"run {run_id} of DAG {self.trigger_dag_id} ended {state} (failed_states)")
            if state in self.allowed_states:
                return str(state)

    def _logical_date(self) -> datetime | None:
        value = self.logical_date
        if value is None or isinstance(value, datetime):
            return value
        if not value.strip() or value == "None":
            return None
        try:
            parsed = pendulum.parse(value, tz=self.dag.timezone)
        except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
            raise InvalidArgumentError(
                f"task {self.task_id!r}: logical_date {value!r} is not an ISO date ({exc})"
            ) from None
        if not isinstance(parsed, datetime):
            raise InvalidArgumentError(f"task {self.task_id!r}: logical_date {value!r} is not a date and time")
        return parsed


def _states(check: Any, arg: str, value: Sequence[str] | None, default: list[str]) -> list[str]:
    states = default if value is None else check.string_list(arg, [str(s) for s in value])
    wrong = [s for s in states if s not in _RUN_STATES]
    if wrong:
        check.fail(arg, value, f"run states among {', '.join(_RUN_STATES)}")
    return states


def _truthy(value: Any) -> bool:
    """A templated flag: a bool, or the text a template rendered it to."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
