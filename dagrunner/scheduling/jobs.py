"""Scheduler and backfill processes as `scheduler_job` rows: registration, heartbeat, liveness.

Another process decides whether a job is alive from this row: on the same host the pid settles it
(a SIGKILLed scheduler is known dead at once), elsewhere a heartbeat older than the threshold does.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dagrunner.persistence.audit import JOB, Change, record_event, transition
from dagrunner.persistence.models import JobState, JobType, SchedulerJob

HOSTNAME = socket.gethostname()


def register_job(session: Session, job_type: JobType, now: datetime, *, actor: str) -> SchedulerJob:
    """A `running` row for this process, audited as `job.started`."""
    job = SchedulerJob(
        job_type=job_type, host=HOSTNAME, pid=os.getpid(), started_at=now, latest_heartbeat=now,
        state=JobState.RUNNING,
    )  # fmt: skip
    session.add(job)
    session.flush()
    record_event(session, "job.started", actor=actor, when=now,
                 detail={"job_id": job.id, "job_type": job_type.value, "host": HOSTNAME, "pid": job.pid})  # fmt: skip
    return job


def heartbeat(session: Session, job_id: int, now: datetime) -> bool:
    """Stamp the job's heartbeat; False when it is no longer running (another scheduler declared it dead)."""
    result = session.execute(
        update(SchedulerJob)
        .where(SchedulerJob.id == job_id, SchedulerJob.state == JobState.RUNNING)
        .values(latest_heartbeat=now)
    )
    return bool(getattr(result, "rowcount", 0))


def end_job(
    session: Session, job_id: int, now: datetime, state: JobState = JobState.SUCCESS, *, actor: str, reason: str
) -> bool:
    """running -> `state`, audited; False when the job had ended already (e.g. found dead by another)."""
    job = session.execute(select(SchedulerJob.id, SchedulerJob.state).where(SchedulerJob.id == job_id)).first()
    if job is None or job.state != JobState.RUNNING:
        return False
    return bool(transition(session, JOB, [job], Change(state, now, actor, reason)))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def job_alive(job: SchedulerJob, now: datetime, threshold_s: float) -> bool:
    """A running job whose process exists (same host) or whose heartbeat is recent (other hosts)."""
    if job.state != JobState.RUNNING or job.ended_at is not None:
        return False
    if job.host == HOSTNAME:
        return pid_alive(job.pid) and now - job.latest_heartbeat < timedelta(seconds=max(threshold_s, 3600))
    return now - job.latest_heartbeat < timedelta(seconds=threshold_s)
