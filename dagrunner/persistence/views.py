"""Read-only queries that show the metadata to a person: the CLI now, the web API later.

Each function returns frozen view objects built inside the caller's session, so the caller can render
them after the session is closed, and each view has the one JSON shape (`to_json`) every command (and
later every endpoint) prints for that kind of row. Nothing here writes; operations (trigger, clear,
backfill) live in `scheduling/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagrunner.persistence.models import AuditLog, Dag, DagRun, HITLRequest, Pool, TaskInstance, TaskTry
from dagrunner.persistence.queries import audit_rows, dag_rows, get_run, job_rows, task_instances_for_run
from dagrunner.states import OCCUPYING_SLOT, RUN_FINISHED, BreakerState, DagRunState, TaskInstanceState


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def instance_label(task_id: str, map_index: int | None) -> str:
    """`task` for an unmapped instance, `task[i]` for mapped index i (0 included)."""
    return f"{task_id}[{map_index}]" if map_index is not None and map_index >= 0 else task_id


# --- runs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    """One DAG run as a person (or a script) sees it."""

    dag_id: str
    run_id: str
    run_type: str
    state: str
    logical_date: datetime
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    conf: dict[str, Any]
    backfill_id: int | None
    #: A compensation of the run failed after its retries (saga compensation): a person must look.
    needs_attention: bool = False
    needs_attention_reason: str | None = None

    @classmethod
    def of(cls, run: DagRun) -> RunView:
        return cls(
            dag_id=run.dag_id, run_id=run.run_id, run_type=run.run_type.value, state=run.state.value,
            logical_date=run.logical_date, data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end, start_date=run.start_date, end_date=run.end_date,
            conf=dict(run.conf or {}), backfill_id=run.backfill_id,
            needs_attention=bool(run.needs_attention), needs_attention_reason=run.needs_attention_reason,
        )  # fmt: skip

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; None until the run has both."""
        if self.start_date is None or self.end_date is None:
            return None
        return (self.end_date - self.start_date).total_seconds()

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of a run, wherever one is printed (`runs list`, `dags trigger`, `dags test`,
        `backfill`)::

            {"dag_id": str, "run_id": str, "run_type": "manual|scheduled|backfill",
             "state": "queued|running|success|failed", "logical_date": ISO datetime,
             "data_interval_start": ISO datetime | null, "data_interval_end": ISO datetime | null,
             "start_date": ISO datetime | null, "end_date": ISO datetime | null,
             "duration_s": float | null, "conf": {...}, "backfill_id": int | null,
             "needs_attention": bool, "needs_attention_reason": str | null}
        """
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "run_type": self.run_type,
            "state": self.state,
            "logical_date": self.logical_date.isoformat(),
            "data_interval_start": _iso(self.data_interval_start),
            "data_interval_end": _iso(self.data_interval_end),
            "start_date": _iso(self.start_date),
            "end_date": _iso(self.end_date),
            "duration_s": self.duration_s,
            "conf": self.conf,
            "backfill_id": self.backfill_id,
            "needs_attention": self.needs_attention,
            "needs_attention_reason": self.needs_attention_reason,
        }


def list_runs(
    session: Session, *, dag_id: str | None = None, state: DagRunState | None = None, limit: int = 50
) -> list[RunView]:
    """Runs of one DAG (or of every DAG), newest logical date first, optionally only those in `state`."""
    query = select(DagRun).order_by(DagRun.logical_date.desc(), DagRun.id.desc()).limit(limit)
    if dag_id is not None:
        query = query.where(DagRun.dag_id == dag_id)
    if state is not None:
        query = query.where(DagRun.state == state)
    return [RunView.of(run) for run in session.scalars(query)]


def runs_by_id(session: Session, dag_id: str, run_ids: Iterable[str]) -> list[RunView]:
    """These runs of one DAG, oldest logical date first (a backfill's summary)."""
    ids = list(run_ids)
    if not ids:
        return []
    query = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id.in_(ids)).order_by(DagRun.logical_date)
    return [RunView.of(run) for run in session.scalars(query)]


# --- task instances ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskInstanceView:
    """One task instance of one run: its state and its latest try's times and host."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str
    try_number: int
    start_date: datetime | None
    end_date: datetime | None
    hostname: str | None

    @classmethod
    def of(cls, ti: TaskInstance) -> TaskInstanceView:
        return cls(
            dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index, state=ti.state.value,
            try_number=ti.try_number, start_date=ti.start_date, end_date=ti.end_date, hostname=ti.hostname,
        )  # fmt: skip

    @property
    def label(self) -> str:
        return instance_label(self.task_id, self.map_index)


def task_states_json(tis: Sequence[TaskInstanceView]) -> dict[str, str]:
    """The JSON shape of a run's task instances, wherever it is printed (`tasks states`, `dags test`)::

        {"task_id": "state", "mapped_task[0]": "state", ...}

    in the order given.
    """
    return {ti.label: ti.state for ti in tis}


def run_task_instances(session: Session, dag_id: str, run_id: str) -> list[TaskInstanceView]:
    """Every instance of the run (NotFoundError naming it if there is no such run), by task then map index."""
    get_run(session, dag_id, run_id)
    return [TaskInstanceView.of(ti) for ti in task_instances_for_run(session, dag_id, run_id)]


@dataclass(frozen=True)
class RunWithTasks:
    run: RunView
    tasks: list[TaskInstanceView]

    def to_json(self) -> dict[str, Any]:
        """`RunView.to_json()` plus `"tasks"`: the `task_states_json` of its instances."""
        return {**self.run.to_json(), "tasks": task_states_json(self.tasks)}


def run_with_tasks(session: Session, dag_id: str, run_id: str, order: Sequence[str] = ()) -> RunWithTasks:
    """The run and its instances, tasks in `order` (e.g. upstream first) when given, else by task id."""
    run = RunView.of(get_run(session, dag_id, run_id))
    rank = {task_id: i for i, task_id in enumerate(order)}
    tis = sorted(
        (TaskInstanceView.of(ti) for ti in task_instances_for_run(session, dag_id, run_id)),
        key=lambda ti: (rank.get(ti.task_id, len(rank)), ti.task_id, ti.map_index),
    )
    return RunWithTasks(run, tis)


@dataclass(frozen=True)
class TryView:
    """One try of a task instance: where its log is."""

    try_number: int
    state: str
    log_path: str | None
    #: The host that ran it (a Celery worker on another host serves its log over HTTP).
    hostname: str | None = None


def latest_try(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int | None = None
) -> TryView | None:
    """Try `try_number` of the instance, or its latest try when None; None when there is no such try."""
    query = select(TaskTry).where(
        TaskTry.dag_id == dag_id, TaskTry.run_id == run_id, TaskTry.task_id == task_id, TaskTry.map_index == map_index
    )
    if try_number is not None:
        query = query.where(TaskTry.try_number == try_number)
    row = session.scalars(query.order_by(TaskTry.try_number.desc()).limit(1)).first()
    return None if row is None else TryView(row.try_number, row.state.value, row.log_path, row.hostname)


# --- DAGs ----------------------------------------------------------------------------------------------


def paused_dags(session: Session) -> dict[str, bool]:
    """dag_id -> is_paused for every DAG the database knows."""
    return {row.dag_id: bool(row.is_paused) for row in dag_rows(session)}


def is_paused(session: Session, dag_id: str) -> bool:
    """Whether the DAG is paused (False for a DAG the database does not know yet)."""
    return bool(session.scalar(select(Dag.is_paused).where(Dag.dag_id == dag_id)))


# --- backfills -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillProgress:
    """What a running backfill's display shows: runs finished, task instances by state, dates in flight."""

    runs_done: int
    task_counts: dict[str, int]
    in_flight: list[datetime]


def backfill_progress(session: Session, backfill_id: int) -> BackfillProgress:
    runs = session.execute(select(DagRun.state, DagRun.logical_date).where(DagRun.backfill_id == backfill_id)).all()
    counts = session.execute(
        select(TaskInstance.state, func.count())
        .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
        .where(DagRun.backfill_id == backfill_id)
        .group_by(TaskInstance.state)
    ).all()
    return BackfillProgress(
        runs_done=sum(1 for state, _ in runs if state in RUN_FINISHED),
        task_counts={state.value: n for state, n in counts},
        in_flight=sorted(date for state, date in runs if state == DagRunState.RUNNING),
    )


# --- audit -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditView:
    """One audit record: who changed what, when, and why."""

    ts: datetime
    actor: str
    event: str
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    map_index: int | None
    try_number: int | None
    old_state: str | None
    new_state: str | None
    reason: str | None
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, row: AuditLog) -> AuditView:
        return cls(
            ts=row.ts, actor=row.actor, event=row.event, dag_id=row.dag_id, run_id=row.run_id, task_id=row.task_id,
            map_index=row.map_index, try_number=row.try_number, old_state=row.old_state, new_state=row.new_state,
            reason=row.reason, detail=row.detail,
        )  # fmt: skip

    @property
    def task_label(self) -> str | None:
        """`task`, or `task[i]` for a mapped instance (index 0 included); None for a run or DAG record."""
        return None if self.task_id is None else instance_label(self.task_id, self.map_index)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of an audit record (`dagrunner audit --json`)::

        {"ts": ISO datetime, "actor": str, "event": str, "dag_id": str | null, "run_id": str | null,
         "task_id": str | null, "map_index": int | null, "try_number": int | null,
         "old_state": str | null, "new_state": str | null, "reason": str | null, "detail": {...} | null}
        """
        return {
            "ts": self.ts.isoformat(),
            "actor": self.actor,
            "event": self.event,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "try_number": self.try_number,
            "old_state": self.old_state,
            "new_state": self.new_state,
            "reason": self.reason,
            "detail": self.detail,
        }


def audit_trail(
    session: Session,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    event: str | None = None,
) -> list[AuditView]:
    """Audit records oldest first; with `limit`, the newest `limit` of them."""
    rows = audit_rows(session, dag_id=dag_id, run_id=run_id, since=since, limit=limit, event=event)
    return [AuditView.of(row) for row in rows]


# --- pools -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolView:
    """One pool with what it holds now and its circuit breaker (`dagrunner pools list`)."""

    name: str
    slots: int
    used: int
    queued: int
    scheduled: int
    description: str | None
    breaker_state: str | None
    consecutive_failures: int
    threshold: int | None
    cooldown_s: float
    open_until: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of a pool::

        {"name": str, "slots": int, "used": int (slots held by queued and running tries),
         "queued": int (slots held by queued tries), "scheduled": int (instances waiting for a slot),
         "open_slots": int, "description": str | null,
         "breaker": null | {"state": "closed|open|half_open", "consecutive_failures": int,
                            "threshold": int, "cooldown_s": float, "open_until": ISO datetime | null}}
        """
        breaker = None
        if self.threshold is not None:
            breaker = {"state": self.breaker_state, "consecutive_failures": self.consecutive_failures,
                       "threshold": self.threshold, "cooldown_s": self.cooldown_s, "open_until": _iso(self.open_until)}  # fmt: skip
        return {
            "name": self.name, "slots": self.slots, "used": self.used, "queued": self.queued,
            "scheduled": self.scheduled, "open_slots": max(0, self.slots - self.used), "description": self.description,
            "breaker": breaker,
        }  # fmt: skip


def pool_views(session: Session) -> list[PoolView]:
    """Every pool by name, with the slots its queued and running tries hold and its breaker."""
    held: dict[tuple[str, str], int] = {}
    states = [*OCCUPYING_SLOT, TaskInstanceState.SCHEDULED]
    query = (
        select(TaskInstance.pool, TaskInstance.state, func.count(), func.sum(TaskInstance.pool_slots))
        .where(TaskInstance.state.in_(states))
        .group_by(TaskInstance.pool, TaskInstance.state)
    )
    for pool, state, count, slots in session.execute(query):
        held[(pool, state.value)] = int(count if state == TaskInstanceState.SCHEDULED else slots or 0)
    views = []
    for p in session.scalars(select(Pool).order_by(Pool.name)):
        queued = held.get((p.name, "queued"), 0)
        opened = p.opened_at if p.breaker_state == BreakerState.OPEN else None
        views.append(PoolView(
            p.name, p.slots, queued + held.get((p.name, "running"), 0), queued, held.get((p.name, "scheduled"), 0),
            p.description, p.breaker_state.value, p.consecutive_failures, p.breaker_failures, p.breaker_cooldown_s,
            opened + timedelta(seconds=p.breaker_cooldown_s) if opened is not None else None,
        ))  # fmt: skip
    return views


# --- approvals -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalView:
    """One request a person has not answered yet, of a task instance that waits for it (`deferred`)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    assigned_users: list[str]
    since: datetime
    subject: str
    body: str | None
    options: list[str]
    multiple: bool
    params: dict[str, Any]
    timeout_at: datetime | None
    escalate_at: datetime | None
    escalated_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "assigned_users": self.assigned_users,
            "since": _iso(self.since),
            "subject": self.subject,
            "body": self.body,
            "options": self.options,
            "multiple": self.multiple,
            "params": self.params,
            "timeout_at": _iso(self.timeout_at),
            "escalate_at": _iso(self.escalate_at),
            "escalated_at": _iso(self.escalated_at),
        }


def pending_approvals(session: Session, dag_id: str | None = None) -> list[ApprovalView]:
    """Unanswered requests of deferred instances, oldest first (`dagrunner approvals list`)."""
    query = (
        select(HITLRequest)
        .join(TaskInstance, TaskInstance.id == HITLRequest.ti_id)
        .where(HITLRequest.responded_at.is_(None), TaskInstance.state == TaskInstanceState.DEFERRED)
        .order_by(HITLRequest.created_at, HITLRequest.id)
    )
    if dag_id is not None:
        query = query.where(HITLRequest.dag_id == dag_id)
    return [
        ApprovalView(
            r.dag_id,
            r.run_id,
            r.task_id,
            r.map_index,
            list(r.assigned_users),
            r.created_at,
            r.subject,
            r.body,
            list(r.options),
            r.multiple,
            dict(r.params),
            r.timeout_at,
            r.escalate_at,
            r.escalated_at,
        )  # fmt: skip
        for r in session.scalars(query)
    ]


#: `jobs list` without --all shows jobs that ended this recently, besides the running ones.
RECENTLY_ENDED = timedelta(hours=1)


@dataclass(frozen=True)
class JobView:
    """One process that registered itself (`dagrunner jobs list`): a scheduler, triggerer, backfill, ..."""

    id: int
    job_type: str
    host: str
    pid: int
    state: str
    started_at: datetime
    latest_heartbeat: datetime
    heartbeat_age_s: float | None  # None once the job has ended
    ended_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of a job::

        {"id": int, "type": "scheduler|triggerer|backfill|dags_test|...", "host": str, "pid": int,
         "state": "running|success|failed", "started_at": ISO datetime, "latest_heartbeat": ISO datetime,
         "heartbeat_age_s": float | null (seconds since the last heartbeat, while running),
         "ended_at": ISO datetime | null}
        """
        return {
            "id": self.id, "type": self.job_type, "host": self.host, "pid": self.pid, "state": self.state,
            "started_at": _iso(self.started_at), "latest_heartbeat": _iso(self.latest_heartbeat),
            "heartbeat_age_s": self.heartbeat_age_s, "ended_at": _iso(self.ended_at),
        }  # fmt: skip


def job_views(session: Session, now: datetime, *, include_all: bool = False) -> list[JobView]:
    """Running jobs and those ended within `RECENTLY_ENDED` of `now` (every job with `include_all`), newest first."""
    rows = job_rows(session, ended_since=None if include_all else now - RECENTLY_ENDED)
    return [
        JobView(
            id=job.id,
            job_type=job.job_type.value,
            host=job.host,
            pid=job.pid,
            state=job.state.value,
            started_at=job.started_at,
            latest_heartbeat=job.latest_heartbeat,
            heartbeat_age_s=round((now - job.latest_heartbeat).total_seconds(), 1) if job.ended_at is None else None,
            ended_at=job.ended_at,
        )  # fmt: skip
        for job in rows
    ]
