"""Creating runs: scheduled ones from timetables, manual ones from `dags trigger`, with their task instances.

A run and all its task instances are created in one transaction with their audit rows, by
`execution.run_creation.create_run` (re-exported here for the scheduler, backfill and the CLI), which asset
events use too. A duplicate run (same run_id, or for scheduled/backfill runs the same logical date) is a
clear `DuplicateRunError`; the database's unique indexes make that true even when two processes race.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from dagrunner.errors import DuplicateRunError
from dagrunner.execution.run_creation import add_instances, create_run
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence import queries
from dagrunner.persistence.models import DagRun, DagRunType
from dagrunner.timetables import DagRunInfo, Timetable

__all__ = ["add_instances", "continue_from", "create_due_runs", "create_run", "next_run_after", "run_info"]


class Schedule(Protocol):
    """What planning a DAG's scheduled runs reads of it (a `SerializedDag` has it; the web's catalog makes one
    from the stored JSON without parsing the tasks)."""

    @property
    def timetable(self) -> Timetable: ...

    @property
    def start_date(self) -> datetime | None: ...

    @property
    def end_date(self) -> datetime | None: ...

    @property
    def catchup(self) -> bool: ...


def next_run_after(session: Session, dags: Mapping[str, Schedule], now: datetime) -> dict[str, datetime | None]:
    """dag_id -> the `run_after` of the next run the scheduler will create for it, after the runs that exist
    (as `create_due_runs` continues: from its latest scheduled run, past dates a backfill already took); None
    when it will create none. What `dags list` and the web's DAG list show. One query for all of `dags`."""
    schedulable = {d: dag for d, dag in dags.items() if dag.timetable.can_be_scheduled}
    last = continue_from(session, schedulable, now)
    found: dict[str, datetime | None] = dict.fromkeys(dags)
    for dag_id, dag in schedulable.items():
        info = dag.timetable.next_dagrun_info(
            last=last.get(dag_id), start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup, now=now
        )
        found[dag_id] = info.run_after if info else None
    return found


def continue_from(session: Session, dags: Mapping[str, Schedule], now: datetime) -> dict[str, DagRunInfo]:
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


def _past_taken(dag: Schedule, last: DagRunInfo | None, taken: set[datetime], now: datetime) -> DagRunInfo | None:
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
