"""What the chaos tests ask of running schedulers: which one to kill so that it leaves work behind."""

from __future__ import annotations

from sqlalchemy import select

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import SchedulerJob, TaskInstance
from dagrunner.states import JobState, TaskInstanceState


def busy_scheduler(db_url: str) -> tuple[int, int] | None:
    """(job id, pid) of a running scheduler job that has tries queued or running, once there is one."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            row = s.execute(
                select(SchedulerJob.id, SchedulerJob.pid)
                .join(TaskInstance, TaskInstance.queued_by_job_id == SchedulerJob.id)
                .where(SchedulerJob.state == JobState.RUNNING)
                .where(TaskInstance.state.in_((TaskInstanceState.QUEUED, TaskInstanceState.RUNNING)))
                .limit(1)
            ).first()
            return (row.id, row.pid) if row is not None else None
    finally:
        engine.dispose()
