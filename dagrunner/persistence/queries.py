"""Named read queries, so that callers say what they want and the SQL (and its indexes) live in one place.

Each query uses an index declared in `models.py`; keep it that way when adding one here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.errors import NotFoundError
from dagrunner.persistence.models import AuditLog, Dag, DagRun, TaskInstance
from dagrunner.states import DagRunState


def dag_rows(session: Session, *, active_only: bool = False) -> list[Dag]:
    """Every DAG row by dag_id (`active_only`: those a parsed file still defines)."""
    query = select(Dag).order_by(Dag.dag_id)
    if active_only:
        query = query.where(Dag.is_active.is_(True))
    return list(session.scalars(query))


def get_run(session: Session, dag_id: str, run_id: str) -> DagRun:
    """The run, or NotFoundError naming it (uses the (dag_id, run_id) unique index)."""
    run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one_or_none()
    if run is None:
        raise NotFoundError(f"DAG {dag_id!r} has no run {run_id!r}; `dagrunner runs list {dag_id}` shows its runs")
    return run


def runs_for_dag(
    session: Session,
    dag_id: str,
    *,
    states: Sequence[DagRunState] | None = None,
    limit: int | None = None,
) -> list[DagRun]:
    """The DAG's runs, newest logical date first, optionally only those in `states`."""
    query = select(DagRun).where(DagRun.dag_id == dag_id)
    if states is not None:
        query = query.where(DagRun.state.in_(list(states)))
    query = query.order_by(DagRun.logical_date.desc(), DagRun.id.desc()).limit(limit)
    return list(session.scalars(query))


def task_instances_for_run(session: Session, dag_id: str, run_id: str) -> list[TaskInstance]:
    """Every task instance of one run, by task_id then map_index (uses the natural-key unique index)."""
    query = (
        select(TaskInstance)
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        .order_by(TaskInstance.task_id, TaskInstance.map_index)
    )
    return list(session.scalars(query))


def audit_rows(
    session: Session,
    dag_id: str | None = None,
    run_id: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditLog]:
    """Audit rows in the order they were written; with `limit`, the most recent `limit` of them."""
    query = select(AuditLog)
    if dag_id is not None:
        query = query.where(AuditLog.dag_id == dag_id)
    if run_id is not None:
        query = query.where(AuditLog.run_id == run_id)
    if since is not None:
        query = query.where(AuditLog.ts >= since)
    rows = list(session.scalars(query.order_by(AuditLog.id.desc()).limit(limit)))
    rows.reverse()
    return rows
