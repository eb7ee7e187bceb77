"""The single path for every state change, and the audit trail it leaves.

A state change is described once, as a `Change` (to what, when, by whom, why), and applied by one function,
`transition(db, MACHINE, rows, change)`, to rows of one `StateMachine`: task instances, runs, scheduler jobs
or backfills (`TASK`, `RUN`, `JOB`, `BACKFILL`). It works in two halves:

- `plan()`, pure: checks each row's `old -> new` against the machine's table in `states`, and returns the
  column values the change sets (the state, `updated_at` and the timestamps that move with the state) and
  one audit row per changed row;
- `transition()`, its thin executor: one fenced `UPDATE ... WHERE <row> AND state = <old> RETURNING` per old
  state (per row when rows are named by their natural key, as a worker names its try), then one multi-row
  insert of the audit rows of the rows that did change. A row another process moved meanwhile is left
  alone and not audited, so the hot paths (the scheduler's tick, a worker's try) and the rare ones (clear,
  recovery, backfill) share one rule and one code path.

Everything runs on the caller's Session or Connection without committing: the caller's transaction commits
the change and its audit rows together, or neither. Nothing else in dagrunner writes a state column (the
models refuse an assignment, and `tests/persistence/test_state_writes.py` scans the package for any other
write). Time is always given (`when`): the scheduler's clock, never a wall-clock default, so a fake-clock
test's audit log reads the fake time.

A try's own row (`task_try`) is closed in the same call that records how its task instance ended
(`close_try=`): one event, one audit row naming the try number. A try closed without such a change (its
instance had moved on when the outcome arrived) gets a `try.closed` audit row of its own.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar, NamedTuple, Protocol, cast

from sqlalchemy import ColumnElement, Connection, Row, Table, Update, and_, bindparam, insert, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from dagrunner.errors import IllegalTransitionError, NotFoundError
from dagrunner.labels import task_label
from dagrunner.persistence.models import AuditLog, Backfill, Dag, DagRun, Pool, SchedulerJob, TaskInstance, TaskTry
from dagrunner.persistence.outbox import INSERT_OUTBOX, outbox_rows
from dagrunner.settings import mask_url
from dagrunner.states import (
    BACKFILL_TRANSITIONS,
    BREAKER_TRANSITIONS,
    FINISHED,
    JOB_TRANSITIONS,
    RUN_FINISHED,
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    TRY_TRANSITIONS,
    BackfillState,
    BreakerState,
    DagRunState,
    JobState,
    TaskInstanceState,
    TryState,
)

#: A Session or a bare Connection: every function here issues Core statements only, so it takes either.
Db = Session | Connection

_ACTOR_MAX = 1000  # audit_log.actor column length
_AUDIT_T = cast(Table, AuditLog.__table__)
_INSERT_AUDIT = insert(_AUDIT_T)


def _insert_audit(db: Db, rows: list[dict[str, Any]]) -> None:
    """Insert audit rows, and the outbox rows of the published events among them (`persistence.outbox`):
    every audit row goes through here, so an event is published exactly when it is audited, in the same
    transaction, at the cost of one more multi-row INSERT when any is published."""
    db.execute(_INSERT_AUDIT, rows)
    published = outbox_rows(rows)
    if published:
        db.execute(INSERT_OUTBOX, published)


# --- what a change is ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One state change asked of one or more rows: the new state, when, by whom, and why.

    `values` are other columns the change sets on every changed row (a try's host and pid, a retry's
    `next_try_at`); they may not name the state or a timestamp the state change stamps.
    """

    new: StrEnum
    when: datetime
    actor: str
    reason: str | None = None
    detail: dict[str, Any] | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_aware(self.when)
        if "state" in self.values:
            raise ValueError("a Change's `values` must not set the state; it is the change's `new`")


def _check_aware(when: datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()} given as `when`; pass an aware datetime")


class Subject(Protocol):
    """A row to change, as the caller holds it: an ORM object, a plain row (`TIRow`) or a `TaskRef`.

    `state` is the state the caller saw: the change applies only while the row is still in it.
    """

    @property
    def state(self) -> Any: ...


@dataclass(frozen=True)
class StateMachine:
    """One table's state column: its states, its transition table and how a change of it is recorded."""

    noun: str
    table: Table
    state_type: type[StrEnum]
    transitions: Mapping[Any, frozenset[Any]]
    #: The audit event of a change (`task.state`, ...).
    event: str
    #: new state, when -> the timestamp columns that move with it.
    stamp: Callable[[Any, datetime], dict[str, Any]]
    #: subject -> the audit row's columns that name it (dag_id, run_id, ...) and its detail.
    names: Callable[[Any], dict[str, Any]]
    label: Callable[[Any], str]
    #: The table's state column (`state`, but a pool's breaker is `breaker_state`).
    column: str = "state"

    def check(self, subject: Subject, new: StrEnum) -> tuple[Any, Any]:
        """(old, new) as this machine's states; IllegalTransitionError when its table forbids the move."""
        old, new = self.state_type(subject.state), self.state_type(new)
        if new not in self.transitions[old]:
            allowed = ", ".join(sorted(self.transitions[old])) or "nothing (it is final)"
            raise IllegalTransitionError(
                f"{self.noun} {self.label(subject)}: {old} -> {new} is not an allowed state change "
                f"(from {old} it may go to: {allowed})"
            )
        return old, new


def _task_stamps(new: TaskInstanceState, when: datetime) -> dict[str, Any]:
    if new == TaskInstanceState.NONE:  # cleared: it has not been queued, run or waited in its new life
        return {"queued_at": None, "start_date": None, "end_date": None, "next_try_at": None,
                "reschedule_count": 0, "waiting_since": None}  # fmt: skip
    if new == TaskInstanceState.QUEUED:
        return {"queued_at": when}
    if new == TaskInstanceState.RUNNING:
        return {"start_date": when, "end_date": None}
    if new in _TRY_ENDED:  # the end time is what a retry delay counts from
        return {"end_date": when}
    return {}


def _run_stamps(new: DagRunState, when: datetime) -> dict[str, Any]:
    if new == DagRunState.QUEUED:  # (re-)queued: a fresh start
        return {"queued_at": when, "start_date": None, "end_date": None}
    if new == DagRunState.RUNNING:
        return {"start_date": when, "end_date": None}
    return {"end_date": when} if new in RUN_FINISHED else {}


_TRY_ENDED = FINISHED | {TaskInstanceState.UP_FOR_RETRY, TaskInstanceState.UP_FOR_RESCHEDULE}
_NO_NAMES = {"dag_id": None, "run_id": None, "task_id": None, "map_index": None, "try_number": None}


def _task_names(ti: Any) -> dict[str, Any]:
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index,
            "try_number": ti.try_number}  # fmt: skip


TASK = StateMachine(
    "task", cast(Table, TaskInstance.__table__), TaskInstanceState, TASK_TRANSITIONS, "task.state",
    _task_stamps, _task_names, lambda ti: task_label(ti.dag_id, ti.task_id, ti.map_index, ti.run_id),
)  # fmt: skip
RUN = StateMachine(
    "run", cast(Table, DagRun.__table__), DagRunState, RUN_TRANSITIONS, "run.state", _run_stamps,
    lambda run: {**_NO_NAMES, "dag_id": run.dag_id, "run_id": run.run_id},
    lambda run: f"{run.run_id} of DAG {run.dag_id}",
)  # fmt: skip
JOB = StateMachine(
    "job", cast(Table, SchedulerJob.__table__), JobState, JOB_TRANSITIONS, "job.state",
    lambda new, when: {"ended_at": when} if new != JobState.RUNNING else {},
    lambda job: {**_NO_NAMES, "detail": {"job_id": job.id}}, lambda job: f"{job.id}",
)  # fmt: skip
BACKFILL = StateMachine(
    "backfill", cast(Table, Backfill.__table__), BackfillState, BACKFILL_TRANSITIONS, "backfill.state",
    lambda new, when: {"completed_at": when} if new != BackfillState.RUNNING else {},
    lambda b: {**_NO_NAMES, "dag_id": b.dag_id, "detail": {"backfill_id": b.id}}, lambda b: f"{b.id} of DAG {b.dag_id}",
)  # fmt: skip


def _breaker_stamps(new: BreakerState, when: datetime) -> dict[str, Any]:
    if new == BreakerState.OPEN:  # the cool-down counts from here
        return {"opened_at": when}
    if new == BreakerState.CLOSED:  # a fresh count of failures
        return {"opened_at": None, "consecutive_failures": 0}
    return {}


#: A pool's circuit breaker (`persistence.breakers`): subjects are `breakers.BreakerRow`s.
BREAKER = StateMachine(
    "circuit breaker of pool", cast(Table, Pool.__table__), BreakerState, BREAKER_TRANSITIONS, "pool.breaker",
    _breaker_stamps, lambda pool: {**_NO_NAMES, "detail": {"pool": pool.name}}, lambda pool: repr(pool.name),
    column="breaker_state",
)  # fmt: skip


# --- the pure half ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What a change writes: the same column values on every changed row, and each row's audit row."""

    values: dict[str, Any]
    audit: list[dict[str, Any]]
    olds: list[Any]


def plan(machine: StateMachine, subjects: Sequence[Subject], change: Change, *, bump_try: bool = False) -> Plan:
    """Check every `old -> new` (all before any is made) and build the columns and audit rows of the change.

    `bump_try` is the step to `queued` that starts a new try: the audit rows name the try it starts.
    Raises IllegalTransitionError, naming the first forbidden move, before anything is written.
    """
    new = machine.state_type(change.new)
    clash = change.values.keys() & machine.stamp(new, change.when).keys()
    if clash:
        raise ValueError(f"a Change's `values` may not set {sorted(clash)}: the state change stamps them")
    olds = [machine.check(subject, new)[0] for subject in subjects]
    values: dict[str, Any] = {machine.column: new, **machine.stamp(new, change.when), **change.values}
    if "updated_at" in machine.table.c:
        values["updated_at"] = change.when
    audit = []
    for subject, old in zip(subjects, olds, strict=True):
        names = machine.names(subject)
        if bump_try:
            names["try_number"] += 1
        detail = names.pop("detail", None)
        detail = _merged(detail, change.detail)
        audit.append(_audit_row(machine.event, change.when, change.actor, change.reason, names, old=old, new=new,
                                detail=detail))  # fmt: skip
    return Plan(values, audit, olds)


def _audit_row(
    event: str, when: datetime, actor: str, reason: str | None, names: Mapping[str, Any], *, old: Any = None,
    new: Any = None, detail: Any = None,
) -> dict[str, Any]:  # fmt: skip
    _check_aware(when)
    return {
        "ts": when, "actor": _clip(actor), "event": event, **names,
        "old_state": None if old is None else str(old), "new_state": None if new is None else str(new),
        "reason": reason, "detail": detail,
    }  # fmt: skip


def _merged(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    return {**a, **b} if a and b else (a or b)


# --- its executor ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task instance named by its natural key, with the state and try the caller expects it to be at.

    How a worker names its try: it never learns the instance's surrogate id before its first write.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: TaskInstanceState
    try_number: int
    id: None = None


@dataclass(frozen=True, slots=True)
class TryClose:
    """The `task_try` row to close with a task instance's change: how the process running it ended.

    `interrupted`: its executor's shutdown killed it (it did not fail on its own).
    """

    exit_code: int | None = None
    error: str | None = None
    interrupted: bool = False


class Moved(NamedTuple):
    """A subject the change did move, with the columns asked for with `returning=` (always `id`)."""

    subject: Any
    row: Row[Any]


def transition(
    db: Db,
    machine: StateMachine,
    subjects: Sequence[Subject],
    change: Change,
    *,
    fence: Mapping[str, Any] | None = None,
    queue_job: int | None = None,
    close_try: TryClose | None = None,
    returning: Sequence[str] = (),
) -> list[Moved]:
    """Apply `change` to the subjects still in the state the caller saw; audit each row changed.

    `fence`: more columns each row must still hold (a try's `try_number`, the job that queued it).
    `queue_job`: the step to `queued` that starts a new try for this scheduler job (try_number + 1).
    `close_try`: also close the open `task_try` row of each changed task instance (TASK only).
    Subjects are found by `id`, or by natural key when their `id` is None (`TaskRef`). Returns the moved
    subjects; plain rows and ORM objects among them are updated in place to the values written.
    """
    if len({id(s) for s in subjects}) != len(subjects):
        raise ValueError("transition() got the same row twice; pass each one once")
    if fence is not None and any(value is None for value in fence.values()):
        raise ValueError("transition(): a `fence` value must not be None (it would match no row)")
    planned = plan(machine, subjects, change, bump_try=queue_job is not None)
    if isinstance(db, Session):
        db.flush()  # pending ORM changes to these rows (e.g. a clear's max_tries) go first
    values = dict(planned.values)
    if queue_job is not None:
        values.update(queued_by_job_id=queue_job, next_try_at=None)
    fence = dict(fence or {})
    moved: list[Moved] = []
    audit: list[dict[str, Any]] = []
    for (old, by_key), indices in _groups(subjects, planned.olds).items():
        group = [subjects[i] for i in indices]
        done = _update(db, machine, by_key, group, old, values, fence, returning, bump_try=queue_job is not None)
        for position, i in enumerate(indices):
            row = done.get(position if by_key else subjects[i].id)  # type: ignore[attr-defined]
            if row is not None:
                audit.append(planned.audit[i])
                moved.append(Moved(subjects[i], row))
    if audit:
        _insert_audit(db, audit)
    for subject, row in moved:
        _reflect(subject, planned.values, queue_job)
        if close_try is not None:
            _close(db, row.id, subject.try_number, TryState(machine.state_type(change.new)), change.when, close_try)
    return moved


def _groups(subjects: Sequence[Subject], olds: list[Any]) -> dict[tuple[Any, bool], list[int]]:
    """Subject indices by (old state, named by natural key?): one statement serves a group."""
    groups: dict[tuple[Any, bool], list[int]] = {}
    for index, (subject, old) in enumerate(zip(subjects, olds, strict=True)):
        groups.setdefault((old, getattr(subject, "id", None) is None), []).append(index)
    return groups


def _update(
    db: Db, machine: StateMachine, by_key: bool, group: list[Any], old: Any, values: Mapping[str, Any],
    fence: Mapping[str, Any], returning: Sequence[str], *, bump_try: bool,
) -> dict[Any, Row[Any]]:  # fmt: skip
    """The fenced UPDATE of one group. By id: one statement, the result keyed by id. By natural key: one
    statement per subject, the result keyed by the subject's position in `group`."""
    params = {f"v_{name}": value for name, value in values.items()}
    params.update({f"f_{name}": value for name, value in fence.items()}, k_old=old)
    cols = tuple(dict.fromkeys(("id", *returning)))
    match = _KEY if by_key else ("id",)
    statement = _statement(machine.table.name, tuple(values), tuple(fence), cols, match, bump_try)
    if not by_key:
        return {row.id: row for row in db.execute(statement, {**params, "k_ids": [s.id for s in group]})}
    done = {}
    for position, subject in enumerate(group):
        row = db.execute(statement, {**params, **{f"k_{name}": getattr(subject, name) for name in _KEY}}).first()
        if row is not None:
            done[position] = row
    return done


_KEY = ("dag_id", "run_id", "task_id", "map_index")
_MACHINES = (TASK, RUN, JOB, BACKFILL, BREAKER)
_TABLES: dict[str, Table] = {machine.table.name: machine.table for machine in _MACHINES}
_STATE_COLUMNS: dict[str, str] = {machine.table.name: machine.column for machine in _MACHINES}


@cache
def _statement(
    table_name: str, columns: tuple[str, ...], fence: tuple[str, ...], returning: tuple[str, ...],
    match: tuple[str, ...], bump_try: bool,
) -> Update:  # fmt: skip
    """The UPDATE for one shape of change, built once: building a statement costs more than running it on
    SQLite (the scheduler and every try use a handful of shapes)."""
    table = _TABLES[table_name]
    where: list[ColumnElement[bool]]
    if match == ("id",):
        where = [table.c.id.in_(bindparam("k_ids", expanding=True))]
    else:
        where = [table.c[name] == bindparam(f"k_{name}") for name in match]
    state = table.c[_STATE_COLUMNS[table_name]]
    where += [state == bindparam("k_old"), *(table.c[name] == bindparam(f"f_{name}") for name in fence)]
    assignments: dict[str, Any] = {name: bindparam(f"v_{name}") for name in columns}
    if bump_try:
        assignments["try_number"] = table.c.try_number + 1
    return update(table).where(and_(*where)).values(assignments).returning(*(table.c[name] for name in returning))


def _reflect(subject: Any, values: Mapping[str, Any], queue_job: int | None) -> None:
    """Bring the caller's copy of a moved row up to date: ORM objects (without marking them dirty) and
    plain rows such as `TIRow`."""
    orm = hasattr(subject, "_sa_instance_state")
    if not orm and not isinstance(subject, TIRow):
        return  # a TaskRef or a Row: nothing to keep up to date
    updates = dict(values)
    if queue_job is not None:
        updates.update(try_number=subject.try_number + 1, queued_by_job_id=queue_job, next_try_at=None)
    for name, value in updates.items():
        if orm:
            set_committed_value(subject, name, value)
        elif hasattr(subject, name) or name in getattr(subject, "__slots__", ()):
            setattr(subject, name, value)


# --- a try's own row ------------------------------------------------------------------------------------

_TRY_T = cast(Table, TaskTry.__table__)
_CLOSE_TRY = (
    update(_TRY_T)
    .where(
        _TRY_T.c.ti_id == bindparam("b_ti_id"),
        _TRY_T.c.try_number == bindparam("b_try"),
        _TRY_T.c.state == TryState.RUNNING.value,
    )
    .values(
        end_date=bindparam("b_end"),
        state=bindparam("b_state"),
        exit_code=bindparam("b_exit"),
        error=bindparam("b_error"),
        interrupted=bindparam("b_interrupted"),
    )
)
_OPEN_TRY = insert(_TRY_T)


def open_try(db: Db, ti_id: int, ref: TaskRef, *, when: datetime, queued_at: datetime | None, hostname: str,
             pid: int, log_path: str) -> None:  # fmt: skip
    """Insert the `running` row of a try that has just started (its instance's change to `running`,
    made by `transition()` in the same transaction, is its audit row)."""
    db.execute(_OPEN_TRY, {
        "ti_id": ti_id, "dag_id": ref.dag_id, "run_id": ref.run_id, "task_id": ref.task_id,
        "map_index": ref.map_index, "try_number": ref.try_number, "state": TryState.RUNNING, "queued_at": queued_at,
        "start_date": when, "hostname": hostname, "pid": pid, "log_path": log_path,
    })  # fmt: skip


def _close(db: Db, ti_id: int, try_number: int, state: TryState, when: datetime, close: TryClose) -> bool:
    """Close the try's row once (`running -> state`); False when it was closed already."""
    if state not in TRY_TRANSITIONS[TryState.RUNNING]:
        raise IllegalTransitionError(f"try {try_number}: running -> {state} is not an allowed state change")
    params = {"b_ti_id": ti_id, "b_try": try_number, "b_end": when, "b_state": state, "b_exit": close.exit_code,
              "b_error": close.error or None, "b_interrupted": close.interrupted}  # fmt: skip
    return bool(getattr(db.execute(_CLOSE_TRY, params), "rowcount", 0))


def close_try_alone(
    db: Db, ti_id: int, ref: TaskRef, state: TryState, close: TryClose, *, actor: str, when: datetime, reason: str
) -> bool:
    """Close a try whose instance has moved on (cleared, marked, failed as lost) when its outcome arrives.

    The try did end, so its row is closed, with a `try.closed` audit row of its own (no instance change
    records it). False, and nothing written, when it was closed already.
    """
    if not _close(db, ti_id, ref.try_number, state, when, close):
        return False
    row = _audit_row("try.closed", when, actor, reason, _task_names(ref), old=TryState.RUNNING, new=state)
    _insert_audit(db, [row])
    return True


# --- a mapped task's placeholder ---------------------------------------------------------------------


def expand_placeholder(db: Db, ti: TIRow, *, length: int, inputs: str, actor: str, when: datetime) -> bool:
    """A mapped task's placeholder (map index -1) becomes map index 0 of `length` instances, audited as
    `task.expanded` (its siblings are `record_created`). False, nothing written, if it expanded already."""
    table = TASK.table
    done = db.execute(
        update(table)
        .where(table.c.id == ti.id, table.c.map_index == -1, table.c.state == ti.state.value)
        .values(map_index=0, updated_at=when)
    )
    if not getattr(done, "rowcount", 0):
        return False
    ti.map_index = 0
    row = _audit_row("task.expanded", when, actor, None, _task_names(ti), detail={"length": length, "inputs": inputs})
    _insert_audit(db, [row])
    return True


# --- creation and other events ---------------------------------------------------------------------------


def record_created(session: Session, objs: Iterable[DagRun | TaskInstance], *, actor: str, reason: str,
                   when: datetime) -> None:  # fmt: skip
    """Insert new runs / task instances in their initial state and audit each (`run.created`,
    `task.created`, old state none) in one multi-row insert."""
    objs = list(objs)
    session.add_all(objs)
    session.flush()  # inserts them, filling in column defaults (state none, map_index -1)
    rows = [
        _audit_row("run.created", when, actor, reason, RUN.names(obj), new=obj.state)
        if isinstance(obj, DagRun)
        else _audit_row("task.created", when, actor, reason, _task_names(obj), new=obj.state)
        for obj in objs
    ]
    if rows:
        _insert_audit(session, rows)


def record_event(
    db: Db,
    event: str,
    *,
    actor: str,
    when: datetime,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    map_index: int | None = None,
    try_number: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit something that is not a state change: a backfill started, a callback failed, a clear asked."""
    names = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index, "try_number": try_number}
    _insert_audit(db, [_audit_row(event, when, actor, reason, names, detail=detail)])


def set_paused(session: Session, dag_id: str, paused: bool, *, actor: str, when: datetime) -> bool:
    """Pause or unpause a DAG; returns whether anything changed (only a change is audited)."""
    # FOR UPDATE (PostgreSQL): two concurrent pause/unpause commands then audit one real change each.
    dag = session.get(Dag, dag_id, with_for_update=True, populate_existing=True)
    if dag is None:
        raise NotFoundError(f"no DAG {dag_id!r} in the metadata database; `dagrunner dags list` shows the known ones")
    if dag.is_paused == paused:
        return False
    old, new = ("unpaused", "paused") if paused else ("paused", "unpaused")
    dag.is_paused = paused
    session.flush()
    names = {**_NO_NAMES, "dag_id": dag_id}
    _insert_audit(session, [_audit_row(f"dag.{new}", when, actor, None, names, old=old, new=new)])
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


def _clip(actor: str) -> str:
    return actor if len(actor) <= _ACTOR_MAX else actor[: _ACTOR_MAX - 1] + "…"


# --- the scheduler's view of a task instance -----------------------------------------------------------


@dataclass(slots=True)
class TIRow:
    """A task instance as the scheduler's hot path holds it: a plain row, no ORM identity or events.

    Loaded with one Core query per tick (`load_ti_rows`) and changed only through `transition()`.
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
        return task_label(self.dag_id, self.task_id, self.map_index, self.run_id)


def load_ti_rows(session: Session, runs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[TIRow]]:
    """Every task instance of the given (dag_id, run_id) runs as plain rows (one query per 500 runs)."""
    table = cast(Table, TaskInstance.__table__)
    cols = [table.c[name] for name in TIRow.COLUMNS]
    out: dict[tuple[str, str], list[TIRow]] = {}
    for start in range(0, len(runs), 500):
        chunk = list(runs[start : start + 500])
        query = select(*cols).where(tuple_(table.c.dag_id, table.c.run_id).in_(chunk))
        for values in session.execute(query):
            row = TIRow(*values)  # the state column's type gives a TaskInstanceState
            out.setdefault((row.dag_id, row.run_id), []).append(row)
    return out
