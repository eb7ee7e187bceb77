"""What people ask of the scheduler from the CLI: trigger a run, clear task instances, explain a wait."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.errors import NotFoundError
from dagrunner.execution.run_creation import trigger_run as trigger_run  # re-exported: `dags trigger` calls it here
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import RUN, TASK, Change, record_event, transition
from dagrunner.persistence.models import DagRun, TaskInstance
from dagrunner.persistence.queries import get_run, slots_in_use
from dagrunner.scheduling.approvals import approval_checks
from dagrunner.scheduling.breakers import breaker_check
from dagrunner.scheduling.compensation import explain_checks
from dagrunner.scheduling.evaluation import decide
from dagrunner.scheduling.history import past_states_for
from dagrunner.scheduling.readiness import Check
from dagrunner.scheduling.setup_teardown import clear_closure
from dagrunner.states import FINISHED, OCCUPYING_SLOT, RUN_FINISHED, DagRunState, TaskInstanceState


@dataclass
class ClearResult:
    cleared: list[TaskInstance]
    left_running: list[TaskInstance]
    runs_requeued: list[DagRun]


def select_for_clear(
    session: Session,
    dag: SerializedDag,
    *,
    task_regex: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    only_failed: bool = False,
    downstream: bool = False,
    run_ids: Sequence[str] | None = None,
) -> list[TaskInstance]:
    """The task instances `tasks clear` would touch (runs whose logical date is within [start, end])."""
    pattern = re.compile(task_regex) if task_regex else None
    task_ids = {t.task_id for t in dag.tasks if pattern is None or pattern.search(t.task_id)}
    if downstream:
        for task_id in list(task_ids):
            task_ids |= _descendants(dag, task_id)
    task_ids = clear_closure(dag, task_ids)  # their setups and teardowns too (Airflow's rule)
    query = (
        select(TaskInstance)
        .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
        .where(TaskInstance.dag_id == dag.dag_id, TaskInstance.task_id.in_(task_ids))
    )
    if run_ids is not None:
        query = query.where(DagRun.run_id.in_(list(run_ids)))
    if start is not None:
        query = query.where(DagRun.logical_date >= start)
    if end is not None:
        query = query.where(DagRun.logical_date <= end)
    tis = list(session.scalars(query.order_by(DagRun.logical_date, TaskInstance.task_id, TaskInstance.map_index)))
    if only_failed:
        failed_tasks = {
            (ti.run_id, ti.task_id)
            for ti in tis
            if ti.state in (TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED)
        }
        if downstream:
            failed_tasks |= {(run_id, d) for run_id, task_id in list(failed_tasks) for d in _descendants(dag, task_id)}
        failed_tasks |= {(run_id, t) for run_id, task_id in list(failed_tasks) for t in clear_closure(dag, {task_id})}
        tis = [ti for ti in tis if (ti.run_id, ti.task_id) in failed_tasks]
    return tis


def clear(
    session: Session, dag: SerializedDag, tis: Sequence[TaskInstance], *, actor: str, now: datetime
) -> ClearResult:
    """Put finished instances back to `none` (with a fresh set of retries) and re-queue their runs.

    Instances that are queued or running are left alone and reported: clearing a live try would race
    with the worker that records it.
    """
    live = [ti for ti in tis if ti.state in OCCUPYING_SLOT]
    todo = [ti for ti in tis if ti.state not in OCCUPYING_SLOT and ti.state != TaskInstanceState.NONE]
    for ti in todo:
        ti.max_tries = ti.try_number + dag.task(ti.task_id).retries  # a full set of retries again
        ti.next_try_at = None
        ti.next_method = ti.next_kwargs = None  # a cleared approval asks again
    if todo:
        transition(session, TASK, todo, Change(TaskInstanceState.NONE, now, actor, "cleared"))
    runs = _runs_of(session, dag.dag_id, {ti.run_id for ti in todo})
    requeued = []
    for run in runs:
        if run.state in RUN_FINISHED:
            transition(session, RUN, [run], Change(DagRunState.QUEUED, now, actor, "task instances cleared"))
            requeued.append(run)
    record_event(session, "tasks.cleared", actor=actor, dag_id=dag.dag_id,
                 detail={"task_instances": [f"{ti.run_id}/{ti.task_id}[{ti.map_index}]" for ti in todo]}, when=now)  # fmt: skip
    return ClearResult(todo, live, requeued)


def _runs_of(session: Session, dag_id: str, run_ids: set[str]) -> list[DagRun]:
    if not run_ids:
        return []
    return list(session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids))))


def _descendants(dag: SerializedDag, task_id: str) -> set[str]:
    import networkx as nx

    return set(nx.descendants(dag.graph, task_id))


def explain(session: Session, dag: SerializedDag, run: DagRun, ti: TaskInstance, now: datetime) -> list[Check]:
    """Every readiness rule for one task instance with passed/blocked and its reason (`tasks why`).

    An instance whose task is no longer in the DAG has no rules to check: it says so (the scheduler
    marks such an instance `removed` when it next decides the run, unless it had finished already).
    """
    if ti.task_id not in dag.task_dict:
        return [
            Check("run_state", run.state not in RUN_FINISHED, f"run is {run.state.value}"),
            Check("task_in_dag", False, f"the task is no longer in the DAG {dag.dag_id!r}; it will not run again "
                                        "in this run (its instance is or becomes removed)"),
        ]  # fmt: skip
    tis = session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
    ).all()
    states: dict[str, list[TaskInstanceState]] = {}
    for other in tis:
        states.setdefault(other.task_id, []).append(TaskInstanceState(other.state))
    decision = decide(dag.task(ti.task_id), ti, states, now, past_states_for(session, dag, run))
    checks = [Check("run_state", run.state not in RUN_FINISHED, f"run is {run.state.value}")]
    if ti.task_id in dag.compensation_task_ids:  # an undo task: no trigger rule, its place in the rollback
        return [*checks, *explain_checks(dag, ti, tis, now), *_finished_check(ti)]
    checks += list(decision.checks)
    checks += approval_checks(session, ti)
    checks += pool_checks(session, ti, now)
    if decision.new_state is not None:
        checks.append(Check("outcome", False, f"will become {decision.new_state.value}"))
    return [*checks, *_finished_check(ti)]


def _finished_check(ti: TaskInstance) -> list[Check]:
    if TaskInstanceState(ti.state) in FINISHED:
        return [Check("finished", False, f"finished as {ti.state.value}; `dagrunner tasks clear` runs it again")]
    return []


def pool_checks(session: Session, ti: TaskInstance, now: datetime) -> list[Check]:
    """The circuit breaker of a waiting instance's pool, when the pool has one (`scheduling.breakers`)."""
    if TaskInstanceState(ti.state) in FINISHED | OCCUPYING_SLOT:
        return []
    check = breaker_check(session, ti.pool, slots_in_use(session)[1].get(ti.pool, 0), now)
    return [check] if check is not None else []


@dataclass(frozen=True)
class Explanation:
    """`tasks why`: the instance's state and every readiness rule, passed or blocked, with its reason."""

    state: TaskInstanceState
    checks: list[Check]


def explain_instance(
    session: Session, dag: SerializedDag, run_id: str, task_id: str, map_index: int, now: datetime
) -> Explanation:
    """`explain` for the instance named by its key; NotFoundError naming the run or the instance."""
    run = get_run(session, dag.dag_id, run_id)
    ti = session.scalars(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag.dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )  # fmt: skip
    ).first()
    if ti is None:
        spec = dag.task(task_id)  # a task the DAG does not have (and never had in this run): say that
        if spec.compensates is not None:
            raise NotFoundError(
                f"run {run_id} has no instance of {task_id} with map index {map_index}: it undoes "
                f"{spec.compensates} and gets an instance only if the run fails after {spec.compensates} succeeded"
            )
        raise NotFoundError(f"run {run_id} has no instance of {task_id} with map index {map_index}")
    return Explanation(TaskInstanceState(ti.state), explain(session, dag, run, ti, now))
