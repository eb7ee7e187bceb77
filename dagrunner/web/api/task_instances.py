"""/api/v1 endpoints: task instances of a run (list, detail with tries, log tail, clear, set-state, why).

Writes are the CLI's library calls with the caller as actor (`web.instance_writes`); `why` is
`operations.explain_instance` (`dagrunner tasks why --json`); logs are read as `dagrunner tasks logs` reads
them, from a byte offset so a page can tail a running try (`web.log_tail`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from dagrunner.errors import DagNotFoundError, NotFoundError
from dagrunner.execution.base import TaskKey
from dagrunner.persistence.views import latest_try
from dagrunner.scheduling.operations import explain_instance
from dagrunner.web.dag_catalog import catalog_of
from dagrunner.web.deps import Operator, Viewer, Web
from dagrunner.web.graph_layout import layout
from dagrunner.web.instance_writes import ClearBody, TaskStateBody, clear_instances, set_task_state
from dagrunner.web.log_tail import read_chunk
from dagrunner.web.run_reads import get_instance, instance_detail, run_task_instances
from dagrunner.web.schemas import ClearOutcome, LogChunk, Override, TaskInstance, TaskInstanceDetail, Why
from dagrunner.web.validation import Id, MapIndex

router = APIRouter(tags=["task instances"])
_TASK = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"


@router.get("/dags/{dag_id}/runs/{run_id}/tasks", response_model=list[TaskInstance])
def get_task_instances(dag_id: Id, run_id: Id, state: Web, _user: Viewer) -> list[dict[str, Any]]:
    """Every instance of the run: tasks upstream first (by task id when the DAG is gone), then map index."""
    with state.read() as session:
        try:
            order: tuple[str, ...] = layout(catalog_of(state).dag(session, dag_id)).order
        except DagNotFoundError:  # its file is gone: the instances still show, by task id
            order = ()
        return run_task_instances(session, dag_id, run_id, order)


@router.get(_TASK, response_model=TaskInstanceDetail)
def get_task_instance(
    dag_id: Id, run_id: Id, task_id: Id, state: Web, _user: Viewer, map_index: MapIndex = -1
) -> dict[str, Any]:
    """One instance with every try of it (first try first)."""
    with state.read() as session:
        return instance_detail(session, dag_id, run_id, task_id, map_index)


@router.get(f"{_TASK}/logs", response_model=LogChunk)
def get_task_log(
    dag_id: Id,
    run_id: Id,
    task_id: Id,
    state: Web,
    _user: Viewer,
    map_index: MapIndex = -1,
    try_number: Annotated[int | None, Query(ge=1, le=10**6, description="Which try (default: the latest).")] = None,
    offset: Annotated[int, Query(ge=0, le=2**62, description="Start this many bytes in (the last `offset`).")] = 0,
) -> dict[str, Any]:
    """The try's log from `offset`: pass the returned offset back to get only what was written since;
    `finished` is true once the try has ended and everything was returned."""
    with state.read() as session:
        get_instance(session, dag_id, run_id, task_id, map_index)  # 404 naming the run or the instance
        attempt = latest_try(session, dag_id, run_id, task_id, map_index, try_number)
    if attempt is None:
        which = f"try {try_number}" if try_number is not None else "any try"
        raise NotFoundError(f"{task_id} in run {run_id} has no {which} yet")
    key = TaskKey(dag_id, run_id, task_id, map_index)
    chunk = read_chunk(state.settings.logs_folder, key, attempt, offset,
                       log_server_port=state.settings.worker_log_server_port)  # fmt: skip
    return chunk.to_json()


@router.post(f"{_TASK}/clear", response_model=ClearOutcome)
def post_task_clear(dag_id: Id, run_id: Id, task_id: Id, body: ClearBody, state: Web, user: Operator) -> dict[str, Any]:
    """Clear the instance (and its upstream/downstream) so it runs again, as `dagrunner tasks clear`."""
    return clear_instances(state, dag_id, run_id, task_id, body, actor=user.actor)


@router.post(f"{_TASK}/state", response_model=Override)
def post_task_state(
    dag_id: Id, run_id: Id, task_id: Id, body: TaskStateBody, state: Web, user: Operator
) -> dict[str, Any]:
    """Mark the instance success, failed or skipped, as `dagrunner tasks set-state`; returns what changed."""
    return set_task_state(state, dag_id, run_id, task_id, body, actor=user.actor)


@router.get(f"{_TASK}/why", response_model=Why)
def get_why(dag_id: Id, run_id: Id, task_id: Id, state: Web, _user: Viewer, map_index: MapIndex = -1) -> dict[str, Any]:
    """Why the instance is (not) running: each readiness rule, passed or blocked, with its reason."""
    with state.read() as session:
        dag = catalog_of(state).dag(session, dag_id)
        why = explain_instance(session, dag, run_id, task_id, map_index, state.now())
    return {"state": why.state.value, "checks": [{"rule": c.rule, "passed": c.passed, "reason": c.reason}
                                                 for c in why.checks]}  # fmt: skip
