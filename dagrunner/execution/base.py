"""The executor interface and the messages that cross it: the map of the execution layer.

The scheduler decides *what* runs and writes `queued`; an executor decides *where* and *how*. The side
that runs a try (a warm worker for `local`, the calling process for `inline`, a Celery worker later)
records `running` and the outcome itself through `execution.recording`, fenced on (try_number, state),
so the database stays the truth even if the scheduler dies mid-try. Events only wake the scheduler and
tell it which runs to look at again; they carry no state the database does not already have.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dagrunner.labels import task_label


@dataclass(frozen=True, order=True)
class TaskKey:
    """One task instance: a task in a run (map_index -1 when the task is not mapped)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    def label(self) -> str:
        return task_label(self.dag_id, self.task_id, self.map_index, self.run_id)


@dataclass(frozen=True)
class RunFacts:
    """What a try needs to know about its run to build the template context, without a query."""

    run_type: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    run_after: datetime
    conf: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkItem:
    """One try to run: frozen, picklable, and all an executor needs."""

    key: TaskKey
    try_number: int
    fileloc: str
    run: RunFacts
    queue: str = "default"
    priority: int = 1
    pool_slots: int = 1
    #: The scheduler job (or backfill / dags-test process) that queued it; recording is fenced on it.
    queued_by_job_id: int | None = None
    #: The names of the assets the task reads (`inlets`): its try reads their events when it starts.
    inlets: tuple[str, ...] = ()


#: (task_id, map_index, key) -> value: XComs as a try reads them (pre-fetched by its worker, or loaded).
XComRows = dict[tuple[str, int, str], Any]

EventKind = Literal["started", "finished", "lost"]


@dataclass(frozen=True)
class TryEvent:
    """Something happened to a try. `finished` and `lost` free the executor slot.

    `lost` means the executor could not record the outcome itself (its worker died); the scheduler
    then records the failure through `execution.recording.record_lost`.
    """

    key: TaskKey
    try_number: int
    kind: EventKind
    state: str | None = None  # the recorded TaskInstanceState value for `finished`
    detail: str = ""


class Executor(ABC):
    """start / submit / events / kill / shutdown: the whole contract every executor meets."""

    name: str = "base"

    @abstractmethod
    def start(self) -> None:
        """Get ready to accept work (start worker processes, connect to a broker...)."""

    @abstractmethod
    def submit(self, item: WorkItem) -> None:
        """Start the try, or queue it inside the executor. Must not block on the task itself,
        except for `inline`, which runs it before returning by design."""

    @abstractmethod
    def events(self, timeout: float | None = 0.0) -> list[TryEvent]:
        """Events since the last call; waits up to `timeout` seconds for the first one (None: forever)."""

    @property
    @abstractmethod
    def slots_free(self) -> int:
        """How many more tries this executor takes now (its parallelism minus what it runs)."""

    @abstractmethod
    def running(self) -> set[tuple[TaskKey, int]]:
        """(key, try_number) of every try submitted and not yet finished or lost."""

    @abstractmethod
    def kill(self, key: TaskKey, reason: str) -> None:
        """Stop a running try (its whole process tree); it finishes as failed with `reason`."""

    def wake(self) -> None:  # noqa: B027 - optional: an executor that never waits has nothing to cut short
        """Make a waiting (or the next) `events(timeout)` return at once, with whatever it has. Thread-safe:
        `Scheduler.nudge()` calls it when another process created runs the scheduler should start now."""

    @abstractmethod
    def shutdown(self, grace_s: float) -> list[tuple[TaskKey, int]]:
        """Stop taking work, wait up to `grace_s` for running tries, then stop the rest.
        Returns the tries that were still running when the grace period ran out (already killed)."""
