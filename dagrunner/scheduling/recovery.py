"""What a scheduler does about work that another (dead) scheduler left queued or running.

- A try still running in a live process on this host is left alone: that process records its own
  outcome (the worker that ran it survives its scheduler), so it is never started a second time.
- A running try whose process is gone is lost: it fails, or goes up for retry if tries remain.
- A queued try that never started is put back to `scheduled` without using a try (its `max_tries` goes
  up by one); a worker that still holds it is fenced out (it only starts tries that are still `queued` under the same try number and job).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from dagrunner.execution.base import TaskKey
from dagrunner.execution.recording import fail_lost_try, return_unstarted_try
from dagrunner.execution.retries import RetryPolicy
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence import queries
from dagrunner.scheduling import jobs
from dagrunner.states import JobState, TaskInstanceState


def recover_orphans(
    session: Session,
    *,
    now: datetime,
    my_job_id: int,
    actor: str,
    zombie_threshold_s: float,
    dags: Mapping[str, SerializedDag],
) -> dict[str, int]:
    """Adopt or reset the queued/running work of dead jobs; mark those jobs failed. Returns counts."""
    running_jobs = queries.running_jobs(session)
    dead = {job.id for job in running_jobs if job.id != my_job_id and not jobs.job_alive(job, now, zombie_threshold_s)}
    for job in running_jobs:
        if job.id in dead:
            jobs.end_job(session, job.id, now, JobState.FAILED, actor=actor, reason="found dead by another job")
    live = {job.id for job in running_jobs if job.id not in dead}
    orphans = [ti for ti in queries.claimed_instances(session) if ti.queued_by_job_id not in live]
    counts = {"left_running": 0, "lost": 0, "requeued": 0}
    requeue = [ti for ti in orphans if ti.state == TaskInstanceState.QUEUED]
    reason = "the scheduler that queued it is gone"
    counts["requeued"] = sum(
        return_unstarted_try(session, ti, ti.max_tries, reason=reason, now=now, actor=actor) for ti in requeue
    )
    lost = []
    for ti in orphans:
        if ti.state != TaskInstanceState.RUNNING:
            continue
        if ti.hostname == jobs.HOSTNAME and jobs.pid_alive(ti.pid):
            counts["left_running"] += 1  # still alive: its worker will record the outcome
        else:
            lost.append((TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), ti.try_number))
    if lost:
        fail_lost_tries(session, lost, dags=dags, now=now, actor=actor,
                          reason="its scheduler died and the process running it is gone")  # fmt: skip
        counts["lost"] = len(lost)
    return counts


def fail_lost_tries(
    session: Session,
    lost: Iterable[tuple[TaskKey, int]],
    *,
    dags: Mapping[str, SerializedDag],
    now: datetime,
    actor: str,
    reason: str,
    interrupted: bool = False,
) -> None:
    """Fail (or retry) each lost try with the retry policy of its task (`interrupted`: by a shutdown)."""
    for key, try_number in lost:
        dag = dags.get(key.dag_id)
        spec = dag.task_dict.get(key.task_id) if dag else None
        policy = RetryPolicy.from_spec(spec) if spec else RetryPolicy.none()
        fail_lost_try(
            session, key, try_number, reason=reason, policy=policy, now=now, actor=actor, interrupted=interrupted
        )
