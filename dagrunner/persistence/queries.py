"""Named read queries, so that callers say what they want and the SQL (and its indexes) live in one place.

Each query uses an index declared in `models.py`; keep it that way when adding one here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from dagrunner.errors import NotFoundError
from dagrunner.persistence.models import (
    UNIQUE_DATE_RUN_TYPES,
    AuditLog,
    Dag,
    DagRun,
    DagRunType,
    JobState,
    Pool,
    SchedulerJob,
    TaskInstance,
)
from dagrunner.states import OCCUPYING_SLOT, RUN_ACTIVE, DagRunState, TaskInstanceState

RunRef = tuple[str, str]  # (dag_id, run_id)


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
    event: str | None = None,
) -> list[AuditLog]:
    """Audit rows in the order they were written; with `limit`, the most recent `limit` of them. `event`: that
    event, or with a trailing dot every event it starts (`watcher.`)."""
    query = select(AuditLog)
    if event is not None:
        query = query.where(
            AuditLog.event.startswith(event, autoescape=True) if event.endswith(".") else AuditLog.event == event
        )
    if dag_id is not None:
        query = query.where(AuditLog.dag_id == dag_id)
    if run_id is not None:
        query = query.where(AuditLog.run_id == run_id)
    if since is not None:
        query = query.where(AuditLog.ts >= since)
    rows = list(session.scalars(query.order_by(AuditLog.id.desc()).limit(limit)))
    rows.reverse()
    return rows


# --- what the scheduler reads ----------------------------------------------------------------------------


def runs_to_decide(
    session: Session,
    *,
    owner: str | None,
    refs: Collection[RunRef] | None = None,
    only: Collection[RunRef] | None = None,
) -> list[DagRun]:
    """The active runs a scheduler decides, oldest logical date first.

    `owner` None is the daemon: unowned runs of unpaused DAGs (a paused DAG's runs wait, as in Airflow);
    otherwise that owner's runs (dags test, backfill). `refs`: only these runs (the changed ones; None for
    all); `only`: the runs this scheduler is restricted to. On PostgreSQL the rows are locked, skipping
    those another scheduler holds, so several schedulers never decide one run at once.
    """
    query = select(DagRun).where(DagRun.state.in_(RUN_ACTIVE))
    if owner is None:
        unpaused = select(Dag.dag_id).where(Dag.is_paused.is_(False))
        query = query.where(DagRun.owner.is_(None), DagRun.dag_id.in_(unpaused))
    else:
        query = query.where(DagRun.owner == owner)
    if refs is not None:
        query = query.where(tuple_(DagRun.dag_id, DagRun.run_id).in_(list(refs)))
    if only is not None:
        query = query.where(tuple_(DagRun.dag_id, DagRun.run_id).in_(list(only)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=DagRun)
    return list(session.scalars(query.order_by(DagRun.logical_date, DagRun.id)))


def newest_run_pk(session: Session) -> int:
    """The highest dag_run primary key (0 when there is no run)."""
    return session.scalar(select(func.max(DagRun.id))) or 0


def runs_created_after(session: Session, run_pk: int) -> list[tuple[int, str, str]]:
    """(pk, dag_id, run_id) of the runs inserted after `run_pk` (by anyone): an indexed range on the key."""
    rows = session.execute(select(DagRun.id, DagRun.dag_id, DagRun.run_id).where(DagRun.id > run_pk))
    return [(pk, dag_id, run_id) for pk, dag_id, run_id in rows]


def running_run_counts(session: Session, dag_ids: Collection[str], *, owner: str | None) -> dict[str, int]:
    """dag_id -> how many of its runs owned by `owner` (None: unowned) are running."""
    query = (
        select(DagRun.dag_id, func.count())
        .where(DagRun.state == DagRunState.RUNNING, DagRun.dag_id.in_(list(dag_ids)))
        .where(DagRun.owner.is_(None) if owner is None else DagRun.owner == owner)
        .group_by(DagRun.dag_id)
    )
    return {dag_id: count for dag_id, count in session.execute(query)}


def active_run_counts(session: Session, dag_ids: Collection[str]) -> dict[str, int]:
    """dag_id -> how many of its runs are queued or running (whoever owns them)."""
    if not dag_ids:
        return {}
    rows = session.execute(
        select(DagRun.dag_id, func.count())
        .where(DagRun.dag_id.in_(list(dag_ids)), DagRun.state.in_(RUN_ACTIVE))
        .group_by(DagRun.dag_id)
    )
    return {dag_id: count for dag_id, count in rows}


def run_exists(session: Session, dag_id: str, run_id: str) -> bool:
    return (
        session.scalars(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first() is not None
    )


def run_id_on_logical_date(session: Session, dag_id: str, logical_date: datetime) -> str | None:
    """The run_id of the DAG's scheduled or backfill run for `logical_date`, if there is one (one per date)."""
    query = select(DagRun.run_id).where(
        DagRun.dag_id == dag_id, DagRun.logical_date == logical_date, DagRun.run_type.in_(UNIQUE_DATE_RUN_TYPES)
    )
    return session.scalars(query).first()


def paused_dag_ids(session: Session, dag_ids: Collection[str]) -> set[str]:
    """Those of `dag_ids` that are paused."""
    query = select(Dag.dag_id).where(Dag.dag_id.in_(list(dag_ids)), Dag.is_paused.is_(True))
    return set(session.scalars(query))


def slots_in_use(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """(dag_id -> instances holding a slot, pool -> pool slots held), over every instance queued or running."""
    rows = session.execute(
        select(TaskInstance.dag_id, TaskInstance.pool, func.count(), func.sum(TaskInstance.pool_slots))
        .where(TaskInstance.state.in_(OCCUPYING_SLOT))
        .group_by(TaskInstance.dag_id, TaskInstance.pool)
    )
    per_dag: dict[str, int] = {}
    per_pool: dict[str, int] = {}
    for dag_id, pool, count, slots in rows:
        per_dag[dag_id] = per_dag.get(dag_id, 0) + count
        per_pool[pool] = per_pool.get(pool, 0) + int(slots or 0)
    return per_dag, per_pool


def pool_sizes(session: Session) -> dict[str, int]:
    """pool name -> its slots."""
    return {name: slots for name, slots in session.execute(select(Pool.name, Pool.slots))}


def stale_running_instances(session: Session, heartbeat_before: datetime) -> list[TaskInstance]:
    """Running instances whose last heartbeat is older than `heartbeat_before` (zombie candidates)."""
    query = select(TaskInstance).where(
        TaskInstance.state == TaskInstanceState.RUNNING, TaskInstance.last_heartbeat < heartbeat_before
    )
    return list(session.scalars(query))


def running_jobs(session: Session) -> list[SchedulerJob]:
    """Every scheduler, backfill and dags-test job still marked running."""
    return list(session.scalars(select(SchedulerJob).where(SchedulerJob.state == JobState.RUNNING)))


def lock_running_jobs(session: Session, job_ids: Collection[int]) -> list[SchedulerJob]:
    """Those of `job_ids` still running, locked until this transaction ends; on PostgreSQL skipping the ones
    another scheduler holds (it is adopting them), so a dead job is adopted by one scheduler only."""
    if not job_ids:
        return []
    query = select(SchedulerJob).where(SchedulerJob.id.in_(sorted(job_ids)), SchedulerJob.state == JobState.RUNNING)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query.order_by(SchedulerJob.id)))


def instances_claimed_by(session: Session, job_id: int) -> list[TaskInstance]:
    """The instances queued or running under one job's queueing (its tries)."""
    query = select(TaskInstance).where(
        TaskInstance.state.in_((TaskInstanceState.QUEUED, TaskInstanceState.RUNNING)),
        TaskInstance.queued_by_job_id == job_id,
    )
    return list(session.scalars(query))


def job_rows(session: Session, *, ended_since: datetime | None) -> list[SchedulerJob]:
    """Jobs for `jobs list`, newest first: the running ones and those that ended at or after `ended_since`
    (None: every job ever)."""
    query = select(SchedulerJob)
    if ended_since is not None:
        query = query.where((SchedulerJob.state == JobState.RUNNING) | (SchedulerJob.ended_at >= ended_since))
    return list(session.scalars(query.order_by(SchedulerJob.id.desc())))


def claimed_instances(session: Session) -> list[TaskInstance]:
    """Every instance queued or running: work some job has taken on."""
    return list(
        session.scalars(
            select(TaskInstance).where(TaskInstance.state.in_((TaskInstanceState.QUEUED, TaskInstanceState.RUNNING)))
        )
    )


def previous_run(session: Session, dag_id: str, logical_date: datetime) -> DagRun | None:
    """The DAG's run with the latest logical date before `logical_date` (any run type)."""
    query = (
        select(DagRun)
        .where(DagRun.dag_id == dag_id, DagRun.logical_date < logical_date)
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def instance_states(
    session: Session, dag_id: str, run_id: str, task_ids: Collection[str]
) -> list[tuple[str, TaskInstanceState]]:
    """(task_id, state) of every instance (each map index) of `task_ids` in one run."""
    rows = session.execute(
        select(TaskInstance.task_id, TaskInstance.state).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id.in_(list(task_ids))
        )
    )
    return [(task_id, TaskInstanceState(state)) for task_id, state in rows]


def scheduled_sequence_tails(session: Session, dag_ids: Collection[str]) -> dict[str, list[DagRun]]:
    """dag_id -> its latest scheduled run and every scheduled or backfill run at or after its logical date
    (every such run when it has no scheduled run), by logical date: where its timetable continues from, and
    the dates past it that already have a run (a backfill ahead of the scheduler). Uses
    ix_dag_run_dag_id_logical_date."""
    if not dag_ids:
        return {}
    latest = (
        select(DagRun.dag_id, func.max(DagRun.logical_date).label("logical_date"))
        .where(DagRun.dag_id.in_(list(dag_ids)), DagRun.run_type == DagRunType.SCHEDULED)
        .group_by(DagRun.dag_id)
        .subquery()
    )
    rows = session.scalars(
        select(DagRun)
        .outerjoin(latest, DagRun.dag_id == latest.c.dag_id)
        .where(DagRun.dag_id.in_(list(dag_ids)), DagRun.run_type.in_(UNIQUE_DATE_RUN_TYPES))
        .where(latest.c.logical_date.is_(None) | (DagRun.logical_date >= latest.c.logical_date))
        .order_by(DagRun.dag_id, DagRun.logical_date)
    )
    tails: dict[str, list[DagRun]] = {}
    for run in rows:
        tails.setdefault(run.dag_id, []).append(run)
    return tails


# --- one scheduler at a time counts slots and queues (PostgreSQL) ----------------------------------------

#: The PostgreSQL advisory lock a scheduler holds, until its transaction ends, while it counts the slots in
#: use and queues tries. Any constant works: advisory locks are per database ("dagrun" + 1, in hex).
QUEUEING_LOCK_KEY = 0x6461_6772_756E_0001


def try_lock_queueing(session: Session) -> bool:
    """Take the queueing lock for the rest of this transaction; False when another scheduler holds it.

    Counting slots in use and queueing into them must be one step across schedulers, or two schedulers
    both see the same free pool slots and both fill them. One advisory lock covers every limit counted
    from the database at once (pool slots, max_active_tasks, max_active_runs), which per-pool row locks
    would not (two pools, one DAG). It is tried, never waited for: the caller has already locked runs
    and written task instances in this transaction, so waiting could close a cycle with a scheduler that
    holds the lock and waits for one of those rows; the caller queues on a later tick instead (as
    Airflow's scheduler does with NOWAIT on its pool rows). Under READ COMMITTED the counts read after
    the lock see everything the previous holder queued, as it held the lock until it committed.
    SQLite needs no lock (every write transaction is BEGIN IMMEDIATE: writers are serialized already).
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(QUEUEING_LOCK_KEY))))


#: The PostgreSQL advisory lock held, until its transaction ends, by whoever writes DAG parse results.
PARSE_RESULTS_LOCK_KEY = 0x6461_6772_756E_0002


def lock_parse_results(session: Session) -> None:
    """Wait for the parse-results lock (PostgreSQL), to write `dag_file`/`dag`/`asset` rows as one writer.

    Two schedulers that start together both parse the folder and both find the same files and DAGs new:
    without it both insert the same rows and one dies of a unique violation. Under READ COMMITTED the
    rows read after the lock include what the previous holder wrote, so the second writer updates them.
    Waiting is safe: it is the first statement of its transaction (nothing is held yet). SQLite
    serializes writers already (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(PARSE_RESULTS_LOCK_KEY)))


def lock_dags_for_run_creation(session: Session, dag_ids: Collection[str]) -> set[str]:
    """Those of `dag_ids` whose runs this transaction may create: on PostgreSQL their `dag` rows are locked
    (`FOR UPDATE SKIP LOCKED`) until it ends, skipping the ones another scheduler is creating runs for (it holds them), so two
    schedulers never compute and insert the same runs at once. Without the lock the loser's insert would
    wait on the unique index for the winner's whole tick, then fail and go on to the date past it, beyond
    max_active_runs. SQLite: all of them (writers are serialized already)."""
    if session.get_bind().dialect.name != "postgresql" or not dag_ids:
        return set(dag_ids)
    query = select(Dag.dag_id).where(Dag.dag_id.in_(sorted(dag_ids))).order_by(Dag.dag_id)
    locked = set(session.scalars(query.with_for_update(skip_locked=True)))
    return locked | (set(dag_ids) - set(session.scalars(query)))  # a DAG with no row yet: nothing to lock
