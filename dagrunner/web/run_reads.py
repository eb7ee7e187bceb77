"""Runs, task instances and tries as the API returns them (JSON-ready dicts, secrets in conf redacted).

A run is `RunView.to_json()`, the shape `dagrunner runs list --json` prints, so scripts read one shape from
the CLI and the API. A task instance carries more than the CLI's table (its operator, pool, queue, tries
left) because the UI's instance page shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagrunner.errors import NotFoundError
from dagrunner.persistence.models import DagRun, DagRunType, TaskInstance, TaskTry
from dagrunner.persistence.queries import get_run
from dagrunner.persistence.views import RunView, instance_label
from dagrunner.states import DagRunState
from dagrunner.web.redact import redact

#: The state a mapped task's cell shows: the first of these any of its instances is in ("worst" first).
SUMMARY_ORDER = (
    "failed", "upstream_failed", "up_for_retry", "restarting", "running", "deferred", "up_for_reschedule",
    "queued", "scheduled", "none", "success", "skipped", "removed",
)  # fmt: skip
_SUMMARY_RANK = {state: i for i, state in enumerate(SUMMARY_ORDER)}


def summary_state(states: Iterable[str]) -> str:
    """One state for a mapped task's instances: the worst, so a failure or a running one shows."""
    return min(states, key=lambda s: _SUMMARY_RANK.get(s, len(SUMMARY_ORDER)), default="none")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_json(run: DagRun) -> dict[str, Any]:
    """`RunView.to_json()` with its conf redacted."""
    data = RunView.of(run).to_json()
    data["conf"] = redact(data["conf"])
    return data


def list_runs(
    session: Session, *, dag_id: str | None, state: DagRunState | None, run_type: DagRunType | None,
    limit: int, offset: int,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """One page of runs, newest logical date first, and how many match."""
    where = []
    if dag_id is not None:
        where.append(DagRun.dag_id == dag_id)
    if state is not None:
        where.append(DagRun.state == state)
    if run_type is not None:
        where.append(DagRun.run_type == run_type)
    total = session.scalar(select(func.count()).select_from(DagRun).where(*where)) or 0
    query = select(DagRun).where(*where).order_by(DagRun.logical_date.desc(), DagRun.id.desc())
    runs = session.scalars(query.limit(limit).offset(offset))
    return [run_json(run) for run in runs], total


def task_instance_json(ti: TaskInstance) -> dict[str, Any]:
    duration = (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else None
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "label": instance_label(ti.task_id, ti.map_index),
        "state": ti.state.value,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "queued_at": _iso(ti.queued_at),
        "start_date": _iso(ti.start_date),
        "end_date": _iso(ti.end_date),
        "duration_s": duration,
        "next_try_at": _iso(ti.next_try_at),
        "operator": ti.operator,
        "pool": ti.pool,
        "pool_slots": ti.pool_slots,
        "queue": ti.queue,
        "priority_weight": ti.priority_weight,
        "hostname": ti.hostname,
        "pid": ti.pid,
    }


def run_task_instances(session: Session, dag_id: str, run_id: str, order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The run's instances (NotFoundError naming the run when there is none), tasks in `order` when given."""
    get_run(session, dag_id, run_id)
    rank = {task_id: i for i, task_id in enumerate(order)}
    tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id))
    ordered = sorted(tis, key=lambda ti: (rank.get(ti.task_id, len(rank)), ti.task_id, ti.map_index))
    return [task_instance_json(ti) for ti in ordered]


def get_instance(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> TaskInstance:
    """The instance, or NotFoundError naming the run, or the instance (with the map indexes it does have)."""
    get_run(session, dag_id, run_id)
    rows = list(
        session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
            .order_by(TaskInstance.map_index)
        )
    )
    for ti in rows:
        if ti.map_index == map_index:
            return ti
    if not rows:
        raise NotFoundError(f"run {run_id} of DAG {dag_id!r} has no instance of task {task_id!r}")
    indexes = f"{rows[0].map_index}..{rows[-1].map_index}" if len(rows) > 1 else str(rows[0].map_index)
    raise NotFoundError(f"{task_id} in run {run_id} has no map index {map_index}; its instances have {indexes}")


def try_json(row: TaskTry) -> dict[str, Any]:
    duration = (row.end_date - row.start_date).total_seconds() if row.start_date and row.end_date else None
    return {
        "try_number": row.try_number,
        "state": row.state.value,
        "queued_at": _iso(row.queued_at),
        "start_date": _iso(row.start_date),
        "end_date": _iso(row.end_date),
        "duration_s": duration,
        "hostname": row.hostname,
        "pid": row.pid,
        "exit_code": row.exit_code,
        "exit_reason": row.error,
        "interrupted": bool(row.interrupted),
    }


def instance_detail(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    """The instance with every try of it, first try first."""
    ti = get_instance(session, dag_id, run_id, task_id, map_index)
    tries = session.scalars(select(TaskTry).where(TaskTry.ti_id == ti.id).order_by(TaskTry.try_number))
    return {**task_instance_json(ti), "tries": [try_json(row) for row in tries]}
