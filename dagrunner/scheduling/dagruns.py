"""Creating runs: scheduled ones from timetables, manual ones from `dags trigger`, with their task instances.

A run and all its task instances are created in one transaction with their audit rows. A duplicate run
(same run_id, or for scheduled/backfill runs the same logical date) is a clear `DuplicateRunError`; the
database's unique indexes make that true even when two processes race.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dagrunner.errors import DuplicateRunError
from dagrunner.loading.serialization import SerializedDag, TaskSpec
from dagrunner.persistence import queries
from dagrunner.persistence.audit import record_created
from dagrunner.persistence.models import UNIQUE_DATE_RUN_TYPES, DagRun, DagRunType, TaskInstance
from dagrunner.states import DagRunState
from dagrunner.timetables import DagRunInfo, make_run_id, validate_run_id


def create_run(
    session: Session,
    dag: SerializedDag,
    info: DagRunInfo,
    *,
    run_type: DagRunType,
    actor: str,
    now: datetime,
    run_id: str | None = None,
    conf: Mapping[str, Any] | None = None,
    backfill_id: int | None = None,
    owner: str | None = None,
) -> DagRun:
    """Insert a queued run of `dag` and one task instance per task (state none), audited. Undo tasks
    (`compensate_with`) get none: `scheduling.compensation` creates theirs if the run fails."""
    run_id = validate_run_id(run_id) if run_id else make_run_id(run_type.value, info.run_after)
    _refuse_duplicate(session, dag.dag_id, run_id, run_type, info.logical_date)
    run = DagRun(
        dag_id=dag.dag_id,
        run_id=run_id,
        run_type=run_type,
        logical_date=info.logical_date,
        data_interval_start=info.data_interval_start,
        data_interval_end=info.data_interval_end,
        run_after=info.run_after,
        state=DagRunState.QUEUED,
        conf=dict(conf or {}),
        created_by=actor,
        queued_at=now,
        backfill_id=backfill_id,
        owner=owner,
        updated_at=now,
    )
    tis = [_new_instance(dag.dag_id, run_id, spec, now) for spec in dag.run_tasks]
    try:
        with session.begin_nested():
            record_created(session, [run, *tis], actor=actor, reason=f"{run_type.value} run created", when=now)
    except IntegrityError as exc:
        raise DuplicateRunError(_duplicate_message(dag.dag_id, run_id, info.logical_date)) from exc
    return run


def _new_instance(dag_id: str, run_id: str, spec: TaskSpec, now: datetime) -> TaskInstance:
    return TaskInstance(
        dag_id=dag_id,
        run_id=run_id,
        task_id=spec.task_id,
        map_index=-1,
        max_tries=spec.retries,
        operator=spec.operator,
        queue=spec.queue,
        pool=spec.pool,
        pool_slots=spec.pool_slots,
        priority_weight=spec.priority,
        updated_at=now,
    )


def add_instances(
    session: Session, run: DagRun, specs: Sequence[TaskSpec], *, actor: str, now: datetime
) -> list[TaskInstance]:
    """Instances (state none) of tasks added to the DAG after `run` was created, audited (Airflow's
    verify_integrity does the same for unfinished runs)."""
    tis = [_new_instance(run.dag_id, run.run_id, spec, now) for spec in specs]
    record_created(session, tis, actor=actor, reason="the task was added to the DAG", when=now)
    return tis


def _refuse_duplicate(session: Session, dag_id: str, run_id: str, run_type: DagRunType, logical_date: datetime) -> None:
    if queries.run_exists(session, dag_id, run_id):
        raise DuplicateRunError(_duplicate_message(dag_id, run_id, logical_date))
    if run_type in UNIQUE_DATE_RUN_TYPES:
        other = queries.run_id_on_logical_date(session, dag_id, logical_date)
        if other is not None:
            raise DuplicateRunError(
                f"DAG {dag_id!r} already has run {other!r} for logical date {logical_date.isoformat()}"
            )


def _duplicate_message(dag_id: str, run_id: str, logical_date: datetime) -> str:
    return (
        f"DAG {dag_id!r} already has a run {run_id!r} (or one for {logical_date.isoformat()}); "
        "choose another --run-id or --logical-date, or clear the existing run with `dagrunner tasks clear`"
    )


def continue_from(session: Session, dags: Mapping[str, SerializedDag], now: datetime) -> dict[str, DagRunInfo]:
    """Per DAG, the run its timetable continues from: its latest scheduled run, moved past the dates right
    after it that already have a run (a backfill ahead of the scheduler). Those dates are skipped, not
    scheduled again and not counted as active; the next due date is the first one past them. DAGs with
    neither left out. One query for all of `dags`."""
    tails = queries.scheduled_sequence_tails(session, list(dags))
    found: dict[str, DagRunInfo] = {}
    for dag_id, runs in tails.items():
        last = run_info(runs[0]) if runs[0].run_type == DagRunType.SCHEDULED else None
        taken = {run.logical_date for run in runs}
        last = _past_taken(dags[dag_id], last, taken, now)
        if last is not None:
            found[dag_id] = last
    return found


def _past_taken(dag: SerializedDag, last: DagRunInfo | None, taken: set[datetime], now: datetime) -> DagRunInfo | None:
    """Walk the timetable from `last` while each next date is one of `taken`; the last one walked over."""
    while True:
        info = dag.timetable.next_dagrun_info(
            last=last, start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup, now=now
        )
        if info is None or info.logical_date not in taken:
            return last
        last = info


def run_info(run: DagRun) -> DagRunInfo:
    return DagRunInfo(
        run_after=run.run_after,
        logical_date=run.logical_date,
        data_interval_start=run.data_interval_start or run.logical_date,
        data_interval_end=run.data_interval_end or run.logical_date,
    )


def create_due_runs(
    session: Session,
    dags: Mapping[str, SerializedDag],
    *,
    now: datetime,
    actor: str,
) -> list[DagRun]:
    """Create every run that is due now for the given (unpaused, schedulable) DAGs, within max_active_runs.

    A date that already has a run (a backfill's, or another scheduler's that won the race) is skipped: it
    is neither created again nor counted as active, and the search goes on past it.
    """
    ids = [d for d, dag in dags.items() if dag.timetable.can_be_scheduled]
    last = continue_from(session, {d: dags[d] for d in ids}, now)
    active = queries.active_run_counts(session, ids)
    created: list[DagRun] = []
    for dag_id in ids:
        dag = dags[dag_id]
        previous = last.get(dag_id)
        while active.get(dag_id, 0) < dag.max_active_runs:
            info = dag.timetable.next_dagrun_info(
                last=previous, start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup, now=now
            )
            if info is None or info.run_after > now:
                break
            previous = info
            try:
                created.append(create_run(session, dag, info, run_type=DagRunType.SCHEDULED, actor=actor, now=now))
            except DuplicateRunError:
                continue  # made since `continue_from` looked (another scheduler, a backfill): go on past it
            active[dag_id] = active.get(dag_id, 0) + 1
    return created
