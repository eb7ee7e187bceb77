"""The single path for every state change, and the audit trail it leaves.

Each function here changes rows *and* appends their `audit_log` rows in the caller's session, then
flushes without committing: the caller's transaction commits both or neither, so the audit log can never
miss a change or record one that did not happen. `states.TASK_TRANSITIONS` / `RUN_TRANSITIONS` decide
what is allowed; the models refuse a state set on a stored row by any other route.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, cast

from sqlalchemy import Connection, Row, Table, Update, bindparam, insert, select, tuple_, update
from sqlalchemy.orm import Session

from dagrunner.clock import utcnow
from dagrunner.errors import IllegalTransitionError, NotFoundError
from dagrunner.persistence.models import AuditLog, Dag, DagRun, TaskInstance, state_gate
from dagrunner.settings import mask_url
from dagrunner.states import (
    FINISHED,
    RUN_FINISHED,
    TASK_TRANSITIONS,
    DagRunState,
    TaskInstanceState,
    run_transition_allowed,
    task_transition_allowed,
)

TI = TaskInstanceState
#: States in which a try has just ended: the end time is what the retry delay counts from.
_TRY_ENDED = FINISHED | {TI.UP_FOR_RETRY, TI.UP_FOR_RESCHEDULE}
_ACTOR_MAX = 1000  # audit_log.actor column length


# --- task instances ----------------------------------------------------------------------------------


def transition_task(
    session: Session,
    ti: TaskInstance,
    new: TaskInstanceState,
    *,
    actor: str,
    reason: str,
    detail: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> None:
    """Move `ti` to `new` if the state machine allows it, and audit the change in the same transaction.

    Raises IllegalTransitionError (nothing changed) when `states.TASK_TRANSITIONS` forbids it.
    """
    transition_tasks(session, [ti], new, actor=actor, reason=reason, detail=detail, when=when)


def transition_tasks(
    session: Session,
    tis: Sequence[TaskInstance],
    new: TaskInstanceState,
    *,
    actor: str,
    reason: str,
    detail: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> int:
    """`transition_task` for many instances at once (the scheduler's per-tick batch); returns the count.

    All transitions are checked before any is made, so an illegal one leaves every instance unchanged.
    The audit rows go in as one multi-row insert.
    """
    new = TI(new)
    when = _aware(when)
    if len({id(ti) for ti in tis}) != len(tis):
        raise ValueError("transition_tasks got the same task instance twice; pass each one once")
    session.flush()  # so that instances created in this session carry their column defaults
    for ti in tis:
        _check_task(ti, new)
    rows = []
    with state_gate():
        for ti in tis:
            rows.append(_audit_values("task.state", actor, when, reason, detail, ti=ti, old=ti.state, new=new))
            ti.state = new
            _stamp_task(ti, new, when)
    _insert_audit(session, rows)
    return len(rows)


def _check_task(ti: TaskInstance, new: TaskInstanceState) -> None:
    old = TI(ti.state)
    if not task_transition_allowed(old, new):
        allowed = ", ".join(sorted(TASK_TRANSITIONS[old]))
        raise IllegalTransitionError(
            f"task {ti.label()}: {old} -> {new} is not an allowed state change (from {old} it may go to: {allowed})"
        )


def _stamp_task(ti: TaskInstance, new: TaskInstanceState, when: datetime) -> None:
    """Keep the instance's timestamps in step with its state."""
    ti.updated_at = when
    if new == TI.NONE:  # cleared: it has not been queued or run in its new life
        ti.queued_at = ti.start_date = ti.end_date = ti.next_try_at = None
    elif new == TI.QUEUED:
        ti.queued_at = when
    elif new == TI.RUNNING:
        ti.start_date = when
        ti.end_date = None
    elif new in _TRY_ENDED:
        ti.end_date = when


# --- runs ----------------------------------------------------------------------------------------------


def transition_run(
    session: Session,
    run: DagRun,
    new: DagRunState,
    *,
    actor: str,
    reason: str,
    detail: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> None:
    """Move `run` to `new` if `states.RUN_TRANSITIONS` allows it, and audit it in the same transaction."""
    new = DagRunState(new)
    session.flush()
    old = DagRunState(run.state)
    if not run_transition_allowed(old, new):
        raise IllegalTransitionError(
            f"run {run.run_id} of DAG {run.dag_id}: {old} -> {new} is not an allowed state change"
        )
    when = _aware(when)
    row = _audit_values("run.state", actor, when, reason, detail, run=run, old=old, new=new)
    with state_gate():
        run.state = new
    run.updated_at = when
    if new == DagRunState.QUEUED:  # (re-)queued: a fresh start
        run.queued_at = when
        run.start_date = run.end_date = None
    elif new == DagRunState.RUNNING:
        run.start_date = when
        run.end_date = None
    elif new in RUN_FINISHED:
        run.end_date = when
    _insert_audit(session, [row])


# --- creation and other events ---------------------------------------------------------------------


def record_created(
    session: Session, obj: DagRun | TaskInstance, *, actor: str, reason: str, when: datetime | None = None
) -> None:
    """Audit a run or task instance created in its initial state (old state: none)."""
    record_created_many(session, [obj], actor=actor, reason=reason, when=when)


def record_created_many(
    session: Session,
    objs: Iterable[DagRun | TaskInstance],
    *,
    actor: str,
    reason: str,
    when: datetime | None = None,
) -> None:
    """`record_created` for a batch (a new run and all its task instances) in one insert.

    The objects are added to the session (if they are not yet) and inserted before their audit rows.
    """
    when = _aware(when)
    objs = list(objs)
    session.add_all(objs)
    session.flush()  # inserts them, filling in column defaults (state none, map_index -1)
    rows = []
    for obj in objs:
        if isinstance(obj, DagRun):
            rows.append(_audit_values("run.created", actor, when, reason, None, run=obj, new=obj.state))
        else:
            rows.append(_audit_values("task.created", actor, when, reason, None, ti=obj, new=obj.state))
    _insert_audit(session, rows)


def record_event(
    session: Session,
    event: str,
    *,
    actor: str,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    map_index: int | None = None,
    try_number: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> None:
    """Audit something that is not a state change: a backfill started, a callback failed, a clear asked."""
    row = {
        "ts": _aware(when),
        "actor": _clip(actor),
        "event": event,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "try_number": try_number,
        "reason": reason,
        "detail": detail,
    }
    _insert_audit(session, [row])


def set_paused(session: Session, dag_id: str, paused: bool, *, actor: str, when: datetime | None = None) -> bool:
    """Pause or unpause a DAG; returns whether anything changed (only a change is audited)."""
    # FOR UPDATE (PostgreSQL): two concurrent pause/unpause commands then audit one real change each.
    dag = session.get(Dag, dag_id, with_for_update=True, populate_existing=True)
    if dag is None:
        raise NotFoundError(f"no DAG {dag_id!r} in the metadata database; `dagrunner dags list` shows the known ones")
    if dag.is_paused == paused:
        return False
    old, new = ("unpaused", "paused") if paused else ("paused", "unpaused")
    dag.is_paused = paused
    row = {
        "ts": _aware(when),
        "actor": _clip(actor),
        "event": "dag.paused" if paused else "dag.unpaused",
        "dag_id": dag_id,
        "old_state": old,
        "new_state": new,
    }
    _insert_audit(session, [row])
    return True


# --- actors --------------------------------------------------------------------------------------------


def actor_for_cli(argv: Sequence[str]) -> str:
    """`user@host: dagrunner dags pause x`, the actor of a change made from the command line.

    `argv` is `sys.argv`: the program path is shortened to its name, and database URLs have their
    password masked before they reach the audit log.
    """
    words = [os.path.basename(argv[0]) if argv else "dagrunner"]
    words += [mask_url(word) if "://" in word else word for word in argv[1:]]
    return _clip(f"{_user()}@{socket.gethostname()}: {shlex.join(words)}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (e.g. a container running as an unnamed uid)
        uid = os.getuid() if hasattr(os, "getuid") else None
        return f"uid{uid}" if uid is not None else "unknown"


# --- helpers -------------------------------------------------------------------------------------------


def _audit_values(
    event: str,
    actor: str,
    when: datetime,
    reason: str | None,
    detail: dict[str, Any] | None,
    *,
    ti: TaskInstance | None = None,
    run: DagRun | None = None,
    old: str | None = None,
    new: str | None = None,
) -> dict[str, Any]:
    source: TaskInstance | DagRun | None = ti or run
    assert source is not None
    return {
        "ts": when,
        "actor": _clip(actor),
        "event": event,
        "dag_id": source.dag_id,
        "run_id": source.run_id,
        "task_id": ti.task_id if ti is not None else None,
        "map_index": ti.map_index if ti is not None else None,
        "try_number": ti.try_number if ti is not None else None,
        "old_state": str(old) if old is not None else None,
        "new_state": str(new) if new is not None else None,
        "reason": reason,
        "detail": detail,
    }


def _insert_audit(session: Session, rows: list[dict[str, Any]]) -> None:
    """Flush the pending row changes, then add all audit rows in one (executemany) insert."""
    session.flush()
    if rows:
        session.execute(insert(AuditLog), rows)


def _aware(when: datetime | None) -> datetime:
    if when is None:
        return utcnow()
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()} given as `when`; pass an aware datetime")
    return when


def _clip(actor: str) -> str:
    return actor if len(actor) <= _ACTOR_MAX else actor[: _ACTOR_MAX - 1] + "…"


# --- the scheduler's fast path: task instances as plain rows ----------------------------------------


@dataclass(slots=True)
class TIRow:
    """A task instance as the scheduler's hot path holds it: a plain row, no ORM identity or events.

    Loaded with one Core query per tick and changed only through `transition_task_rows`, which keeps the
    same rules as `transition_tasks` (the TRANSITIONS check, the audit row in the same transaction).
    """

    id: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: TaskInstanceState
    try_number: int
    max_tries: int
    next_try_at: datetime | None
    pool: str
    pool_slots: int
    priority_weight: int
    queue: str
    queued_by_job_id: int | None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "id", "dag_id", "run_id", "task_id", "map_index", "state", "try_number", "max_tries", "next_try_at",
        "pool", "pool_slots", "priority_weight", "queue", "queued_by_job_id",
    )  # fmt: skip

    def label(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{mapped} in run {self.run_id}"


def transition_task_rows(
    session: Session,
    rows: Sequence[TIRow],
    new: TaskInstanceState,
    *,
    actor: str,
    reason: str,
    when: datetime | None = None,
    queue_try: int | None = None,
) -> list[TIRow]:
    """`transition_tasks` for plain rows, in one fenced UPDATE per old state plus one audit insert.

    Each UPDATE only changes rows still in the state the caller saw (`WHERE id IN (...) AND state = old`),
    so a row that another process changed meanwhile is left alone and not audited; the rows that did
    change are returned (and updated in place). `queue_try` (a job id) marks the step to `queued`: the
    try number goes up by one and the row remembers the job that queued it.
    """
    new = TI(new)
    when = _aware(when)
    for row in rows:
        if not task_transition_allowed(row.state, new):
            allowed = ", ".join(sorted(TASK_TRANSITIONS[row.state]))
            raise IllegalTransitionError(
                f"task {row.label()}: {row.state} -> {new} is not an allowed state change (from {row.state} "
                f"it may go to: {allowed})"
            )
    values: dict[str, Any] = {"state": new, "updated_at": when, **_stamp_values(new, when)}
    if queue_try is not None:
        values.update(try_number=TaskInstance.try_number + 1, queued_by_job_id=queue_try, next_try_at=None)
    by_old: dict[TaskInstanceState, list[TIRow]] = {}
    for row in rows:
        by_old.setdefault(row.state, []).append(row)
    changed: list[TIRow] = []
    audit: list[dict[str, Any]] = []
    table = TaskInstance.__table__
    for old, group in by_old.items():
        ids = [row.id for row in group]
        stmt = (
            update(table)
            .where(table.c.id.in_(ids), table.c.state == old.value)
            .values(**{k: (v.value if isinstance(v, TI) else v) for k, v in values.items()})
            .returning(table.c.id)
        )
        done = set(session.execute(stmt).scalars())
        for row in group:
            if row.id not in done:
                continue
            if queue_try is not None:
                row.try_number += 1
                row.queued_by_job_id = queue_try
                row.next_try_at = None
            audit.append({
                "ts": when, "actor": _clip(actor), "event": "task.state", "dag_id": row.dag_id,
                "run_id": row.run_id, "task_id": row.task_id, "map_index": row.map_index,
                "try_number": row.try_number, "old_state": old.value, "new_state": new.value, "reason": reason,
                "detail": None,
            })  # fmt: skip
            row.state = new
            changed.append(row)
    if audit:
        session.execute(insert(AuditLog), audit)
    return changed


def _stamp_values(new: TaskInstanceState, when: datetime) -> dict[str, Any]:
    """The timestamp columns that move with a state change (as `_stamp_task` does for ORM objects)."""
    if new == TI.NONE:
        return {"queued_at": None, "start_date": None, "end_date": None, "next_try_at": None}
    if new == TI.QUEUED:
        return {"queued_at": when}
    if new == TI.RUNNING:
        return {"start_date": when, "end_date": None}
    if new in _TRY_ENDED:
        return {"end_date": when}
    return {}


def load_ti_rows(session: Session, runs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[TIRow]]:
    """Every task instance of the given (dag_id, run_id) runs as plain rows (one query per 500 runs)."""
    table = TaskInstance.__table__
    cols = [table.c[name] for name in TIRow.COLUMNS]
    out: dict[tuple[str, str], list[TIRow]] = {}
    for start in range(0, len(runs), 500):
        chunk = list(runs[start : start + 500])
        query = select(*cols).where(tuple_(table.c.dag_id, table.c.run_id).in_(chunk))
        for values in session.execute(query):
            row = TIRow(*values)  # the state column's type gives a TaskInstanceState
            out.setdefault((row.dag_id, row.run_id), []).append(row)
    return out


# --- a try's fast path: one task instance, one fenced UPDATE -----------------------------------------


def transition_task_fenced(
    conn: Connection,
    key: tuple[str, str, str, int],
    old: TaskInstanceState,
    new: TaskInstanceState,
    *,
    try_number: int,
    actor: str,
    reason: str,
    detail: dict[str, Any] | None = None,
    when: datetime | None = None,
    fence: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    returning: Sequence[str] = (),
) -> Row[Any] | None:
    """`transition_task` for the instance `key` (dag_id, run_id, task_id, map_index), as one statement.

    The hot path of a try (a worker recording `running` and the outcome): one UPDATE that applies only
    while the instance is still `old` at `try_number` (and every `fence` column still holds its value),
    sets `new`, the timestamps `transition_task` would set, and `values`; it returns `id` and the
    `returning` columns. Then the audit row, on the caller's connection and in its transaction. Returns
    None when nothing matched: nothing is written and nothing audited. `old -> new` is checked against
    `states.TASK_TRANSITIONS` first (IllegalTransitionError). ORM objects are not refreshed, so use it
    in a transaction that holds none of this instance.
    """
    old, new = TI(old), TI(new)
    dag_id, run_id, task_id, map_index = key
    if not task_transition_allowed(old, new):
        allowed = ", ".join(sorted(TASK_TRANSITIONS[old]))
        raise IllegalTransitionError(
            f"task {dag_id}.{task_id} in run {run_id}: {old} -> {new} is not an allowed state change (from "
            f"{old} it may go to: {allowed})"
        )
    fence, values = dict(fence or {}), dict(values or {})
    if "state" in values or "state" in fence or any(value is None for value in fence.values()):
        raise ValueError("transition_task_fenced: `values` must not set the state; `fence` values must not be None")
    when = _aware(when)
    columns = {"updated_at": when, **_stamp_values(new, when), **values}
    statement = _fenced_update(tuple(columns), tuple(fence), tuple(dict.fromkeys(("id", *returning))))
    params = {"k_dag_id": dag_id, "k_run_id": run_id, "k_task_id": task_id, "k_map_index": map_index}
    params.update(k_old=old, k_try=try_number, v_state=new)
    params.update({f"f_{name}": value for name, value in fence.items()})
    params.update({f"v_{name}": value for name, value in columns.items()})
    row = conn.execute(statement, params).first()
    if row is None:
        return None
    conn.execute(_INSERT_AUDIT, [{
        "ts": when, "actor": _clip(actor), "event": "task.state", "dag_id": dag_id, "run_id": run_id,
        "task_id": task_id, "map_index": map_index, "try_number": try_number, "old_state": old.value,
        "new_state": new.value, "reason": reason, "detail": detail,
    }])  # fmt: skip
    return row


_INSERT_AUDIT = insert(cast(Table, AuditLog.__table__))


@cache
def _fenced_update(columns: tuple[str, ...], fence: tuple[str, ...], returning: tuple[str, ...]) -> Update:
    """The UPDATE of `transition_task_fenced` for one shape of arguments, built once: building a
    statement costs more than running it on SQLite."""
    table = cast(Table, TaskInstance.__table__)
    where = [
        table.c.dag_id == bindparam("k_dag_id"),
        table.c.run_id == bindparam("k_run_id"),
        table.c.task_id == bindparam("k_task_id"),
        table.c.map_index == bindparam("k_map_index"),
        table.c.state == bindparam("k_old"),
        table.c.try_number == bindparam("k_try"),
        *(table.c[name] == bindparam(f"f_{name}") for name in fence),
    ]
    assignments: dict[str, Any] = {"state": bindparam("v_state"), **{name: bindparam(f"v_{name}") for name in columns}}
    return update(table).where(*where).values(assignments).returning(*(table.c[name] for name in returning))
