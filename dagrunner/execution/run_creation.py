"""Inserting a run with its task instances: the layer-neutral core every way of creating a run shares.

The scheduler (`scheduling.dagruns`: timetables, `dags trigger`, backfill) and an asset event
(`execution.asset_events`, written by a worker, a watcher or the CLI) both create runs here, so a run is
always born the same way: queued, one task instance per task (state none), audited in one transaction.
A duplicate run (same run_id, or for scheduled/backfill runs the same logical date) is a clear
`DuplicateRunError`; the database's unique indexes make that true even when two processes race.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dagrunner.authoring.params import check_params
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
    tis = [new_instance(dag.dag_id, run_id, spec, now) for spec in dag.run_tasks]
    try:
        with session.begin_nested():
            record_created(session, [run, *tis], actor=actor, reason=f"{run_type.value} run created", when=now)
    except IntegrityError as exc:
        raise DuplicateRunError(_duplicate_message(dag.dag_id, run_id, info.logical_date)) from exc
    return run


def trigger_run(
    session: Session,
    dag: SerializedDag,
    *,
    actor: str,
    now: datetime,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    owner: str | None = None,
) -> DagRun:
    """A manual run at `logical_date` (default: now) with its data interval from the timetable: what
    `dagrunner dags trigger`, the web's trigger and TriggerDagRunOperator all create.

    The conf must fit the DAG's Params (ParamValidationError naming the param, before anything is written).
    """
    check_params(dag.param_schemas, conf or {})
    info = dag.timetable.manual_run_info(logical_date or now)
    return create_run(
        session, dag, info, run_type=DagRunType.MANUAL, actor=actor, now=now, run_id=run_id, conf=conf, owner=owner
    )


def new_instance(dag_id: str, run_id: str, spec: TaskSpec, now: datetime) -> TaskInstance:
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
    tis = [new_instance(run.dag_id, run.run_id, spec, now) for spec in specs]
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
