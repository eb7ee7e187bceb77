"""What a scheduler does about work that another (dead) scheduler left queued or running.

Two moments: `recover_orphans` when a scheduler starts (every job found dead then, and every instance
claimed by no live job), and `adopt_dead_jobs` on every live scheduler's heartbeat (a job silent for
`scheduler_adopt_after_sec`, or whose process on this host is gone, is declared dead and its work taken
over; on PostgreSQL its row is locked, SKIP LOCKED, so one scheduler adopts it). For each orphaned try:

- A try still running is left alone: in a live process on this host (that process records its own
  outcome: the worker that ran it survives its scheduler), or on another host while its heartbeat is
  fresh (a remote worker); the zombie check fails it if that heartbeat stops.
- A running try whose process is gone (or whose heartbeat stopped) is lost: it fails, or goes up for
  retry if tries remain.
- A queued try that never started is put back to `scheduled` without using a try (its `max_tries` goes
  up by one); a worker that still holds it is fenced out (it only starts tries that are still `queued` under the same try number and job).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from dagrunner.execution.base import TaskKey
from dagrunner.execution.recording import fail_lost_try, return_unstarted_try
from dagrunner.execution.retries import RetryPolicy
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence import queries
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.models import TaskInstance
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
    return settle_orphans(session, orphans, now=now, actor=actor, zombie_threshold_s=zombie_threshold_s, dags=dags,
                          reason="the scheduler that queued it is gone").counts  # fmt: skip


@dataclass
class Settled:
    """What became of one dead job's tries: counts by outcome, and the runs to decide again."""

    counts: dict[str, int] = field(default_factory=lambda: {"left_running": 0, "lost": 0, "requeued": 0})
    runs: set[tuple[str, str]] = field(default_factory=set)


def settle_orphans(
    session: Session,
    orphans: Iterable[TaskInstance],
    *,
    now: datetime,
    actor: str,
    zombie_threshold_s: float,
    dags: Mapping[str, SerializedDag],
    reason: str,
) -> Settled:
    """Queued tries go back to `scheduled`; running ones are left to their live process or failed as lost."""
    settled = Settled()
    lost = []
    for ti in orphans:
        if ti.state == TaskInstanceState.QUEUED:
            if return_unstarted_try(session, ti, ti.max_tries, reason=reason, now=now, actor=actor):
                settled.counts["requeued"] += 1
                settled.runs.add((ti.dag_id, ti.run_id))
        elif ti.state == TaskInstanceState.RUNNING:
            if _still_running(ti, now, zombie_threshold_s):
                settled.counts["left_running"] += 1  # its worker will record the outcome
            else:
                lost.append((TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), ti.try_number))
                settled.runs.add((ti.dag_id, ti.run_id))
    if lost:
        fail_lost_tries(session, lost, dags=dags, now=now, actor=actor,
                        reason=f"{reason} and the process running it is gone")  # fmt: skip
        settled.counts["lost"] = len(lost)
    return settled


def _still_running(ti: TaskInstance, now: datetime, zombie_threshold_s: float) -> bool:
    """On this host the kernel says whether its process lives; elsewhere its heartbeat does."""
    if ti.hostname == jobs.HOSTNAME:
        return jobs.pid_alive(ti.pid)
    return ti.last_heartbeat is not None and now - ti.last_heartbeat < timedelta(seconds=zombie_threshold_s)


@dataclass(frozen=True)
class Adoption:
    """One dead job taken over: which, how long it had been silent, and what became of its tries."""

    job_id: int
    job_type: str
    host: str
    pid: int
    silent_s: float
    settled: Settled


def adopt_dead_jobs(
    session: Session,
    *,
    now: datetime,
    my_job_id: int,
    adopt_after_s: float,
    zombie_threshold_s: float,
    actor: str,
    dags: Mapping[str, SerializedDag],
) -> list[Adoption]:
    """Declare dead every other running job silent for `adopt_after_s` (or, on this host, whose process is
    gone): running -> failed through the job state machine, then settle its tries, audited `job.adopted`.
    The caller's transaction makes it one step; PostgreSQL's SKIP LOCKED makes it one adopter's."""
    cutoff = now - timedelta(seconds=adopt_after_s)
    # Decided from a plain read first, then only the dead are locked: locking a live job's row would make
    # its heartbeat (inside its tick's transaction) wait for us while we may wait for its rows.
    dead = [
        j.id for j in queries.running_jobs(session) if j.id != my_job_id and not jobs.job_alive(j, now, adopt_after_s)
    ]
    adopted = []
    for job in queries.lock_running_jobs(session, dead):
        silent_s = (now - job.latest_heartbeat).total_seconds()
        why = "its process is gone" if job.latest_heartbeat >= cutoff else f"no heartbeat for {silent_s:.1f}s"
        reason = f"{why} (limit {adopt_after_s:g}s): its work was adopted by job {my_job_id}"
        if not jobs.end_job(session, job.id, now, JobState.FAILED, actor=actor, reason=reason):
            continue  # ended meanwhile (it stopped, or another scheduler adopted it first)
        settled = settle_orphans(session, queries.instances_claimed_by(session, job.id), now=now, actor=actor,
                                 zombie_threshold_s=zombie_threshold_s, dags=dags,
                                 reason=f"its scheduler job {job.id} died")  # fmt: skip
        record_event(session, "job.adopted", actor=actor, when=now, reason=reason,
                     detail={"job_id": job.id, "by_job": my_job_id, "silent_s": round(silent_s, 3),
                             **settled.counts})  # fmt: skip
        adopted.append(Adoption(job.id, job.job_type.value, job.host, job.pid, silent_s, settled))
    return adopted


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
