"""Every database write about a try, made by the side that runs it (DESIGN section 7).

A worker records `running` before user code starts and the outcome when it ends, so the database stays
the truth even when the scheduler dies mid-try. Each write is *fenced*: it applies only while the task
instance is still in the state and at the try_number the writer expects. A worker holding a stale work
item (the instance was cleared, re-queued by another scheduler, or already failed as a zombie) is fenced
out and changes nothing, so a try can never be started twice or have its outcome recorded twice.

Three writes, one name each: `start_try`, `finish_try` (every ending a try reports itself) and
`fail_lost_try` (a try whose process died without reporting). Each works on the caller's Session or
Connection without committing: the caller's transaction commits the state change, its audit row, the
`task_try` row and the XComs together, or none of them. States change only through
`persistence.audit.transition()`; a plain success costs one fenced UPDATE, one audit insert, the try
row's close and (when there are any) the XComs.

Retry rule (Airflow's): a failed try becomes `up_for_retry` when the task has retries
(`policy.retries > 0`), the failure is not `fail_fast` (FailTask, a kill), and
`try_number <= ti.max_tries`; otherwise `failed`. The scheduler creates an instance with
`max_tries = retries`, so a task gets `retries + 1` tries; a clear raises `max_tries` instead of
lowering `try_number`. The next try may start at `now + retry_delay` (`execution.retries`).

Reschedule rule: a `reschedule` sensor's "not yet" makes the instance `up_for_reschedule` with
`next_try_at` = the next poke (`execution.rescheduling.judge`), raises `reschedule_count`, stamps
`waiting_since` at the first one, and raises `max_tries` by one as `return_unstarted_try` does, so the
next poke is a new try that uses no retry. Past the sensor's timeout (counted from `waiting_since`) the
same outcome records `failed` without retries, or `skipped` with `soft_fail`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from dagrunner.execution import deferral
from dagrunner.execution.base import TaskKey, WorkItem, XComRows
from dagrunner.execution.rescheduling import judge
from dagrunner.execution.retries import RetryPolicy, next_try_at
from dagrunner.persistence.audit import (
    TASK,
    Change,
    TaskRef,
    TIRow,
    TryClose,
    close_try_alone,
    open_try,
    record_event,
    transition,
)
from dagrunner.persistence.breakers import count_try_end
from dagrunner.persistence.models import DagRun, TaskInstance, XCom
from dagrunner.states import DagRunState, TaskInstanceState, TryState

if TYPE_CHECKING:
    from dagrunner.execution.runner import TryOutcome

log = logging.getLogger(__name__)

#: A Session or a bare Connection: the helpers below that issue only Core statements take either.
Executable = Session | Connection

_SKIPPABLE = (TaskInstanceState.NONE.value, TaskInstanceState.SCHEDULED.value)
#: A try's endings a pool's circuit breaker counts: success resets its count, the others add one.
_BREAKER_COUNTED = frozenset({TaskInstanceState.SUCCESS, TaskInstanceState.FAILED, TaskInstanceState.UP_FOR_RETRY})


# Statements of the hot path, built once: building a statement costs more than running it on SQLite.
_TI_T = cast(Table, TaskInstance.__table__)
_XCOM_T = cast(Table, XCom.__table__)
_RUN_T = cast(Table, DagRun.__table__)
_TI_NOW = select(_TI_T.c.id, _TI_T.c.state, _TI_T.c.try_number, _TI_T.c.max_tries, _TI_T.c.queued_by_job_id).where(
    _TI_T.c.dag_id == bindparam("b_dag_id"),
    _TI_T.c.run_id == bindparam("b_run_id"),
    _TI_T.c.task_id == bindparam("b_task_id"),
    _TI_T.c.map_index == bindparam("b_map_index"),
)
_TI_NOW_LOCKED = _TI_NOW.with_for_update()
_TI_WAITING = (
    select(_TI_T.c.max_tries, _TI_T.c.start_date, _TI_T.c.waiting_since, _TI_T.c.reschedule_count)
    .where(
        _TI_T.c.dag_id == bindparam("b_dag_id"),
        _TI_T.c.run_id == bindparam("b_run_id"),
        _TI_T.c.task_id == bindparam("b_task_id"),
        _TI_T.c.map_index == bindparam("b_map_index"),
    )
    .with_for_update()
)
_LOGICAL_DATE = select(_RUN_T.c.logical_date).where(
    _RUN_T.c.dag_id == bindparam("b_dag_id"), _RUN_T.c.run_id == bindparam("b_run_id")
)
_HEARTBEAT = (
    update(_TI_T)
    .where(
        _TI_T.c.dag_id == bindparam("b_dag_id"),
        _TI_T.c.run_id == bindparam("b_run_id"),
        _TI_T.c.task_id == bindparam("b_task_id"),
        _TI_T.c.map_index == bindparam("b_map_index"),
        _TI_T.c.try_number == bindparam("b_try"),
        _TI_T.c.state == TaskInstanceState.RUNNING,
    )
    .values(last_heartbeat=bindparam("b_now"))
)
_DELETE_XCOMS = delete(_XCOM_T).where(_XCOM_T.c.ti_id == bindparam("b_ti_id"))
_INSERT_XCOM = insert(_XCOM_T)
_XCOM_COLUMNS = select(_XCOM_T.c.task_id, _XCOM_T.c.map_index, _XCOM_T.c.key, _XCOM_T.c.value)
_RUN_XCOMS = _XCOM_COLUMNS.where(_XCOM_T.c.dag_id == bindparam("b_dag_id"), _XCOM_T.c.run_id == bindparam("b_run_id"))
_TASK_XCOMS = _RUN_XCOMS.where(_XCOM_T.c.task_id.in_(bindparam("b_task_ids", expanding=True)))
_PREVIOUS_SUCCESS = (
    select(_RUN_T.c.data_interval_start, _RUN_T.c.data_interval_end, _RUN_T.c.start_date, _RUN_T.c.end_date)
    .where(
        _RUN_T.c.dag_id == bindparam("b_dag_id"),
        _RUN_T.c.state == DagRunState.SUCCESS,
        _RUN_T.c.logical_date < bindparam("b_logical_date"),
    )
    .order_by(_RUN_T.c.logical_date.desc())
    .limit(1)
)


# --- start -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedTry:
    """What `start_try` learned about the instance it started."""

    ti_id: int
    max_tries: int
    #: Tries of this instance that ended in a sensor's "not yet" (the context's `task_reschedule_count`).
    reschedule_count: int = 0
    #: A woken deferred instance: why ("resume", "escalate") and with what (`execution.deferral`).
    next_method: str | None = None
    next_kwargs: dict[str, Any] | None = None


def start_try(
    db: Executable,
    item: WorkItem,
    *,
    hostname: str,
    pid: int,
    log_path: str,
    now: datetime,
    actor: str,
) -> StartedTry | None:
    """queued -> running, and open the try's `task_try` row; None (nothing written) when fenced out.

    Fenced on: the instance is `queued` at `item.try_number`, and was queued by `item.queued_by_job_id`
    when the item names a job (`describe_refusal` then says why). `pid` is the process that supervises
    the try and heartbeats it.
    """
    ref = _ref(item, TaskInstanceState.QUEUED)
    fence: dict[str, Any] = {"try_number": item.try_number}
    if item.queued_by_job_id is not None:
        fence["queued_by_job_id"] = item.queued_by_job_id
    reason = f"try {item.try_number} started on {hostname} (pid {pid})"
    values = {"hostname": hostname, "pid": pid, "last_heartbeat": now}
    moved = transition(
        db, TASK, [ref], Change(TaskInstanceState.RUNNING, now, actor, reason, values=values), fence=fence,
        returning=("max_tries", "queued_at", "reschedule_count", "next_method", "next_kwargs"),
    )  # fmt: skip
    if not moved:
        return None
    row = moved[0].row
    open_try(db, row.id, ref, when=now, queued_at=row.queued_at, hostname=hostname, pid=pid, log_path=log_path)
    return StartedTry(row.id, row.max_tries, row.reschedule_count, row.next_method, row.next_kwargs)


def start_refusal(ti: Current | None, item: WorkItem) -> str | None:
    """Why `item` may not start (None: it may): the words a fenced-out worker logs and reports."""
    reason = _fence(ti, item.key, item.try_number, (TaskInstanceState.QUEUED,))
    if reason is None and item.queued_by_job_id is not None:
        assert ti is not None
        if ti.queued_by_job_id != item.queued_by_job_id:
            reason = (
                f"it was queued by job {ti.queued_by_job_id}, not by job {item.queued_by_job_id} "
                "that sent this work item"
            )
    return reason


def describe_refusal(db: Executable, item: WorkItem) -> str:
    """`start_refusal` read fresh, for the detail of a fenced-out work item's event."""
    return start_refusal(_current(db, item.key, lock=False), item) or "it may start now (raced)"


# --- finish ----------------------------------------------------------------------------------------


def finish_try(
    db: Executable,
    item: WorkItem,
    outcome: TryOutcome,
    *,
    policy: RetryPolicy,
    now: datetime,
    actor: str,
) -> TaskInstanceState:
    """Record a try's outcome: the final state, its closed `task_try` row, its XComs, its branch skips and
    its callback errors. Returns the state the instance is in afterwards.

    Fenced on `running` at `item.try_number`. When fenced out the instance is left alone, but the try
    did end, so its row is still closed (audited as `try.closed`), and the instance's current state is
    returned (`removed` when it no longer exists).
    """
    key = item.key
    state = TaskInstanceState(outcome.state)
    values: dict[str, Any] = {}
    detail: dict[str, Any] | None = None
    error = outcome.error
    if state == TaskInstanceState.UP_FOR_RESCHEDULE:
        state, values, detail, error = _reschedule(db, item, outcome, now)
    elif state == TaskInstanceState.DEFERRED:
        values, detail = deferral.wait_values(db, item, outcome, now)
    elif state not in (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED):
        current = _current(db, key)
        max_tries = current.max_tries if current is not None else 0
        state = final_state(outcome.state, outcome.fail_fast, item.try_number, max_tries, policy)
        if state == TaskInstanceState.UP_FOR_RETRY:
            values, detail = _retry(policy, key, item.try_number, item.run.logical_date, now)
    reason = _finish_reason(item.try_number, state, error, detail)
    change = Change(state, now, actor, reason, detail=detail, values=values)
    closing = TryClose(outcome.exit_code, error, outcome.interrupted)
    moved = transition(db, TASK, [_ref(item, TaskInstanceState.RUNNING)], change, fence={"try_number": item.try_number},
                       close_try=closing, returning=("pool",))  # fmt: skip
    if not moved:
        return _fenced_out_finish(db, item, TryState(outcome.state), closing, actor=actor, now=now)
    ti_id = moved[0].row.id
    if state == TaskInstanceState.DEFERRED:  # the request (or its escalation) is written with the wait
        deferral.record_request(db, ti_id, item, outcome, actor=actor, now=now)
    if state in _BREAKER_COUNTED:  # the pool's circuit breaker counts it, in this transaction
        count_try_end(db, moved[0].row.pool, failed=state != TaskInstanceState.SUCCESS,
                      label=f"{key.label()} (try {item.try_number})", actor=actor, now=now)  # fmt: skip
    xcoms = outcome.xcoms if state in (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED) else {}
    _replace_xcoms(db, ti_id, key, item.try_number, xcoms, now)
    if state == TaskInstanceState.SUCCESS and outcome.skip_task_ids:
        skip_downstream(db, key, outcome.skip_task_ids, actor=actor, now=now)
    for callback_error in outcome.callback_errors:
        record_callback_error(db, item, callback_error, actor=actor, now=now)
    if state == TaskInstanceState.SUCCESS and outcome.asset_events:  # no cost for a task without outlets
        _record_outlet_events(db, item, outcome, actor=actor, now=now)
    return state


def _record_outlet_events(db: Executable, item: WorkItem, outcome: TryOutcome, *, actor: str, now: datetime) -> None:
    """The asset events of a successful try, and the runs they cause, in the transaction of its success.
    An outlet no DAG declares any more (the file changed since) is logged and audited, not an error: the
    task did succeed."""
    from dagrunner.errors import UnknownAssetError
    from dagrunner.execution.asset_events import record_asset_event

    key = item.key
    source = {"kind": "task", "dag_id": key.dag_id, "run_id": key.run_id, "task_id": key.task_id,
              "map_index": key.map_index, "try_number": item.try_number}  # fmt: skip
    session = db if isinstance(db, Session) else Session(bind=db)
    for event in outcome.asset_events:
        try:
            record_asset_event(session, event.asset, extra=event.extra, source=source, actor=actor, when=now,
                               alias=event.alias)  # fmt: skip
        except UnknownAssetError as exc:
            log.warning("%s: asset event not recorded: %s", key.label(), exc)
            record_event(session, "asset.event_refused", actor=actor, when=now, dag_id=key.dag_id,
                         run_id=key.run_id, task_id=key.task_id, map_index=key.map_index, reason=str(exc),
                         detail={"asset": event.asset})  # fmt: skip
    session.flush()


def _fenced_out_finish(
    db: Executable, item: WorkItem, ended: TryState, closing: TryClose, *, actor: str, now: datetime
) -> TaskInstanceState:
    current = _current(db, item.key)
    refusal = _fence(current, item.key, item.try_number, (TaskInstanceState.RUNNING,)) or "raced"
    log.warning("not recording the outcome of try %s of %s: %s", item.try_number, item.key.label(), refusal)
    if current is None:
        return TaskInstanceState.REMOVED
    close_try_alone(db, current.id, _ref(item, TaskInstanceState(current.state)), ended, closing, actor=actor, when=now,
                    reason=f"try {item.try_number} ended ({ended}) after its instance moved on: {refusal}")  # fmt: skip
    return TaskInstanceState(current.state)


def _reschedule(
    db: Executable, item: WorkItem, outcome: TryOutcome, now: datetime
) -> tuple[TaskInstanceState, dict[str, Any], dict[str, Any] | None, str]:
    """(state, columns, audit detail, error) of a sensor's "not yet": a wait or a timeout (module docstring)."""
    assert outcome.reschedule is not None, "an up_for_reschedule outcome carries its sensor's RescheduleAsk"
    row = db.execute(_TI_WAITING, _key_params(item.key)).first()
    if row is None:  # the instance is gone: the fenced transition finds nothing to change either
        return TaskInstanceState.UP_FOR_RESCHEDULE, {}, None, ""
    max_tries, started, waiting_since, count = row
    since = waiting_since or started or now
    verdict = judge(outcome.reschedule, task_id=item.key.task_id, waiting_since=since, now=now)
    if verdict.state != TaskInstanceState.UP_FOR_RESCHEDULE:
        detail = {"sensor_timeout_s": outcome.reschedule.timeout, "waiting_since": since.isoformat()}
        return verdict.state, {"waiting_since": since}, detail, f"SensorTimeout: {verdict.error}"
    assert verdict.next_poke_at is not None
    values = {"next_try_at": verdict.next_poke_at, "max_tries": max_tries + 1, "reschedule_count": count + 1,
              "waiting_since": since}  # fmt: skip
    detail = {"next_try_at": verdict.next_poke_at.isoformat(), "reschedule_count": count + 1,
              "waiting_since": since.isoformat()}  # fmt: skip
    return verdict.state, values, detail, ""


def final_state(
    outcome_state: str, fail_fast: bool, try_number: int, max_tries: int, policy: RetryPolicy
) -> TaskInstanceState:
    """The state a try's outcome leaves its instance in (the retry rule in the module docstring)."""
    if outcome_state == "success":
        return TaskInstanceState.SUCCESS
    if outcome_state == "skipped":
        return TaskInstanceState.SKIPPED
    if outcome_state == "up_for_reschedule":  # a sensor's "not yet" (`tasks test`; finish_try judges timeouts)
        return TaskInstanceState.UP_FOR_RESCHEDULE
    if outcome_state == "deferred":  # a human-in-the-loop task waits (`tasks test` shows it)
        return TaskInstanceState.DEFERRED
    if not fail_fast and retry_allowed(try_number, max_tries, policy):
        return TaskInstanceState.UP_FOR_RETRY
    return TaskInstanceState.FAILED


def retry_allowed(try_number: int, max_tries: int, policy: RetryPolicy) -> bool:
    return policy.retries > 0 and try_number <= max_tries


def _retry(
    policy: RetryPolicy, key: TaskKey, try_number: int, logical_date: datetime, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns and audit detail of `up_for_retry`: when the next try may start, and why then."""
    delay = policy.delay_s(dag_id=key.dag_id, task_id=key.task_id, logical_date=logical_date, try_number=try_number)
    when = next_try_at(now, delay)
    return {"next_try_at": when}, {"retry_delay_s": delay, "next_try_at": when.isoformat()}


def skip_downstream(db: Executable, key: TaskKey, task_ids: Collection[str], *, actor: str, now: datetime) -> int:
    """Skip the not-yet-started instances (every map index) of `task_ids` in the run of `key`."""
    table = _TI_T
    query = (
        select(*(table.c[name] for name in TIRow.COLUMNS))
        .where(
            table.c.dag_id == key.dag_id,
            table.c.run_id == key.run_id,
            table.c.task_id.in_(sorted(task_ids)),
            table.c.state.in_(_SKIPPABLE),
        )
        .with_for_update()
    )
    targets = [TIRow(*values) for values in db.execute(query)]
    if not targets:
        return 0
    return len(
        transition(db, TASK, targets, Change(TaskInstanceState.SKIPPED, now, actor, f"skipped by branch {key.task_id}"))
    )


def record_callback_error(db: Executable, item: WorkItem, error: str, *, actor: str, now: datetime) -> None:
    """Audit a callback that raised; the task's state is never changed by it."""
    key = item.key
    record_event(
        db,
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


def fail_lost_try(
    db: Executable,
    key: TaskKey,
    try_number: int,
    *,
    reason: str,
    policy: RetryPolicy,
    now: datetime,
    actor: str,
    interrupted: bool = False,
) -> TaskInstanceState | None:
    """A try whose process died without recording its outcome: up_for_retry or failed, with `reason`.
    `interrupted`: its executor's shutdown killed it (see `TryClose`). A try still `queued` never started
    (its start was never recorded): it goes back to `scheduled` and uses no try (`return_unstarted_try`).

    Fenced on `queued`/`running` at `try_number`; returns the new state, or None when fenced out.
    """
    current = _current(db, key)
    refusal = _fence(current, key, try_number, (TaskInstanceState.QUEUED, TaskInstanceState.RUNNING))
    if refusal is not None:
        log.info("not recording try %s of %s as lost: %s", try_number, key.label(), refusal)
        return None
    assert current is not None
    if current.state == TaskInstanceState.QUEUED:
        ref = TaskRef(key.dag_id, key.run_id, key.task_id, key.map_index, TaskInstanceState.QUEUED, try_number)
        returned = return_unstarted_try(db, ref, current.max_tries, reason=reason, now=now, actor=actor)
        return TaskInstanceState.SCHEDULED if returned else None
    state = (
        TaskInstanceState.UP_FOR_RETRY
        if retry_allowed(try_number, current.max_tries, policy)
        else TaskInstanceState.FAILED
    )
    values: dict[str, Any] = {}
    detail: dict[str, Any] = {"lost": True}
    if state == TaskInstanceState.UP_FOR_RETRY:
        logical_date = db.execute(_LOGICAL_DATE, {"b_dag_id": key.dag_id, "b_run_id": key.run_id}).scalar_one()
        values, retry_detail = _retry(policy, key, try_number, logical_date, now)
        detail.update(retry_detail)
    ref = TaskRef(
        key.dag_id, key.run_id, key.task_id, key.map_index, TaskInstanceState(current.state), try_number, None
    )
    change = Change(state, now, actor, reason, detail=detail, values=values)
    closing = TryClose(None, reason, interrupted)
    moved = transition(db, TASK, [ref], change, fence={"try_number": try_number}, close_try=closing)
    return state if moved else None


def return_unstarted_try(
    db: Executable, ti: TaskRef | TaskInstance, max_tries: int, *, reason: str, now: datetime, actor: str
) -> bool:
    """queued -> scheduled for a try that never started (its worker died or gave up on a database outage
    before recording the start, or the scheduler that queued it died): it is queued again later without
    using a try. Queueing raised the try number, so `max_tries` goes up by one as a clear does (a try
    number names one attempt forever, so it never goes back). False when fenced out."""
    change = Change(
        TaskInstanceState.SCHEDULED, now, actor, f"{reason}; it never started, so it is queued again without "
        "using a try", detail={"unstarted": True}, values={"max_tries": max_tries + 1},
    )  # fmt: skip
    return bool(transition(db, TASK, [ti], change, fence={"try_number": ti.try_number}))


def return_queued_try(db: Executable, key: TaskKey, try_number: int, *, reason: str, now: datetime, actor: str) -> bool:
    """`return_unstarted_try` for a try sent to a broker that no worker started in time (the Celery
    executor's `queued_timeout_sec`). Fenced on `queued` at `try_number`: a try that started meanwhile is
    left alone. False when fenced out."""
    current = _current(db, key)
    if _fence(current, key, try_number, (TaskInstanceState.QUEUED,)) is not None:
        return False
    assert current is not None
    ref = TaskRef(key.dag_id, key.run_id, key.task_id, key.map_index, TaskInstanceState.QUEUED, try_number)
    return return_unstarted_try(db, ref, current.max_tries, reason=reason, now=now, actor=actor)


def heartbeat(db: Executable, key: TaskKey, try_number: int, now: datetime) -> bool:
    """Stamp `last_heartbeat` of a running try (not a state change, so not audited); False if not running."""
    result = db.execute(_HEARTBEAT, {**_key_params(key), "b_try": try_number, "b_now": now})
    return bool(getattr(result, "rowcount", 0))


def moved_on(db: Executable, key: TaskKey, try_number: int) -> str:
    """Why a running try's heartbeat found its instance no longer running it (marked by a person, found a
    zombie, removed, ...): the words its worker stops it with."""
    return _fence(_current(db, key, lock=False), key, try_number, (TaskInstanceState.RUNNING,)) or "raced"


# --- reads a try needs ---------------------------------------------------------------------------------


PreviousRun = tuple[datetime | None, datetime | None, datetime | None, datetime | None]


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
    """(data_interval_start, data_interval_end, start_date, end_date) of the DAG's latest successful run
    before `logical_date` (for prev_*_success in the context), or None."""
    row = session.execute(_PREVIOUS_SUCCESS, {"b_dag_id": dag_id, "b_logical_date": logical_date}).first()
    return None if row is None else (row[0], row[1], row[2], row[3])


# --- helpers -------------------------------------------------------------------------------------------


def _key_params(key: TaskKey) -> dict[str, Any]:
    return {"b_dag_id": key.dag_id, "b_run_id": key.run_id, "b_task_id": key.task_id, "b_map_index": key.map_index}


def _ref(item: WorkItem, state: TaskInstanceState) -> TaskRef:
    key = item.key
    return TaskRef(key.dag_id, key.run_id, key.task_id, key.map_index, state, item.try_number)


class Current(NamedTuple):
    """What the fences of a try read of its instance."""

    id: int
    state: TaskInstanceState
    try_number: int
    max_tries: int
    queued_by_job_id: int | None


def _current(db: Executable, key: TaskKey, *, lock: bool = True) -> Current | None:
    """The instance's fencing columns, read fresh (row-locked on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already locks), or None when it no longer exists."""
    row = db.execute(_TI_NOW_LOCKED if lock else _TI_NOW, _key_params(key)).first()
    return None if row is None else Current(*row)


def _fence(ti: Current | None, key: TaskKey, try_number: int, states: tuple[TaskInstanceState, ...]) -> str | None:
    if ti is None:
        return f"{key.label()} no longer exists (its run was deleted?)"
    if ti.try_number != try_number:
        return f"it is at try {ti.try_number} now, not try {try_number} (cleared or re-queued meanwhile)"
    if TaskInstanceState(ti.state) not in states:
        expected = " or ".join(str(s) for s in states)
        return f"it is {ti.state}, not {expected} (changed by someone else meanwhile)"
    return None


def _finish_reason(
    try_number: int, state: TaskInstanceState, error: str, detail: Mapping[str, Any] | None = None
) -> str:
    if state == TaskInstanceState.UP_FOR_RESCHEDULE and detail:
        return (f"try {try_number} ended: {state}: the sensor's poke said not yet; next poke at "
                f"{detail['next_try_at']} (reschedule {detail['reschedule_count']})")  # fmt: skip
    if state == TaskInstanceState.DEFERRED and detail:
        return f"try {try_number} ended: deferred: {detail['waiting_for']}"
    if state in (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED) and not error:
        return f"try {try_number} ended: {state}"
    return f"try {try_number} ended: {state}: {error}" if error else f"try {try_number} ended: {state}"


def _replace_xcoms(
    session: Executable, ti_id: int, key: TaskKey, try_number: int, xcoms: Mapping[str, Any], now: datetime
) -> None:
    """This instance's XComs become exactly `xcoms` (an earlier try's or run's are dropped)."""
    # Only finish_try inserts XComs, once per try, so a first try without XComs (the common no-op
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
