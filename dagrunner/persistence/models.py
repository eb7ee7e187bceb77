"""The metadata database as SQLAlchemy 2 models: one class per table of DESIGN section 5.

Read this file as the schema. Indexes are chosen for the scheduler's hot path, whose cost per tick must
grow with *active* work, never with history: every query the loop runs filters on an indexed state
column or on a (dag_id, run_id) prefix. State columns are never changed through these classes at all (see
the guard at the bottom): `persistence.audit.transition()` changes them, with their audit row.

The migration in `migrations/versions/` creates exactly these tables; a test compares the two.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.orm.attributes import instance_state

from dagrunner.errors import IllegalTransitionError, PersistenceError
from dagrunner.labels import task_label
from dagrunner.persistence.types import BigId, Json, StrEnumType, UtcDateTime
from dagrunner.states import BackfillState, BreakerState, DagRunState, JobState, TaskInstanceState, TryState

__all__ = ["BackfillState", "JobState"]  # their home is `states`; importable from here as before

#: Constraint names are fixed so that later migrations can drop or alter them by name, which SQLite's
#: batch mode needs (it cannot find an unnamed constraint to drop).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LEN = 250  # dag_id, run_id, task_id: Airflow's limit, so DAGs port unchanged
DEFAULT_POOL = "default_pool"


class DagRunType(StrEnum):
    """Why a run exists; part of its run_id (`scheduled__…`, `manual__…`, `backfill__…`)."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"
    ASSET_TRIGGERED = "asset_triggered"  # an asset event made its condition true (#12)


#: Run types whose (dag_id, logical_date) must be unique: the timetable yields each date once, and a
#: backfill re-uses an existing run instead of adding a second one. Manual and asset-triggered runs may share
#: a date.
UNIQUE_DATE_RUN_TYPES = (DagRunType.SCHEDULED, DagRunType.BACKFILL)


class JobType(StrEnum):
    SCHEDULER = "scheduler"
    BACKFILL = "backfill"
    DAGS_TEST = "dags_test"  # `dagrunner dags test`: runs one run in the foreground
    TRIGGERER = "triggerer"  # `dagrunner triggerer`: asset watchers and the outbox relay (#12)
    WORKER = "worker"  # `dagrunner worker`: a Celery worker running tries (#13)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id_column(*, primary_key: bool = False) -> Mapped[str]:
    return mapped_column(String(ID_LEN), primary_key=primary_key, nullable=False)


# --- DAGs and the files that define them ------------------------------------------------------------


class Dag(Base):
    """One row per dag_id ever seen. `is_active` goes false when no parsed file defines it any more."""

    __tablename__ = "dag"

    dag_id: Mapped[str] = _id_column(primary_key=True)
    fileloc: Mapped[str] = mapped_column(Text, nullable=False)
    is_paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    schedule_description: Mapped[str | None] = mapped_column(String(1000))
    tags: Mapped[list[str]] = mapped_column(Json, nullable=False, default=list)
    max_active_runs: Mapped[int | None] = mapped_column(Integer)
    max_active_tasks: Mapped[int | None] = mapped_column(Integer)
    last_parsed: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DagFile(Base):
    """The loader's memory of one DAG file: unchanged files (same hash) are not imported again."""

    __tablename__ = "dag_file"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    file_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    mtime: Mapped[float] = mapped_column(Float, nullable=False)
    #: dag_id -> serialized DAG structure, or None when the import failed.
    serialized: Mapped[dict[str, Any] | None] = mapped_column(Json)
    import_error: Mapped[str | None] = mapped_column(Text)
    last_parsed: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    parse_duration: Mapped[float | None] = mapped_column(Float)
    #: The end (at most 64 KB) of what the import printed to stdout/stderr, for `dags errors --verbose`.
    import_output: Mapped[str | None] = mapped_column(Text)


# --- runs ----------------------------------------------------------------------------------------------


class Backfill(Base):
    """One `dagrunner backfill` request; its runs point here. Re-running the same arguments resumes it."""

    __tablename__ = "backfill"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, index=True)
    from_date: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    to_date: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    reprocess_behavior: Mapped[str] = mapped_column(String(20), nullable=False, default="none")
    max_active_runs: Mapped[int | None] = mapped_column(Integer)
    run_backwards: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    conf: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False, default=dict)
    dry_run: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    state: Mapped[BackfillState] = mapped_column(
        StrEnumType(BackfillState), nullable=False, default=BackfillState.RUNNING
    )


class DagRun(Base):
    """One run of a DAG.

    Unique (dag_id, run_id). A partial unique index also makes (dag_id, logical_date) unique among
    scheduled and backfill runs, so a scheduler and a backfill racing to create the same date cannot both
    win: the loser gets an IntegrityError instead of a duplicate run. Manual runs may share a date.
    """

    __tablename__ = "dag_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = _id_column()
    run_id: Mapped[str] = _id_column()
    run_type: Mapped[DagRunType] = mapped_column(StrEnumType(DagRunType), nullable=False)
    logical_date: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    data_interval_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    data_interval_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    run_after: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    state: Mapped[DagRunState] = mapped_column(StrEnumType(DagRunState), nullable=False)
    conf: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(512))
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    backfill_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("backfill.id", ondelete="SET NULL"), index=True)
    #: The scheduler job or backfill process that executes this run (None: any scheduler may).
    owner: Mapped[str | None] = mapped_column(String(ID_LEN))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: A compensation failed after its retries: a person must look (`runs list` shows it), and why.
    needs_attention: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    needs_attention_reason: Mapped[str | None] = mapped_column(Text)

    #: Loaded only when asked for; deleting a run deletes its task instances in the database (cascade).
    task_instances: Mapped[list[TaskInstance]] = relationship(back_populates="dag_run", passive_deletes=True)

    __table_args__ = (
        UniqueConstraint("dag_id", "run_id"),
        Index("ix_dag_run_dag_id_state", "dag_id", "state"),
        Index("ix_dag_run_state", "state"),
        Index(
            "ux_dag_run_dag_id_logical_date",
            "dag_id",
            "logical_date",
            unique=True,
            sqlite_where=text("run_type IN ('scheduled', 'backfill')"),
            postgresql_where=text("run_type IN ('scheduled', 'backfill')"),
        ),
        Index("ix_dag_run_dag_id_logical_date", "dag_id", "logical_date"),
    )


# --- tasks ---------------------------------------------------------------------------------------------


class TaskInstance(Base):
    """One task in one run (one row per map_index of a mapped task; -1 when not mapped).

    A surrogate `id` keeps foreign keys from task_try and xcom short; the natural key is unique. That
    unique index also serves every "tasks of this run" lookup, so no separate (dag_id, run_id) index.
    """

    __tablename__ = "task_instance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = _id_column()
    run_id: Mapped[str] = _id_column()
    task_id: Mapped[str] = _id_column()
    map_index: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    state: Mapped[TaskInstanceState] = mapped_column(
        StrEnumType(TaskInstanceState), nullable=False, default=TaskInstanceState.NONE
    )
    #: Never decreases, also not on clear (a clear raises max_tries instead), so (task instance,
    #: try_number) names one attempt and one log file forever.
    try_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_tries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    operator: Mapped[str | None] = mapped_column(String(1000))
    queue: Mapped[str] = mapped_column(String(256), nullable=False, default="default")
    pool: Mapped[str] = mapped_column(String(256), nullable=False, default=DEFAULT_POOL)
    pool_slots: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    priority_weight: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Retry / reschedule: not to be queued before this time.
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    queued_by_job_id: Mapped[int | None] = mapped_column(BigId)
    last_heartbeat: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: An undo task's instance (saga compensation): its place in the run's rollback, 1 first (the step
    #: that finished last); None for every other instance. Compensation k is queued after k-1 finished.
    compensation_order: Mapped[int | None] = mapped_column(Integer)
    #: Its `compensation.finished` audit row is written (claimed with a fenced update, so only once).
    compensation_reported: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    #: Tries that ended waiting without a slot (a `reschedule` sensor's "not yet"): Airflow's
    #: `task_reschedule_count`. Back to 0 on clear.
    reschedule_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    #: When the wait began (a sensor's first poke, a deferral): a sensor's timeout counts from here across
    #: its tries. None when not waiting; cleared on clear.
    waiting_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: A deferred instance's resume (Airflow's deferral columns): what its next try does ("resume",
    #: "escalate") and with what (a human's answer). None when not deferred; cleared on clear.
    next_method: Mapped[str | None] = mapped_column(String(64))
    next_kwargs: Mapped[dict[str, Any] | None] = mapped_column(Json)

    dag_run: Mapped[DagRun] = relationship(back_populates="task_instances")

    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", "task_id", "map_index"),
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"),
        Index("ix_task_instance_state", "state"),
    )

    def label(self) -> str:
        return task_label(self.dag_id, self.task_id, self.map_index, self.run_id)


class TaskTry(Base):
    """One attempt of a task instance. Written when the try starts, closed once, never updated after."""

    __tablename__ = "task_try"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ti_id: Mapped[int] = mapped_column(BigId, ForeignKey("task_instance.id", ondelete="CASCADE"), nullable=False)
    dag_id: Mapped[str] = _id_column()
    run_id: Mapped[str] = _id_column()
    task_id: Mapped[str] = _id_column()
    map_index: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    try_number: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[TryState] = mapped_column(StrEnumType(TryState), nullable=False)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(String(2048))
    #: Its executor's shutdown killed it (Ctrl-C, SIGTERM): it did not fail on its own, so a resumed
    #: backfill runs it again.
    interrupted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("ti_id", "try_number"),
        Index("ix_task_try_dag_id_run_id_task_id_map_index", "dag_id", "run_id", "task_id", "map_index"),
    )


class XCom(Base):
    """A value a task instance handed to its downstream tasks (JSON only). Deleted with the instance."""

    __tablename__ = "xcom"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ti_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("task_instance.id", ondelete="CASCADE"), nullable=False, index=True
    )
    dag_id: Mapped[str] = _id_column()
    run_id: Mapped[str] = _id_column()
    task_id: Mapped[str] = _id_column()
    map_index: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    key: Mapped[str] = mapped_column(String(512), nullable=False, default="return_value")
    value: Mapped[Any] = mapped_column(Json, nullable=True)  # a task returning None stores NULL
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)

    __table_args__ = (UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "key"),)


class Pool(Base):
    """A named set of slots shared by every task that names it. `default_pool` is created by migration."""

    __tablename__ = "pool"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False, unique=True)
    slots: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    #: Circuit breaker (`persistence.breakers`): open after this many consecutive failed tries (NULL: none).
    breaker_failures: Mapped[int | None] = mapped_column(Integer)
    #: How long an open breaker holds new tries before one probe may run.
    breaker_cooldown_s: Mapped[float] = mapped_column(Float, nullable=False, default=300.0, server_default=text("300"))
    breaker_state: Mapped[BreakerState] = mapped_column(
        StrEnumType(BreakerState), nullable=False, default=BreakerState.CLOSED, server_default=BreakerState.CLOSED.value
    )
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# --- history and processes ----------------------------------------------------------------------------


class AuditLog(Base):
    """Append-only history of every state change and notable event. Written only by `persistence.audit`."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, index=True)
    #: user@host: command line, or the scheduler / backfill job that acted.
    actor: Mapped[str] = mapped_column(String(1000), nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    dag_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    task_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    map_index: Mapped[int | None] = mapped_column(Integer)
    try_number: Mapped[int | None] = mapped_column(Integer)
    old_state: Mapped[str | None] = mapped_column(String(20))
    new_state: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)

    __table_args__ = (Index("ix_audit_log_dag_id_ts", "dag_id", "ts"),)


class SchedulerJob(Base):
    """A scheduler or backfill process, so others can tell a live one (fresh heartbeat) from a dead one."""

    __tablename__ = "scheduler_job"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_type: Mapped[JobType] = mapped_column(StrEnumType(JobType), nullable=False)
    host: Mapped[str] = mapped_column(String(1000), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    latest_heartbeat: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    state: Mapped[JobState] = mapped_column(StrEnumType(JobState), nullable=False, default=JobState.RUNNING)
    #: A `worker` job's Celery queues, comma-separated (None for other jobs).
    queues: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (Index("ix_scheduler_job_state_job_type", "state", "job_type"),)


class CallbackRequest(Base):
    """A DAG-level callback (`on_success_callback` / `on_failure_callback`) to run for a finished run.

    Written in the transaction that finishes the run, so a finished run with a callback always has its
    request; run after the commit in a process of its own (the scheduler never imports user code) by the
    scheduler job `job_id`, which sets `done_at` (and `error` when it raised). A pending request whose job
    is gone is taken over by the next scheduler that starts: at least once, never lost.
    """

    __tablename__ = "callback_request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)  # on_success_callback | on_failure_callback
    dag_id: Mapped[str] = _id_column()
    run_id: Mapped[str] = _id_column()
    fileloc: Mapped[str] = mapped_column(Text, nullable=False)
    #: Airflow's reason in the callback's context: success, task_failure, timed_out, all_tasks_deadlocked.
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    job_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_callback_request_pending",
            "job_id",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )


class HITLRequest(Base):
    """What a human-in-the-loop task asks a person, and their answer (one row per task instance).

    Written by the task's first try, which then ends (`deferred`, no slot). Answered once: by a person
    (`tasks approve|reject|respond`), or by the timeout's `defaults` (responded_by "timeout"). Open
    requests (`responded_at IS NULL`) are few, found through a partial index.
    """

    __tablename__ = "hitl_request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ti_id: Mapped[int] = mapped_column(BigId, ForeignKey("task_instance.id", ondelete="CASCADE"), nullable=False)
    dag_id: Mapped[str] = _id_column()
    run_id: Mapped[str] = _id_column()
    task_id: Mapped[str] = _id_column()
    map_index: Mapped[int] = mapped_column(Integer, nullable=False, default=-1, server_default=text("-1"))
    #: Rendered when the request was made; answers and comments are data, never rendered.
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(Json, nullable=False)
    defaults: Mapped[list[str] | None] = mapped_column(Json)
    multiple: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    #: The form: name -> Param schema (`Param.schema()`), checked against each answer.
    params: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    assigned_users: Mapped[list[str]] = mapped_column(Json, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    timeout_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalate_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Airflow's shape: {"chosen_options": [...], "params_input": {...}, "responded_by": ..., "comment": ...}.
    response: Mapped[dict[str, Any] | None] = mapped_column(Json)
    responded_by: Mapped[str | None] = mapped_column(String(1000))
    responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("ti_id"),
        Index(
            "ix_hitl_request_open",
            "timeout_at",
            sqlite_where=text("responded_at IS NULL"),
            postgresql_where=text("responded_at IS NULL"),
        ),
    )


# --- Part B of issue #12: messages from brokers that could not become asset events ---------------------


class DeadLetterStatus(StrEnum):
    """A dead letter waits (`dead`) until a person replays it (`replayed`: it became an asset event) or
    discards it (`discarded`: kept for the audit)."""

    DEAD = "dead"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class DeadLetter(Base):
    """A broker message an asset watcher could not use (not JSON, too large, rejected by its validation,
    an unknown asset, or it kept failing): its raw bytes and headers, kept so it can be replayed.

    Written in the transaction after which the message is acked (`persistence.dead_letters`). Waiting
    ones (`status = 'dead'`) are found through an index on (status, id).
    """

    __tablename__ = "dead_letter"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    watcher: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    asset: Mapped[str] = mapped_column(String(1500), nullable=False)
    #: The broker URL with its password masked, and the stream or queue (`stream orders`, `queue orders`).
    broker: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str] = mapped_column(String(1000), nullable=False)
    #: The broker's id of the message (Redis entry id, RabbitMQ message_id or delivery tag).
    message_id: Mapped[str | None] = mapped_column(String(1000))
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default=text("1"))
    status: Mapped[DeadLetterStatus] = mapped_column(
        StrEnumType(DeadLetterStatus), nullable=False, default=DeadLetterStatus.DEAD
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    resolved_by: Mapped[str | None] = mapped_column(String(1000))
    #: The asset event a successful replay recorded.
    asset_event_id: Mapped[int | None] = mapped_column(BigId)

    __table_args__ = (Index("ix_dead_letter_status_id", "status", "id"),)


# --- Part A of #12: assets -------------------------------------------------------------------------------


class Asset(Base):
    """An asset some DAG names (in a schedule, an outlet or an inlet), registered when DAG files are synced.

    `name` and `uri` are each unique (Airflow 3: a name or a URI alone names the asset). `consumers`,
    `producers` and `readers` say who uses it how: dag ids, and "dag_id.task_id" for tasks.
    """

    __tablename__ = "asset"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(1500), nullable=False, unique=True)
    uri: Mapped[str] = mapped_column(String(1500), nullable=False, unique=True)
    group: Mapped[str] = mapped_column(String(1500), nullable=False, default="asset")
    extra: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False, default=dict)
    #: The DAG file that declared it first: a file that disagrees on its uri gets the import error.
    fileloc: Mapped[str | None] = mapped_column(Text)
    consumers: Mapped[list[str]] = mapped_column(Json, nullable=False, default=list)
    producers: Mapped[list[str]] = mapped_column(Json, nullable=False, default=list)
    readers: Mapped[list[str]] = mapped_column(Json, nullable=False, default=list)
    #: `{"name": ..., "trigger": {...}}` per AssetWatcher (the trigger's serialize(), if it has one).
    watchers: Mapped[list[dict[str, Any]]] = mapped_column(Json, nullable=False, default=list)
    #: False once no DAG names it any more (its events stay).
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AssetAlias(Base):
    """An `AssetAlias(name)` a DAG names: a schedule on it runs when a task adds an event through it."""

    __tablename__ = "asset_alias"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(1500), nullable=False, unique=True)
    consumers: Mapped[list[str]] = mapped_column(Json, nullable=False, default=list)
    producers: Mapped[list[str]] = mapped_column(Json, nullable=False, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AssetEvent(Base):
    """One update of an asset: from a task's outlet, a watcher's message, the CLI or a replay.

    `dedupe_key` (a broker message id) is unique: a redelivered message records nothing new.
    """

    __tablename__ = "asset_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(BigId, ForeignKey("asset.id", ondelete="CASCADE"), nullable=False)
    #: The alias it was added through (`outlet_events[alias].add(...)`), if any.
    alias: Mapped[str | None] = mapped_column(String(1500))
    extra: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False, default=dict)
    #: {"kind": "task" | "watcher" | "cli" | "replay", ...} (execution.asset_events).
    source: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False, default=dict)
    source_dag_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    source_run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    source_task_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    source_map_index: Mapped[int] = mapped_column(Integer, nullable=False, default=-1, server_default=text("-1"))
    dedupe_key: Mapped[str | None] = mapped_column(String(1000), unique=True)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (Index("ix_asset_event_asset_id_id", "asset_id", "id"),)


class AssetDagQueue(Base):
    """An event waiting for a DAG whose asset condition mentions its asset, until a run consumes it
    (Airflow's AssetDagRunQueue). One row per (asset, DAG): the newest event."""

    __tablename__ = "asset_dag_queue"

    asset_id: Mapped[int] = mapped_column(BigId, ForeignKey("asset.id", ondelete="CASCADE"), primary_key=True)
    dag_id: Mapped[str] = _id_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("asset_event.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


class DagRunAssetEvent(Base):
    """The events that triggered an asset-triggered run (`triggering_asset_events`)."""

    __tablename__ = "dag_run_asset_event"

    run_pk: Mapped[int] = mapped_column(BigId, ForeignKey("dag_run.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("asset_event.id", ondelete="CASCADE"), primary_key=True, index=True
    )


# --- part C of issue #12: the transactional outbox of published run, task and asset events -----------------


class Outbox(Base):
    """One published event (a CloudEvent to be), written by `persistence.audit` in the transaction of the
    audit row it mirrors, and deleted by the relay once every configured sink and the listeners have it.

    `id` orders delivery (hence per run); on SQLite AUTOINCREMENT keeps a pruned id from being handed out
    again. `event_id` (a UUID) is the CloudEvent `id`: the same on every redelivery.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False)
    #: The CloudEvent type without its `dagrunner.` prefix: `task_instance.succeeded`, `dag_run.queued`, ...
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(1000), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    dag_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    data: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)

    __table_args__ = {"sqlite_autoincrement": True}


class OutboxSink(Base):
    """Delivery state of one sink (or `@listeners`): how far it got, who delivers to it, how it is failing.

    `delivered_through` is the last outbox id it has (or skipped by its filters). One relay at a time holds
    the lease (`owner`, `lease_until`, taken by a conditional UPDATE), so two relays never deliver to one
    sink at once. `failing_since` is set for the length of a failure episode.
    """

    __tablename__ = "outbox_sink"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    delivered_through: Mapped[int] = mapped_column(BigId, nullable=False, default=0, server_default=text("0"))
    delivered_count: Mapped[int] = mapped_column(BigId, nullable=False, default=0, server_default=text("0"))
    last_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    owner: Mapped[str | None] = mapped_column(String(1000))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


#: The tables dagrunner owns; `schema.reset_db` drops exactly these (plus alembic_version).
# --- issue #14: users of the web UI and the REST API ----------------------------------------------------------


class WebUser(Base):
    """A person (or script owner) who may use the api-server. `role` is viewer, operator or admin
    (`dagrunner.roles.Role`); the password is an Argon2id hash, never the password."""

    __tablename__ = "web_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token for scripts (`Authorization: Bearer drt_...`). Only its SHA-256 is stored: the token
    itself is shown once, when it is created."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_user.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    last_used: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A logged-in browser. The cookie holds a random id; only its SHA-256 is stored, with the CSRF token the
    page must send back on every write and the time the session ends."""

    __tablename__ = "web_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_user.id", ondelete="CASCADE"), nullable=False, index=True)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


# --- issue #15: connections and variables ---------------------------------------------------------------------


class ConnectionRecord(Base):
    """A stored connection (Airflow's `connection` table). `password` and `extra` are Fernet tokens
    (`persistence.fernet`), never plaintext; the other fields are not secrets and stay readable."""

    __tablename__ = "connection"

    conn_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    conn_type: Mapped[str] = mapped_column(String(500), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(Text)
    schema: Mapped[str | None] = mapped_column(Text)
    login: Mapped[str | None] = mapped_column(Text)
    password: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


class VariableRecord(Base):
    """A stored variable (Airflow's `variable` table); `val` is a Fernet token, never plaintext."""

    __tablename__ = "variable"

    key: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    val: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


TABLE_NAMES: frozenset[str] = frozenset(Base.metadata.tables)


# --- guards: the rules above that the schema alone cannot enforce ----------------------------------------


def _refuse_direct_state_change(target: Any, value: Any, oldvalue: Any, _initiator: Any) -> Any:
    # A new, never-flushed row may be built in its initial state (`audit.record_created` audits it); once it
    # exists in the database its state moves only through `audit.transition()`, which works on table rows
    # and writes the audit row. Setting the value it already has is no change (Session.merge does that).
    if instance_state(target).has_identity and value != oldvalue:
        raise IllegalTransitionError(
            f"{type(target).__tablename__} state set directly ({oldvalue} -> {value}); change states only "
            "through dagrunner.persistence.audit.transition(), which also writes the audit row"
        )
    return value


def _refuse_audit_change(_mapper: Any, _connection: Any, target: AuditLog) -> None:
    raise PersistenceError(f"audit_log row {target.id} was changed or deleted; the audit log is append-only")


# active_history: the old value is loaded first if it was expired, so "no change" can be recognised.
for _model in (TaskInstance, DagRun, TaskTry, SchedulerJob, Backfill):
    event.listen(_model.state, "set", _refuse_direct_state_change, retval=True, active_history=True)
event.listen(Pool.breaker_state, "set", _refuse_direct_state_change, retval=True, active_history=True)
event.listen(AuditLog, "before_update", _refuse_audit_change)
event.listen(AuditLog, "before_delete", _refuse_audit_change)
