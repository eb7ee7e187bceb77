"""/api/v1 endpoints: DAG runs (list, detail, trigger, set-state, clear).

Each write is the library call its CLI command makes, with the caller as actor: trigger is
`operations.trigger_run` (`dags trigger`), set-state is `overrides.plan_run_state` + `apply_run_state`
(`runs set-state`), clear is `operations.select_for_clear` + `clear` (`tasks clear`) limited to the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import pendulum
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator

from dagrunner.errors import DagNotFoundError
from dagrunner.persistence.models import DagRunType
from dagrunner.persistence.queries import get_run
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.overrides import apply_run_state, plan_run_state
from dagrunner.scheduling.run_conf import check_conf
from dagrunner.states import DagRunState
from dagrunner.web.dag_catalog import catalog_of
from dagrunner.web.deps import Operator, PageArgs, Viewer, Web
from dagrunner.web.graph_layout import layout
from dagrunner.web.instance_writes import DEFAULT_REASON, ClearBody, clear_instances
from dagrunner.web.run_reads import list_runs, run_json, run_task_instances
from dagrunner.web.schemas import ClearOutcome, Override, Run, RunDetail, RunPage
from dagrunner.web.validation import NO_NUL, Id, IdFilter, Reason

router = APIRouter(tags=["runs"])


def _runs_page(state: Web, page: PageArgs, dag_id: str | None, run_state: DagRunState | None,
               run_type: DagRunType | None) -> dict[str, Any]:  # fmt: skip
    with state.read() as session:
        items, total = list_runs(session, dag_id=dag_id, state=run_state, run_type=run_type, limit=page.limit,
                                 offset=page.offset)  # fmt: skip
    return page.page(items, total)


@router.get("/runs", response_model=RunPage)
def get_runs(
    state: Web,
    _user: Viewer,
    page: PageArgs,
    dag_id: IdFilter = None,
    run_state: Annotated[DagRunState | None, Query(alias="state")] = None,
    run_type: Annotated[DagRunType | None, Query()] = None,
) -> dict[str, Any]:
    """Runs of every DAG (or one), newest logical date first."""
    return _runs_page(state, page, dag_id, run_state, run_type)


@router.get("/dags/{dag_id}/runs", response_model=RunPage)
def get_dag_runs(
    dag_id: Id,
    state: Web,
    _user: Viewer,
    page: PageArgs,
    run_state: Annotated[DagRunState | None, Query(alias="state")] = None,
    run_type: Annotated[DagRunType | None, Query()] = None,
) -> dict[str, Any]:
    """The DAG's runs, newest logical date first."""
    return _runs_page(state, page, dag_id, run_state, run_type)


@router.get("/dags/{dag_id}/runs/{run_id}", response_model=RunDetail)
def get_dag_run(dag_id: Id, run_id: Id, state: Web, _user: Viewer) -> dict[str, Any]:
    """The run and its task instances (tasks upstream first when the DAG is known)."""
    with state.read() as session:
        run = run_json(get_run(session, dag_id, run_id))
        try:
            order: tuple[str, ...] = layout(catalog_of(state).dag(session, dag_id)).order
        except DagNotFoundError:  # its file is gone: the instances still show, by task id
            order = ()
        return {**run, "tasks": run_task_instances(session, dag_id, run_id, order)}


#: Logical dates a trigger may ask for: far from the ends of Python's datetime range, where converting
#: between time zones or adding the data interval would overflow.
DATE_YEARS = (1000, 9000)


class TriggerBody(BaseModel):
    conf: dict[str, Any] = Field(default_factory=dict, description="The run's conf; overrides the DAG's params.")
    logical_date: datetime | None = Field(
        default=None, description="ISO datetime (read in the DAG's timezone without an offset); default now."
    )
    run_id: str | None = Field(
        default=None, max_length=250, pattern=NO_NUL, description="Default manual__<logical date>."
    )

    @field_validator("logical_date")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None and not DATE_YEARS[0] <= value.year <= DATE_YEARS[1]:
            raise ValueError(f"the logical date must be between the years {DATE_YEARS[0]} and {DATE_YEARS[1]}")
        return value


@router.post("/dags/{dag_id}/runs", response_model=Run, status_code=201)
def post_dag_run(dag_id: Id, body: TriggerBody, state: Web, user: Operator) -> dict[str, Any]:
    """Create a manual run (as `dagrunner dags trigger`): conf checked, params validated, audited."""
    conf = check_conf(body.conf, source="conf")
    with state.read() as session:
        dag = catalog_of(state).dag(session, dag_id)
    when = body.logical_date
    if when is not None and when.tzinfo is None:
        when = pendulum.instance(when, tz=dag.timezone)
    now = state.now()
    with state.write() as session:
        run = trigger_run(session, dag, actor=user.actor, now=now, conf=conf, logical_date=when, run_id=body.run_id)
        return run_json(run)


class RunStateBody(BaseModel):
    state: Literal["success", "failed"]
    reason: Reason = DEFAULT_REASON


@router.post("/dags/{dag_id}/runs/{run_id}/state", response_model=Override)
def post_run_state(dag_id: Id, run_id: Id, body: RunStateBody, state: Web, user: Operator) -> dict[str, Any]:
    """Mark the run success or failed (as `dagrunner runs set-state`); returns what changed."""
    with state.write() as session:
        plan = plan_run_state(session, dag_id, run_id, body.state)
        apply_run_state(session, plan, reason=body.reason, actor=user.actor, now=state.now())
        return plan.to_json()


class RunClearBody(BaseModel):
    only_failed: bool = Field(default=False, description="Only failed and upstream_failed instances.")
    dry_run: bool = Field(default=False, description="Only say what would be cleared.")


@router.post("/dags/{dag_id}/runs/{run_id}/clear", response_model=ClearOutcome)
def post_run_clear(dag_id: Id, run_id: Id, body: RunClearBody, state: Web, user: Operator) -> dict[str, Any]:
    """Clear the run's task instances so the scheduler runs them again (as `dagrunner tasks clear`)."""
    request = ClearBody(only_failed=body.only_failed, dry_run=body.dry_run)
    return clear_instances(state, dag_id, run_id, None, request, actor=user.actor)
