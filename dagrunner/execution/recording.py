"""Every database write about a try, made by the side that runs it (DESIGN section 7).

A worker records `running` before user code starts and the outcome when it ends, so the database stays
the truth even when the scheduler dies mid-try. Each write is *fenced*: it applies only while the task
instance is still in the state and at the try_number the writer expects. A worker holding a stale work
item (the instance was cleared, re-queued by another scheduler, or already failed as a zombie) is fenced
out and changes nothing, so a try can never be started twice or have its outcome recorded twice.

Every function works in the caller's session and flushes without committing: the caller's transaction
commits the state change, its audit rows, the `task_try` row and the XComs together, or none of them.
State changes go only through `persistence.audit`. A try's common steps (start; a success or skip with
nothing else to record) also have a fast path on a bare Connection, `start_try_fast` and
`record_ended_fast`: the same fences, writes and audit rows in fewer statements and without the ORM.

Retry rule (Airflow's): a failed try becomes `up_for_retry` when the task has retries
(`policy.retries > 0`), the failure is not `fail_fast` (FailTask, a kill), and
`try_number <= ti.max_tries`; otherwise `failed`. The scheduler creates an instance with
`max_tries = retries`, so a task gets `retries + 1` tries; a clear raises `max_tries` instead of
lowering `try_number`. The next try may start at `now + retry_delay` (`execution.retries`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from dagrunner.execution.base import TaskKey, WorkItem, XComRows
from dagrunner.execution.retries import RetryPolicy, next_try_at
from dagrunner.persistence.audit import record_event, transition_task, transition_task_fenced, transition_tasks
from dagrunner.persistence.models import DagRun, TaskInstance, TaskTry, XCom
from dagrunner.states import DagRunState, TaskInstanceState

if TYPE_CHECKING:
    from dagrunner.execution.runner import TryOutcome

TI = TaskInstanceState
log = logging.getLogger(__name__)

#: A Session or a bare Connection: the helpers below that issue only Core statements take either.
Executable = Session | Connection

_SKIPPABLE = (TI.NONE, TI.SCHEDULED)


# Statements of the hot path, built once: building a statement costs more than running it on SQLite.
_TI_T = cast(Table, TaskInstance.__table__)
_TRY_T = cast(Table, TaskTry.__table__)
_XCOM_T = cast(Table, XCom.__table__)
_RUN_T = cast(Table, DagRun.__table__)
_KEY_WHERE = (
    TaskInstance.dag_id == bindparam("b_dag_id"),
    TaskInstance.run_id == bindparam("b_run_id"),
    TaskInstance.task_id == bindparam("b_task_id"),
    TaskInstance.map_index == bindparam("b_map_index"),
)
_LOAD = select(TaskInstance).where(*_KEY_WHERE).execution_options(populate_existing=True)
_LOAD_LOCKED = _LOAD.with_for_update()
_HEARTBEAT = (
    update(_TI_T)
    .where(
        _TI_T.c.dag_id == bindparam("b_dag_id"),
        _TI_T.c.run_id == bindparam("b_run_id"),
        _TI_T.c.task_id == bindparam("b_task_id"),
        _TI_T.c.map_index == bindparam("b_map_index"),
        _TI_T.c.try_number == bindparam("b_try"),
        _TI_T.c.state == TI.RUNNING,
    )
    .values(last_heartbeat=bindparam("b_now"))
)
_INSERT_TRY = insert(_TRY_T)
_CLOSE_TRY = (
    update(_TRY_T)
    .where(
        _TRY_T.c.ti_id == bindparam("b_ti_id"), _TRY_T.c.try_number == bindparam("b_try"), _TRY_T.c.end_date.is_(None)
    )
    .values(
        end_date=bindparam("b_end"),
        state=bindparam("b_state"),
        exit_code=bindparam("b_exit_code"),
        error=bindparam("b_error"),
    )
)
_DELETE_XCOMS = delete(_XCOM_T).where(_XCOM_T.c.ti_id == bindparam("b_ti_id"))
_INSERT_XCOM = insert(_XCOM_T)
_XCOM_COLUMNS = select(_XCOM_T.c.task_id, _XCOM_T.c.map_index, _XCOM_T.c.key, _XCOM_T.c.value)
_RUN_XCOMS = _XCOM_COLUMNS.where(_XCOM_T.c.dag_id == bindparam("b_dag_id"), _XCOM_T.c.run_id == bindparam("b_run_id"))
_TASK_XCOMS = _RUN_XCOMS.where(_XCOM_T.c.task_id.in_(bindparam("b_task_ids", expanding=True)))
_PREVIOUS_SUCCESS = (
    select(_RUN_T.c.data_interval_start, _RUN_T.c.data_interval_end, _RUN_T.c.start_date)
    .where(
        _RUN_T.c.dag_id == bindparam("b_dag_id"),
        _RUN_T.c.state == DagRunState.SUCCESS,
        _RUN_T.c.logical_date < bindparam("b_logical_date"),
    )
    .order_by(_RUN_T.c.logical_date.desc())
    .limit(1)
)


# --- start -----------------------------------------------------------------------------------------


def record_started(
    session: Session,
    item: WorkItem,
    *,
    hostname: str,
    pid: int,
    log_path: str,
    now: datetime,
    actor: str,
) -> bool:
    """queued -> running and open the try's `task_try` row; False (nothing written) when fenced out.

    Fenced on: the instance is `queued` at `item.try_number`, and was queued by `item.queued_by_job_id`
    when the item names a job. `pid` is the process that supervises the try and heartbeats it.
    """
    return start_try(session, item, hostname=hostname, pid=pid, log_path=log_path, now=now, actor=actor) is not None


def start_try(
    session: Session,
    item: WorkItem,
    *,
    hostname: str,
    pid: int,
    log_path: str,
    now: datetime,
    actor: str,
) -> TaskInstance | None:
    """`record_started`, returning the started instance (None when fenced out)."""
    ti = _load(session, item.key)
    refusal = start_refusal(ti, item)
    if refusal is not None:
        log.warning("not starting try %s of %s: %s", item.try_number, item.key.label(), refusal)
        return None
    assert ti is not None
    transition_task(
        session,
        ti,
        TI.RUNNING,
        actor=actor,
        reason=f"try {item.try_number} started on {hostname} (pid {pid})",
        when=now,
    )
    ti.hostname = hostname
    ti.pid = pid
    ti.last_heartbeat = now
    session.execute(
        _INSERT_TRY,
        {
            "ti_id": ti.id,
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "try_number": item.try_number,
            "state": TI.RUNNING,
            "queued_at": ti.queued_at,
            "start_date": now,
            "hostname": hostname,
            "pid": pid,
            "executor_id": ti.executor_id,
            "log_path": log_path,
        },
    )
    session.flush()
    return ti


@dataclass(frozen=True)
class StartedTry:
    """What `start_try_fast` learned about the instance it started."""

    ti_id: int
    max_tries: int


def start_try_fast(
    conn: Connection,
    item: WorkItem,
    *,
    hostname: str,
    pid: int,
    log_path: str,
    now: datetime,
    actor: str,
) -> StartedTry | None:
    """`start_try` in three statements (fenced UPDATE, audit row, `task_try` row); None when fenced out,
    with nothing written (`describe_refusal` then says why)."""
    key = item.key
    fence = {"queued_by_job_id": item.queued_by_job_id} if item.queued_by_job_id is not None else None
    row = transition_task_fenced(
        conn,
        (key.dag_id, key.run_id, key.task_id, key.map_index),
        TI.QUEUED,
        TI.RUNNING,
        try_number=item.try_number,
        actor=actor,
        reason=f"try {item.try_number} started on {hostname} (pid {pid})",
        when=now,
        fence=fence,
        values={"hostname": hostname, "pid": pid, "last_heartbeat": now},
        returning=("max_tries", "queued_at", "executor_id"),
    )
    if row is None:
        return None
    conn.execute(
        _INSERT_TRY,
        {
            "ti_id": row.id,
            "dag_id": key.dag_id,
            "run_id": key.run_id,
            "task_id": key.task_id,
            "map_index": key.map_index,
            "try_number": item.try_number,
            "state": TI.RUNNING,
            "queued_at": row.queued_at,
            "start_date": now,
            "hostname": hostname,
            "pid": pid,
            "executor_id": row.executor_id,
            "log_path": log_path,
        },
    )
    return StartedTry(row.id, row.max_tries)


def start_refusal(ti: TaskInstance | None, item: WorkItem) -> str | None:
    """Why `item` may not start (None: it may): the words a fenced-out worker logs and reports."""
    reason = _fence(ti, item.key, item.try_number, (TI.QUEUED,))
    if reason is None and item.queued_by_job_id is not None:
        assert ti is not None
        if ti.queued_by_job_id != item.queued_by_job_id:
            reason = (
                f"it was queued by job {ti.queued_by_job_id}, not by job {item.queued_by_job_id} "
                "that sent this work item"
            )
    return reason


def describe_refusal(session: Session, item: WorkItem) -> str:
    """`start_refusal` read fresh, for the detail of a fenced-out work item's event."""
    return start_refusal(_load(session, item.key, lock=False), item) or "it may start now (raced)"


# --- finish ----------------------------------------------------------------------------------------


def record_finished(
    session: Session,
    item: WorkItem,
    outcome: TryOutcome,
    *,
    policy: RetryPolicy,
    now: datetime,
    actor: str,
) -> TaskInstanceState:
    """Record a try's outcome: the final state, its closed `task_try` row, its XComs, its branch skips.

    Fenced on `running` at `item.try_number`; when fenced out the instance is left alone (its try row is
    still closed if open, since the try did end) and its current state is returned.
    """
    key = item.key
    ti = _load(session, key)
    refusal = _fence(ti, key, item.try_number, (TI.RUNNING,))
    if refusal is not None:
        log.warning("not recording the outcome of try %s of %s: %s", item.try_number, key.label(), refusal)
        if ti is None:
            return TI.REMOVED
        _close_try(session, ti.id, item.try_number, TI(outcome.state), now, outcome.exit_code, outcome.error)
        return TI(ti.state)
    assert ti is not None
    state = final_state(outcome.state, outcome.fail_fast, ti.try_number, ti.max_tries, policy)
    detail: dict[str, Any] = {}
    if state == TI.UP_FOR_RETRY:
        delay = policy.delay_s(
            dag_id=key.dag_id, task_id=key.task_id, logical_date=item.run.logical_date, try_number=item.try_number
        )
        ti.next_try_at = next_try_at(now, delay)
        detail = {"retry_delay_s": delay, "next_try_at": ti.next_try_at.isoformat()}
    reason = _finish_reason(item.try_number, state, outcome.error)
    transition_task(session, ti, state, actor=actor, reason=reason, detail=detail or None, when=now)
    _close_try(session, ti.id, item.try_number, state, now, outcome.exit_code, outcome.error)
    xcoms = outcome.xcoms if state in (TI.SUCCESS, TI.SKIPPED) else {}
    _replace_xcoms(session, ti.id, key, item.try_number, xcoms, now)
    if state == TI.SUCCESS and outcome.skip_task_ids:
        skip_downstream(session, key, outcome.skip_task_ids, actor=actor, now=now)
    for error in outcome.callback_errors:
        record_callback_error(session, item, error, actor=actor, now=now)
    session.flush()
    return state


def record_ended_fast(conn: Connection, item: WorkItem, outcome: TryOutcome, *, now: datetime, actor: str) -> TI | None:
    """`record_finished` for the common ending, a success or a skip that skips no other task and has no
    callback errors to audit, in three to four statements: the fenced UPDATE, its audit row, the closed
    `task_try` row and the XComs. None when it does not apply or the try is fenced out (nothing is
    written then): call `record_finished`, which handles every case."""
    if not ends_plainly(outcome):
        return None
    key = item.key
    state = TI(outcome.state)
    row = transition_task_fenced(
        conn,
        (key.dag_id, key.run_id, key.task_id, key.map_index),
        TI.RUNNING,
        state,
        try_number=item.try_number,
        actor=actor,
        reason=_finish_reason(item.try_number, state, outcome.error),
        when=now,
    )
    if row is None:
        return None
    _close_try(conn, row.id, item.try_number, state, now, outcome.exit_code, outcome.error)
    _replace_xcoms(conn, row.id, key, item.try_number, outcome.xcoms, now)
    return state


def ends_plainly(outcome: TryOutcome) -> bool:
    """Whether `record_ended_fast` applies: a success or skip that skips nothing else and has no
    callback errors to audit."""
    return outcome.state in ("success", "skipped") and not outcome.skip_task_ids and not outcome.callback_errors


def final_state(
    outcome_state: str, fail_fast: bool, try_number: int, max_tries: int, policy: RetryPolicy
) -> TaskInstanceState:
    """The state a try's outcome leaves its instance in (the retry rule in the module docstring)."""
    if outcome_state == "success":
        return TI.SUCCESS
    if outcome_state == "skipped":
        return TI.SKIPPED
    if not fail_fast and retry_allowed(try_number, max_tries, policy):
        return TI.UP_FOR_RETRY
    return TI.FAILED


def retry_allowed(try_number: int, max_tries: int, policy: RetryPolicy) -> bool:
    return policy.retries > 0 and try_number <= max_tries


def skip_downstream(session: Session, key: TaskKey, task_ids: Collection[str], *, actor: str, now: datetime) -> int:
    """Skip the not-yet-started instances (every map index) of `task_ids` in the run of `key`."""
    targets = list(
        session.scalars(
            select(TaskInstance)
            .where(
                TaskInstance.dag_id == key.dag_id,
                TaskInstance.run_id == key.run_id,
                TaskInstance.task_id.in_(sorted(task_ids)),
                TaskInstance.state.in_(_SKIPPABLE),
            )
            .with_for_update()
        )
    )
    if not targets:
        return 0
    return transition_tasks(
        session, targets, TI.SKIPPED, actor=actor, reason=f"skipped by branch {key.task_id}", when=now
    )


def record_callback_error(session: Session, item: WorkItem, error: str, *, actor: str, now: datetime) -> None:
    """Audit a callback that raised; the task's state is never changed by it."""
    key = item.key
    record_event(
        session,
        "task.callback_error",
        actor=actor,
        dag_id=key.dag_id,
        run_id=key.run_id,
        task_id=key.task_id,
        map_index=key.map_index,
        try_number=item.try_number,
        reason=error,
        when=now,
    )


# --- lost tries and heartbeats ---------------------------------------------------------------------


def record_lost(
    session: Session,
    key: TaskKey,
    try_number: int,
    *,
    reason: str,
    policy: RetryPolicy,
    now: datetime,
    actor: str,
) -> TaskInstanceState | None:
    """A try whose process died without recording its outcome: up_for_retry or failed, with `reason`.

    Fenced on `queued`/`running` at `try_number`; returns the new state, or None when fenced out.
    """
    ti = _load(session, key)
    refusal = _fence(ti, key, try_number, (TI.QUEUED, TI.RUNNING))
    if refusal is not None:
        log.info("not recording try %s of %s as lost: %s", try_number, key.label(), refusal)
        return None
    assert ti is not None
    state = TI.UP_FOR_RETRY if retry_allowed(try_number, ti.max_tries, policy) else TI.FAILED
    detail: dict[str, Any] = {"lost": True}
    if state == TI.UP_FOR_RETRY:
        logical_date = session.scalars(
            select(DagRun.logical_date).where(DagRun.dag_id == key.dag_id, DagRun.run_id == key.run_id)
        ).one()
        delay = policy.delay_s(dag_id=key.dag_id, task_id=key.task_id, logical_date=logical_date, try_number=try_number)
        ti.next_try_at = next_try_at(now, delay)
        detail.update(retry_delay_s=delay, next_try_at=ti.next_try_at.isoformat())
    transition_task(session, ti, state, actor=actor, reason=reason, detail=detail, when=now)
    _close_try(session, ti.id, try_number, state, now, None, reason)
    session.flush()
    return state


def heartbeat(session: Executable, key: TaskKey, try_number: int, now: datetime) -> bool:
    """Stamp `last_heartbeat` of a running try (not a state change, so not audited); False if not running."""
    result = session.execute(_HEARTBEAT, {**_key_params(key), "b_try": try_number, "b_now": now})
    return bool(getattr(result, "rowcount", 0))


# --- reads a try needs ---------------------------------------------------------------------------------


PreviousRun = tuple[datetime | None, datetime | None, datetime | None]


def read_xcoms(session: Executable, dag_id: str, run_id: str, task_ids: Iterable[str] | None = None) -> XComRows:
    """(task_id, map_index, key) -> value for a run's XComs, of `task_ids` only when given."""
    if task_ids is None:
        rows = session.execute(_RUN_XCOMS, {"b_dag_id": dag_id, "b_run_id": run_id})
    else:
        ids = sorted(set(task_ids))
        if not ids:
            return {}
        rows = session.execute(_TASK_XCOMS, {"b_dag_id": dag_id, "b_run_id": run_id, "b_task_ids": ids})
    return {(task_id, map_index, xkey): value for task_id, map_index, xkey, value in rows}


def previous_success(session: Executable, dag_id: str, logical_date: datetime) -> PreviousRun | None:
    """(data_interval_start, data_interval_end, start_date) of the DAG's latest successful run before
    `logical_date` (for prev_*_success in the context), or None."""
    row = session.execute(_PREVIOUS_SUCCESS, {"b_dag_id": dag_id, "b_logical_date": logical_date}).first()
    return None if row is None else (row[0], row[1], row[2])


# --- helpers -------------------------------------------------------------------------------------------


def _key_params(key: TaskKey) -> dict[str, Any]:
    return {"b_dag_id": key.dag_id, "b_run_id": key.run_id, "b_task_id": key.task_id, "b_map_index": key.map_index}


def _load(session: Session, key: TaskKey, *, lock: bool = True) -> TaskInstance | None:
    """The instance, read fresh (and row-locked on PostgreSQL; SQLite's BEGIN IMMEDIATE already locks)."""
    return session.scalars(_LOAD_LOCKED if lock else _LOAD, _key_params(key)).one_or_none()


def _fence(ti: TaskInstance | None, key: TaskKey, try_number: int, states: tuple[TaskInstanceState, ...]) -> str | None:
    if ti is None:
        return f"{key.label()} no longer exists (its run was deleted?)"
    if ti.try_number != try_number:
        return f"it is at try {ti.try_number} now, not try {try_number} (cleared or re-queued meanwhile)"
    if TI(ti.state) not in states:
        expected = " or ".join(str(s) for s in states)
        return f"it is {ti.state}, not {expected} (changed by someone else meanwhile)"
    return None


def _finish_reason(try_number: int, state: TaskInstanceState, error: str) -> str:
    if state in (TI.SUCCESS, TI.SKIPPED) and not error:
        return f"try {try_number} ended: {state}"
    return f"try {try_number} ended: {state}: {error}" if error else f"try {try_number} ended: {state}"


def _close_try(
    session: Executable,
    ti_id: int,
    try_number: int,
    state: TaskInstanceState,
    now: datetime,
    exit_code: int | None,
    error: str | None,
) -> None:
    """Close the try's row once: the `end_date IS NULL` condition makes a second close a no-op."""
    session.execute(
        _CLOSE_TRY,
        {
            "b_ti_id": ti_id,
            "b_try": try_number,
            "b_end": now,
            "b_state": state,
            "b_exit_code": exit_code,
            "b_error": error or None,
        },
    )


def _replace_xcoms(
    session: Executable, ti_id: int, key: TaskKey, try_number: int, xcoms: Mapping[str, Any], now: datetime
) -> None:
    """This instance's XComs become exactly `xcoms` (an earlier try's or run's are dropped)."""
    # Only record_finished inserts XComs, once per try, so a first try without XComs (the common no-op
    # case) can skip the delete; with XComs to insert, delete anyway so a stray row cannot break the insert.
    if try_number > 1 or xcoms:
        session.execute(_DELETE_XCOMS, {"b_ti_id": ti_id})
    if xcoms:
        session.execute(
            _INSERT_XCOM,
            [
                {
                    "ti_id": ti_id,
                    "dag_id": key.dag_id,
                    "run_id": key.run_id,
                    "task_id": key.task_id,
                    "map_index": key.map_index,
                    "key": name,
                    "value": value,
                    "created_at": now,
                }
                for name, value in xcoms.items()
            ],
        )
