"""Backfill: plan which logical dates to create, re-run or skip, then hand the runs to a private scheduler.

Design (issue #4): the backfill process executes its own runs. Each run it creates or re-runs is marked
`owner = "backfill:<id>"`; the daemon scheduler only executes unowned runs, so no task instance is ever
executed by both, and the database's unique (dag_id, logical_date) index stops a daemon and a backfill
from creating the same scheduled/backfill run twice. We chose this over letting the daemon execute
backfill runs because the backfill then works the same with or without a daemon, honours its own
`--max-active-runs` and `--executor`, and stops (Ctrl-C) without touching the daemon's work.

Resuming: the same DAG and date range (and reprocess behaviour) names the same unfinished backfill row,
so running the command again adopts its runs: finished ones stay as they are, unfinished ones continue
(tries killed by the interruption run again), and no run is created twice. A try the interruption killed
says so itself: its `task_try` row is `interrupted` (the executor's shutdown killed it), so a try that
failed on its own is never mistaken for one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.errors import DuplicateRunError, SchedulingError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import BACKFILL, RUN, TASK, Change, record_event, transition
from dagrunner.persistence.models import (
    Backfill,
    BackfillState,
    DagRun,
    DagRunType,
    SchedulerJob,
    TaskInstance,
    TaskTry,
)
from dagrunner.scheduling import jobs
from dagrunner.scheduling.dagruns import create_run
from dagrunner.scheduling.operations import select_for_clear
from dagrunner.states import FAILED_STATES, OCCUPYING_SLOT, RUN_ACTIVE, RUN_FINISHED, DagRunState, TaskInstanceState
from dagrunner.timetables import DagRunInfo, make_run_id

Reprocess = Literal["none", "failed", "completed"]
#: The `--reprocess-behavior` choices, in the order the help lists them.
REPROCESS_BEHAVIOURS: tuple[Reprocess, ...] = ("none", "failed", "completed")
Action = Literal["create", "rerun", "resume", "skip", "done"]


@dataclass(frozen=True)
class PlanRow:
    """What the backfill does for one logical date, and why."""

    info: DagRunInfo
    action: Action
    run_id: str
    existing_state: str | None
    why: str

    def to_json(self) -> dict[str, Any]:
        return {
            "logical_date": self.info.logical_date.isoformat(),
            "data_interval_start": self.info.data_interval_start.isoformat(),
            "data_interval_end": self.info.data_interval_end.isoformat(),
            "run_id": self.run_id,
            "action": self.action,
            "existing_state": self.existing_state,
            "why": self.why,
        }


def as_reprocess(value: str) -> Reprocess:
    """A typed reprocess behaviour from what the user typed; SchedulingError naming the choices otherwise."""
    for choice in REPROCESS_BEHAVIOURS:
        if value == choice:
            return choice
    raise SchedulingError(f"reprocess behaviour {value!r} is not one of {', '.join(REPROCESS_BEHAVIOURS)}")


def owner_of(backfill_id: int) -> str:
    return f"backfill:{backfill_id}"


def check_request(dag: SerializedDag, *, run_backwards: bool) -> None:
    if run_backwards:
        past = [t.task_id for t in dag.tasks if t.depends_on_past]
        if past:
            raise SchedulingError(
                f"--run-backwards cannot be used with DAG {dag.dag_id!r}: tasks {', '.join(past)} use "
                "depends_on_past, which needs older runs to finish first; backfill forwards instead"
            )


def find_resumable(
    session: Session, dag_id: str, start: datetime, end: datetime, reprocess: Reprocess
) -> Backfill | None:
    """An unfinished backfill with the same DAG, range and reprocess behaviour: running again resumes it."""
    return session.scalars(
        select(Backfill)
        .where(
            Backfill.dag_id == dag_id,
            Backfill.from_date == start,
            Backfill.to_date == end,
            Backfill.reprocess_behavior == reprocess,
            Backfill.state == BackfillState.RUNNING,
            Backfill.dry_run.is_(False),
        )
        .order_by(Backfill.id.desc())
        .limit(1)
    ).first()


def plan(
    session: Session,
    dag: SerializedDag,
    start: datetime,
    end: datetime,
    *,
    reprocess: Reprocess,
    run_backwards: bool = False,
    resuming: Backfill | None = None,
) -> list[PlanRow]:
    """One row per logical date the timetable yields in [start, end], oldest first (newest with backwards)."""
    infos = dag.timetable.runs_between(start, end, start_date=dag.start_date, end_date=dag.end_date)
    existing = _existing_runs(session, dag.dag_id, [i.logical_date for i in infos])
    rows = [_decide(info, existing.get(info.logical_date), reprocess, resuming) for info in infos]
    return list(reversed(rows)) if run_backwards else rows


def _existing_runs(session: Session, dag_id: str, dates: list[datetime]) -> dict[datetime, DagRun]:
    if not dates:
        return {}
    runs = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date.in_(dates)).order_by(DagRun.id)
    ).all()
    found: dict[datetime, DagRun] = {}
    for run in runs:  # a scheduled/backfill run wins over a manual one at the same date
        if run.logical_date not in found or run.run_type in (DagRunType.SCHEDULED, DagRunType.BACKFILL):
            found[run.logical_date] = run
    return found


def _decide(info: DagRunInfo, run: DagRun | None, reprocess: Reprocess, resuming: Backfill | None) -> PlanRow:
    if run is None:
        return PlanRow(info, "create", make_run_id("backfill", info.logical_date), None, "no run for this date yet")
    state = run.state.value
    if resuming is not None and run.backfill_id == resuming.id:
        if run.state in RUN_ACTIVE:
            return PlanRow(info, "resume", run.run_id, state, "this backfill's run was interrupted: continue it")
        return PlanRow(info, "done", run.run_id, state, "this backfill already finished it")
    if run.state in RUN_ACTIVE:
        return PlanRow(info, "skip", run.run_id, state, f"run is {state}: a queued or running run is never touched")
    if reprocess == "completed" or (reprocess == "failed" and run.state == DagRunState.FAILED):
        return PlanRow(info, "rerun", run.run_id, state, f"--reprocess-behavior {reprocess}")
    return PlanRow(info, "skip", run.run_id, state, f"run exists ({state}); --reprocess-behavior {reprocess} keeps it")


def start_backfill(
    session: Session,
    dag: SerializedDag,
    rows: Iterable[PlanRow],
    *,
    start: datetime,
    end: datetime,
    reprocess: Reprocess,
    max_active_runs: int | None,
    run_backwards: bool,
    conf: dict[str, Any],
    actor: str,
    now: datetime,
    resuming: Backfill | None = None,
) -> tuple[Backfill, list[str]]:
    """Record the backfill (or adopt the one being resumed) and create / re-run its runs. Returns the
    backfill and the run ids it executes (created, re-run or resumed), in execution order."""
    backfill = resuming or _new_backfill(session, dag, start, end, reprocess, max_active_runs, run_backwards, conf,
                                         actor, now)  # fmt: skip
    if resuming is not None:
        _refuse_if_live(session, dag.dag_id, owner_of(backfill.id), now)
    owner = owner_of(backfill.id)
    record_event(session, "backfill.resumed" if resuming else "backfill.started", actor=actor, dag_id=dag.dag_id,
                 detail={"backfill_id": backfill.id, "from": start.isoformat(), "to": end.isoformat(),
                         "reprocess_behavior": reprocess, "run_backwards": run_backwards,
                         "max_active_runs": max_active_runs, "conf": conf}, when=now)  # fmt: skip
    run_ids: list[str] = []
    for row in rows:
        if row.action == "create":
            try:
                run = create_run(session, dag, row.info, run_type=DagRunType.BACKFILL, actor=actor, now=now,
                                 run_id=row.run_id, conf=conf, backfill_id=backfill.id, owner=owner)  # fmt: skip
            except DuplicateRunError:  # a scheduler created this date after the plan was made: leave it
                continue
            record_event(session, "backfill.run_created", actor=actor, dag_id=dag.dag_id, run_id=run.run_id,
                         detail={"backfill_id": backfill.id}, when=now)  # fmt: skip
            run_ids.append(run.run_id)
        elif row.action == "rerun":
            _rerun(session, dag, row.run_id, reprocess, backfill.id, owner, actor, now)
            run_ids.append(row.run_id)
        elif row.action == "resume":
            _resume(session, dag, row.run_id, actor, now)
            run_ids.append(row.run_id)
    return backfill, run_ids


def _new_backfill(session: Session, dag: SerializedDag, start: datetime, end: datetime, reprocess: Reprocess,
                  max_active_runs: int | None, run_backwards: bool, conf: dict[str, Any], actor: str,
                  now: datetime) -> Backfill:  # fmt: skip
    backfill = Backfill(
        dag_id=dag.dag_id, from_date=start, to_date=end, reprocess_behavior=reprocess,
        max_active_runs=max_active_runs, run_backwards=run_backwards, conf=conf, dry_run=False,
        created_by=actor, created_at=now, state=BackfillState.RUNNING,
    )  # fmt: skip
    session.add(backfill)
    session.flush()
    return backfill


def _refuse_if_live(session: Session, dag_id: str, owner: str, now: datetime) -> None:
    """Two processes must not drive one backfill: refuse while another live job holds its tries."""
    job_ids = session.scalars(
        select(TaskInstance.queued_by_job_id)
        .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
        .where(DagRun.owner == owner, TaskInstance.state.in_(OCCUPYING_SLOT))
        .distinct()
    ).all()
    for job in session.scalars(select(SchedulerJob).where(SchedulerJob.id.in_([j for j in job_ids if j]))):
        if jobs.job_alive(job, now, threshold_s=300):
            raise SchedulingError(
                f"this backfill of {dag_id} is still being run by process {job.pid} on {job.host}; "
                "stop it first (Ctrl-C) or wait for it"
            )


def _rerun(session: Session, dag: SerializedDag, run_id: str, reprocess: Reprocess, backfill_id: int, owner: str,
           actor: str, now: datetime) -> None:  # fmt: skip
    """Re-run an existing finished run: every task (completed) or the failed ones and their downstream."""
    from dagrunner.scheduling.operations import clear

    run = session.scalars(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id)).one()
    tis = select_for_clear(session, dag, downstream=True, only_failed=reprocess == "failed", run_ids=[run_id])
    run.owner = owner
    run.backfill_id = backfill_id
    clear(session, dag, tis, actor=actor, now=now)
    if run.state in RUN_FINISHED:  # nothing was cleared (e.g. no task instance failed): still re-run it
        transition(session, RUN, [run], Change(DagRunState.QUEUED, now, actor, "re-run by backfill"))
    record_event(session, "backfill.run_rerun", actor=actor, dag_id=dag.dag_id, run_id=run_id,
                 detail={"backfill_id": backfill_id, "reprocess_behavior": reprocess,
                         "cleared": len(tis)}, when=now)  # fmt: skip


def _resume(session: Session, dag: SerializedDag, run_id: str, actor: str, now: datetime) -> None:
    """Tries the interruption killed run again (they did not fail on their own); everything else stays."""
    killed = interrupted_instances(session, dag.dag_id, run_id)
    if killed:
        for ti in killed:
            ti.max_tries = ti.try_number + dag.task(ti.task_id).retries
            ti.next_try_at = None
        change = Change(TaskInstanceState.NONE, now, actor, "interrupted by a stopped backfill; resumed")
        transition(session, TASK, killed, change)


def interrupted_instances(session: Session, dag_id: str, run_id: str) -> list[TaskInstance]:
    """The run's failed (or up for retry) instances whose latest try an executor's shutdown killed."""
    latest_try = (TaskTry.ti_id == TaskInstance.id) & (TaskTry.try_number == TaskInstance.try_number)
    query = (
        select(TaskInstance)
        .join(TaskTry, latest_try)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.state.in_(FAILED_STATES | {TaskInstanceState.UP_FOR_RETRY}),
            TaskTry.interrupted.is_(True),
        )
    )
    return list(session.scalars(query))


def finish_backfill(session: Session, backfill_id: int, *, actor: str, now: datetime, interrupted: bool) -> str:
    """Close the backfill row when all its runs are finished; returns its state."""
    backfill = session.get(Backfill, backfill_id)
    assert backfill is not None
    states = session.scalars(select(DagRun.state).where(DagRun.backfill_id == backfill_id)).all()
    if interrupted or any(s in RUN_ACTIVE for s in states):
        record_event(session, "backfill.interrupted", actor=actor, dag_id=backfill.dag_id,
                     detail={"backfill_id": backfill_id, "unfinished": sum(s in RUN_ACTIVE for s in states)},
                     when=now)  # fmt: skip
        return BackfillState.RUNNING.value
    state = BackfillState.FAILED if DagRunState.FAILED in states else BackfillState.SUCCESS
    change = Change(state, now, actor, "every run of the backfill finished", detail={"runs": len(states)})
    transition(session, BACKFILL, [backfill], change)
    return state.value
