"""Run and task-instance states, their named groups, and the table of allowed transitions.

`persistence.audit.transition_task()` / `transition_run()` are the only code that changes a state; it refuses any change that is not
in `TASK_TRANSITIONS` / `RUN_TRANSITIONS`, so this table is the whole state machine in one place.
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


TI = TaskInstanceState

#: States a task instance never leaves on its own (only a clear or a mark moves it).
FINISHED: frozenset[TaskInstanceState] = frozenset({TI.SUCCESS, TI.FAILED, TI.SKIPPED, TI.UPSTREAM_FAILED, TI.REMOVED})
#: States that still need the scheduler's attention.
UNFINISHED: frozenset[TaskInstanceState] = frozenset(set(TaskInstanceState) - FINISHED)
#: States in which a try holds (or is about to hold) an executor slot.
OCCUPYING_SLOT: frozenset[TaskInstanceState] = frozenset({TI.QUEUED, TI.RUNNING})
#: Finished states that count as "it went wrong" for a run's outcome.
FAILED_STATES: frozenset[TaskInstanceState] = frozenset({TI.FAILED, TI.UPSTREAM_FAILED})

RUN_FINISHED: frozenset[DagRunState] = frozenset({DagRunState.SUCCESS, DagRunState.FAILED})
RUN_ACTIVE: frozenset[DagRunState] = frozenset({DagRunState.QUEUED, DagRunState.RUNNING})

_ANY_TI = frozenset(TaskInstanceState)

#: old state -> states it may move to. Clearing (-> none) and marking (-> success/failed) are allowed
#: from every finished state so that `tasks clear` and manual marks go through the same gate.
TASK_TRANSITIONS: dict[TaskInstanceState, frozenset[TaskInstanceState]] = {
    TI.NONE: frozenset({TI.SCHEDULED, TI.QUEUED, TI.UPSTREAM_FAILED, TI.SKIPPED, TI.REMOVED, TI.SUCCESS, TI.FAILED}),
    TI.SCHEDULED: frozenset({TI.QUEUED, TI.NONE, TI.UPSTREAM_FAILED, TI.SKIPPED, TI.REMOVED, TI.SUCCESS, TI.FAILED}),
    TI.QUEUED: frozenset(
        {TI.RUNNING, TI.SCHEDULED, TI.NONE, TI.FAILED, TI.UP_FOR_RETRY, TI.SUCCESS, TI.SKIPPED, TI.REMOVED}
    ),
    TI.RUNNING: frozenset(
        {
            TI.SUCCESS,
            TI.FAILED,
            TI.UP_FOR_RETRY,
            TI.UP_FOR_RESCHEDULE,
            TI.SKIPPED,
            TI.RESTARTING,
            TI.DEFERRED,
            TI.REMOVED,
        }
    ),
    TI.UP_FOR_RETRY: frozenset({TI.SCHEDULED, TI.QUEUED, TI.NONE, TI.FAILED, TI.SUCCESS, TI.REMOVED}),
    TI.UP_FOR_RESCHEDULE: frozenset({TI.SCHEDULED, TI.QUEUED, TI.NONE, TI.FAILED, TI.SUCCESS, TI.REMOVED}),
    TI.DEFERRED: frozenset({TI.SCHEDULED, TI.QUEUED, TI.NONE, TI.FAILED, TI.SUCCESS, TI.REMOVED}),
    TI.RESTARTING: frozenset({TI.NONE, TI.UP_FOR_RETRY, TI.FAILED}),
    TI.SUCCESS: frozenset({TI.NONE, TI.FAILED}),
    TI.FAILED: frozenset({TI.NONE, TI.SUCCESS}),
    TI.SKIPPED: frozenset({TI.NONE, TI.SUCCESS, TI.FAILED}),
    TI.UPSTREAM_FAILED: frozenset({TI.NONE, TI.SUCCESS, TI.FAILED}),
    TI.REMOVED: frozenset({TI.NONE}),
}

RUN_TRANSITIONS: dict[DagRunState, frozenset[DagRunState]] = {
    DagRunState.QUEUED: frozenset({DagRunState.RUNNING, DagRunState.SUCCESS, DagRunState.FAILED}),
    DagRunState.RUNNING: frozenset({DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.QUEUED}),
    DagRunState.SUCCESS: frozenset({DagRunState.QUEUED, DagRunState.FAILED}),
    DagRunState.FAILED: frozenset({DagRunState.QUEUED, DagRunState.SUCCESS}),
}

assert set(TASK_TRANSITIONS) == set(_ANY_TI), "every task state needs a row in TASK_TRANSITIONS"


def task_transition_allowed(old: TaskInstanceState, new: TaskInstanceState) -> bool:
    return new in TASK_TRANSITIONS[old]


def run_transition_allowed(old: DagRunState, new: DagRunState) -> bool:
    return new in RUN_TRANSITIONS[old]
