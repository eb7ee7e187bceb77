"""Clearing and marking task instances from the API, through the CLI's library calls with the caller as actor.

Clear is `operations.select_for_clear` + `operations.clear` (`dagrunner tasks clear`), limited to one run and
(for a task) to the task, its upstream and/or downstream; a dry run selects the same instances and changes
nothing. Marking is `overrides.plan_task_state` + `apply_task_state` (`dagrunner tasks set-state`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, Field

from dagrunner.errors import NotFoundError
from dagrunner.persistence.models import TaskInstance
from dagrunner.persistence.queries import get_run
from dagrunner.scheduling.operations import clear, select_for_clear
from dagrunner.scheduling.overrides import apply_task_state, plan_task_state
from dagrunner.states import OCCUPYING_SLOT, TaskInstanceState
from dagrunner.web.dag_catalog import catalog_of
from dagrunner.web.deps import WebState
from dagrunner.web.validation import Reason

#: The reason recorded when a caller gives none (the CLI requires one; a click in the UI may not have one).
DEFAULT_REASON = "marked through the web API"


class ClearBody(BaseModel):
    downstream: bool = Field(default=False, description="Also every task below it in the run.")
    upstream: bool = Field(default=False, description="Also every task above it in the run.")
    only_failed: bool = Field(default=False, description="Only failed and upstream_failed instances.")
    dry_run: bool = Field(default=False, description="Only say what would be cleared.")
    map_index: int | None = Field(default=None, ge=-1, le=10**9, description="Only this mapped instance.")


class TaskStateBody(BaseModel):
    state: Literal["success", "failed", "skipped"]
    downstream: bool = Field(default=False, description="Also every task below it in the run.")
    upstream: bool = Field(default=False, description="Also every task above it in the run.")
    map_index: int | None = Field(default=None, ge=-1, le=10**9, description="Only this mapped instance.")
    reason: Reason = DEFAULT_REASON


def clear_instances(
    state: WebState, dag_id: str, run_id: str, task_id: str | None, body: ClearBody, *, actor: str
) -> dict[str, Any]:
    """Clear (or with dry_run, list) the run's instances; finished ones go back to none, queued and running
    ones are left alone and listed."""
    with state.write() as session:
        dag = catalog_of(state).dag(session, dag_id)
        get_run(session, dag_id, run_id)
        regex = None
        if task_id is not None:
            dag.task(task_id)  # TaskNotFoundError naming the DAG's tasks
            ids = {task_id} | (set(nx.ancestors(dag.graph, task_id)) if body.upstream else set())
            regex = "^(?:" + "|".join(re.escape(t) for t in sorted(ids)) + ")$"
        chosen = select_for_clear(session, dag, task_regex=regex, only_failed=body.only_failed,
                                  downstream=body.downstream, run_ids=[run_id])  # fmt: skip
        if task_id is not None and body.map_index is not None:
            if not any(ti.task_id == task_id and ti.map_index == body.map_index for ti in chosen):
                raise NotFoundError(f"run {run_id} has no instance of {task_id} with map index {body.map_index}")
            chosen = [ti for ti in chosen if ti.task_id != task_id or ti.map_index == body.map_index]
        was = {id(ti): ti.state for ti in chosen}
        if body.dry_run:
            live = [ti for ti in chosen if ti.state in OCCUPYING_SLOT]
            todo = [ti for ti in chosen if ti.state not in OCCUPYING_SLOT and ti.state != TaskInstanceState.NONE]
            return _outcome(dag_id, True, todo, live, [], was)
        result = clear(session, dag, chosen, actor=actor, now=state.now())
        return _outcome(dag_id, False, result.cleared, result.left_running,
                        [run.run_id for run in result.runs_requeued], was)  # fmt: skip


def _outcome(
    dag_id: str, dry_run: bool, cleared: Sequence[TaskInstance], live: Sequence[TaskInstance], requeued: list[str],
    was: dict[int, TaskInstanceState],
) -> dict[str, Any]:  # fmt: skip
    def row(ti: TaskInstance) -> dict[str, Any]:
        return {"run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index,
                "state": was.get(id(ti), ti.state).value}  # fmt: skip

    return {"dag_id": dag_id, "dry_run": dry_run, "cleared": [row(ti) for ti in cleared],
            "left_running": [row(ti) for ti in live], "runs_requeued": requeued}  # fmt: skip


def set_task_state(
    state: WebState, dag_id: str, run_id: str, task_id: str, body: TaskStateBody, *, actor: str
) -> dict[str, Any]:
    """Mark the instance (and with downstream/upstream its relatives) as `tasks set-state` does."""
    with state.write() as session:
        dag = catalog_of(state).dag(session, dag_id)
        plan = plan_task_state(session, dag, run_id, task_id, body.state, map_index=body.map_index,
                               downstream=body.downstream, upstream=body.upstream)  # fmt: skip
        apply_task_state(session, dag, plan, reason=body.reason, actor=actor, now=state.now())
        return plan.to_json()
