"""Every state enum of the metadata database, their named groups, and the tables of allowed transitions.

`persistence.audit.transition()` is the only code that changes a state (of a task instance, a run, a try,
a scheduler job or a backfill); it refuses any change that is not in the matching `*_TRANSITIONS` table, so
these tables are the whole state machine in one place.
"""

from __future__ import annotations

from enum import StrEnum


class TaskInstanceState(StrEnum):
    """State of one task in one run (Airflow's names; `none` is Airflow's `None`)."""

    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"
    RESTARTING = "restarting"
    DEFERRED = "deferred"


class DagRunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class TryState(StrEnum):
    """State of one attempt (a `task_try` row): running, then the state its task instance ended in.

    Closed once, never changed after: a try row records history, so its table allows only leaving `running`.
    """

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    DEFERRED = "deferred"


class JobState(StrEnum):
    """State of a scheduler, backfill or `dags test` process (a `scheduler_job` row)."""

    RUNNING = "running"
    SUCCESS = "success"  # stopped cleanly
    FAILED = "failed"  # died, or was found dead by another job


class BreakerState(StrEnum):
    """State of a pool's circuit breaker (the `pool.breaker_state` column; see `scheduling.breakers`)."""

    CLOSED = "closed"  # tries run as the pool's slots allow
    OPEN = "open"  # too many consecutive failed tries: new tries are held until the cool-down ends
    HALF_OPEN = "half_open"  # the cool-down ended: one probe try runs; its outcome closes or reopens


class BackfillState(StrEnum):
    """State of one `dagrunner backfill` request (a `backfill` row)."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States a task instance never leaves on its own (only a clear or a mark moves it).
FINISHED: frozenset[TaskInstanceState] = frozenset(
    {
        TaskInstanceState.SUCCESS,
        TaskInstanceState.FAILED,
        TaskInstanceState.SKIPPED,
        TaskInstanceState.UPSTREAM_FAILED,
        TaskInstanceState.REMOVED,
    }
)
#: States that still need the scheduler's attention.
UNFINISHED: frozenset[TaskInstanceState] = frozenset(set(TaskInstanceState) - FINISHED)
#: States in which a try holds (or is about to hold) an executor slot.
OCCUPYING_SLOT: frozenset[TaskInstanceState] = frozenset({TaskInstanceState.QUEUED, TaskInstanceState.RUNNING})
#: Finished states that count as "it went wrong" for a run's outcome.
FAILED_STATES: frozenset[TaskInstanceState] = frozenset({TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED})

RUN_FINISHED: frozenset[DagRunState] = frozenset({DagRunState.SUCCESS, DagRunState.FAILED})
RUN_ACTIVE: frozenset[DagRunState] = frozenset({DagRunState.QUEUED, DagRunState.RUNNING})


#: old state -> states it may move to. Clearing (-> none) and marking (-> success/failed) are allowed
#: from every finished state so that `tasks clear` and manual marks go through the same gate.
TASK_TRANSITIONS: dict[TaskInstanceState, frozenset[TaskInstanceState]] = {
    TaskInstanceState.NONE: frozenset(
        {
            TaskInstanceState.SCHEDULED,
            TaskInstanceState.QUEUED,
            TaskInstanceState.UPSTREAM_FAILED,
            TaskInstanceState.SKIPPED,
            TaskInstanceState.REMOVED,
            TaskInstanceState.SUCCESS,
            TaskInstanceState.FAILED,
        }
    ),
    TaskInstanceState.SCHEDULED: frozenset(
        {
            TaskInstanceState.QUEUED,
            TaskInstanceState.NONE,
            TaskInstanceState.UPSTREAM_FAILED,
            TaskInstanceState.SKIPPED,
            TaskInstanceState.REMOVED,
            TaskInstanceState.SUCCESS,
            TaskInstanceState.FAILED,
        }
    ),
    TaskInstanceState.QUEUED: frozenset(
        {
            TaskInstanceState.RUNNING,
            TaskInstanceState.SCHEDULED,
            TaskInstanceState.NONE,
            TaskInstanceState.FAILED,
            TaskInstanceState.UP_FOR_RETRY,
            TaskInstanceState.SUCCESS,
            TaskInstanceState.SKIPPED,
            TaskInstanceState.REMOVED,
        }
    ),
    TaskInstanceState.RUNNING: frozenset(
        {
            TaskInstanceState.SUCCESS,
            TaskInstanceState.FAILED,
            TaskInstanceState.UP_FOR_RETRY,
            TaskInstanceState.UP_FOR_RESCHEDULE,
            TaskInstanceState.SKIPPED,
            TaskInstanceState.RESTARTING,
            TaskInstanceState.DEFERRED,
            TaskInstanceState.REMOVED,
        }
    ),
    TaskInstanceState.UP_FOR_RETRY: frozenset(
        {
            TaskInstanceState.SCHEDULED,
            TaskInstanceState.QUEUED,
            TaskInstanceState.NONE,
            TaskInstanceState.FAILED,
            TaskInstanceState.SUCCESS,
            TaskInstanceState.REMOVED,
            TaskInstanceState.SKIPPED,
        }
    ),
    TaskInstanceState.UP_FOR_RESCHEDULE: frozenset(
        {
            TaskInstanceState.SCHEDULED,
            TaskInstanceState.QUEUED,
            TaskInstanceState.NONE,
            TaskInstanceState.FAILED,
            TaskInstanceState.SUCCESS,
            TaskInstanceState.REMOVED,
            TaskInstanceState.SKIPPED,
        }
    ),
    TaskInstanceState.DEFERRED: frozenset(
        {
            TaskInstanceState.SCHEDULED,
            TaskInstanceState.QUEUED,
            TaskInstanceState.NONE,
            TaskInstanceState.FAILED,
            TaskInstanceState.SUCCESS,
            TaskInstanceState.REMOVED,
            TaskInstanceState.SKIPPED,
        }
    ),
    TaskInstanceState.RESTARTING: frozenset(
        {TaskInstanceState.NONE, TaskInstanceState.UP_FOR_RETRY, TaskInstanceState.FAILED}
    ),
    TaskInstanceState.SUCCESS: frozenset({TaskInstanceState.NONE, TaskInstanceState.FAILED, TaskInstanceState.SKIPPED}),
    TaskInstanceState.FAILED: frozenset({TaskInstanceState.NONE, TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED}),
    TaskInstanceState.SKIPPED: frozenset({TaskInstanceState.NONE, TaskInstanceState.SUCCESS, TaskInstanceState.FAILED}),
    TaskInstanceState.UPSTREAM_FAILED: frozenset(
        {TaskInstanceState.NONE, TaskInstanceState.SUCCESS, TaskInstanceState.FAILED, TaskInstanceState.SKIPPED}
    ),
    TaskInstanceState.REMOVED: frozenset({TaskInstanceState.NONE}),
}

RUN_TRANSITIONS: dict[DagRunState, frozenset[DagRunState]] = {
    DagRunState.QUEUED: frozenset({DagRunState.RUNNING, DagRunState.SUCCESS, DagRunState.FAILED}),
    DagRunState.RUNNING: frozenset({DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.QUEUED}),
    DagRunState.SUCCESS: frozenset({DagRunState.QUEUED, DagRunState.FAILED}),
    DagRunState.FAILED: frozenset({DagRunState.QUEUED, DagRunState.SUCCESS}),
}

#: A try leaves `running` once, for the state its instance ended in; a closed try never changes again.
TRY_TRANSITIONS: dict[TryState, frozenset[TryState]] = {
    TryState.RUNNING: frozenset(set(TryState) - {TryState.RUNNING}),
    **{state: frozenset() for state in TryState if state != TryState.RUNNING},
}

#: A job ends once; one found dead by another job is failed by that job.
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RUNNING: frozenset({JobState.SUCCESS, JobState.FAILED}),
    JobState.SUCCESS: frozenset(),
    JobState.FAILED: frozenset(),
}

#: A backfill ends once, when its runs have (an interrupted one stays running and is resumed as it is).
BACKFILL_TRANSITIONS: dict[BackfillState, frozenset[BackfillState]] = {
    BackfillState.RUNNING: frozenset({BackfillState.SUCCESS, BackfillState.FAILED, BackfillState.CANCELLED}),
    BackfillState.SUCCESS: frozenset(),
    BackfillState.FAILED: frozenset(),
    BackfillState.CANCELLED: frozenset(),
}

#: A breaker opens after N consecutive failed tries, lets one probe through after its cool-down (half
#: open), and closes on the probe's success (or `pools reset`), or opens again on its failure.
BREAKER_TRANSITIONS: dict[BreakerState, frozenset[BreakerState]] = {
    BreakerState.CLOSED: frozenset({BreakerState.OPEN}),
    BreakerState.OPEN: frozenset({BreakerState.HALF_OPEN, BreakerState.CLOSED}),
    BreakerState.HALF_OPEN: frozenset({BreakerState.CLOSED, BreakerState.OPEN}),
}

for _states, _table in (
    (TaskInstanceState, TASK_TRANSITIONS),
    (DagRunState, RUN_TRANSITIONS),
    (TryState, TRY_TRANSITIONS),
    (JobState, JOB_TRANSITIONS),
    (BackfillState, BACKFILL_TRANSITIONS),
    (BreakerState, BREAKER_TRANSITIONS),
):
    assert set(_table) == set(_states), f"every {_states.__name__} needs a row in its transition table"
