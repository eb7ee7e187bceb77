"""InlineExecutor: runs each try in the calling process, before `submit` returns (the debug executor).

For `dags test` and debugging: a breakpoint in a task stops right there. The try's output goes to its
log file (fds 1 and 2 and sys.stdout/stderr are pointed at it and restored afterwards), and
execution_timeout is enforced with SIGALRM when submit runs on the main thread. There is no isolation:
a task that calls os._exit, segfaults or leaks memory takes the calling process with it; that is what
the local executor is for.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import Engine

from dagrunner.clock import Clock, SystemClock
from dagrunner.execution import attempt
from dagrunner.execution.base import Executor, TaskKey, TryEvent, WorkItem
from dagrunner.execution.dag_cache import DagCache
from dagrunner.execution.external_runs import DbRunServices
from dagrunner.execution.logs import log_path, open_log, output_to
from dagrunner.execution.masking import SecretMasker
from dagrunner.execution.recording import XComRows, read_xcoms
from dagrunner.execution.runner import run_callbacks
from dagrunner.execution.secrets import DatabaseSecrets
from dagrunner.persistence.engine import session_scope
from dagrunner.settings import Settings


class InlineExecutor(Executor):
    """One try at a time, in this process, synchronously."""

    name = "inline"

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        actor: str,
        clock: Clock | None = None,
    ) -> None:
        """`clock` stamps the recorded times (start, end, next_try_at): a FakeClock in scheduler tests."""
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.engine = engine
        self.actor = actor
        self.cache = DagCache(
            dags_folder=settings.dags_folder,
            plugins_folder=settings.plugins_folder,
            import_timeout_s=settings.dagbag_import_timeout,
        )
        self._events: list[TryEvent] = []
        self._secrets = DatabaseSecrets(engine, settings.state_folder, actor=actor)
        self._woken = threading.Event()

    def start(self) -> None:
        """Nothing to start: tries run inside `submit`."""

    def submit(self, item: WorkItem) -> None:
        self._events.append(self.run_try(item))

    def events(self, timeout: float | None = 0.0) -> list[TryEvent]:
        """What `submit` produced. Nothing runs between calls, so with none pending this just sleeps
        `timeout` seconds (the scheduler's idle wait), cut short by `wake()`; None returns at once."""
        if not self._events and timeout:
            self._woken.wait(timeout)
        self._woken.clear()
        events, self._events = self._events, []
        return events

    @property
    def slots_free(self) -> int:
        """`parallelism`: each submitted try runs to its end inside `submit`, so all of them fit."""
        return self.settings.parallelism

    def running(self) -> set[tuple[TaskKey, int]]:
        return set()

    def kill(self, key: TaskKey, reason: str) -> None:
        """Nothing runs outside `submit`, so there is nothing to kill."""

    def wake(self) -> None:
        self._woken.set()

    def shutdown(self, grace_s: float) -> list[tuple[TaskKey, int]]:  # noqa: ARG002 - the Executor interface
        return []

    # --- one try -------------------------------------------------------------------------------------

    def run_try(self, item: WorkItem) -> TryEvent:
        """Start (fenced), run, record and call back one try; the event that says how it finished."""
        task, load_error = attempt.load_task(self.cache, item)
        path = log_path(self.settings.logs_folder, item.key, item.try_number)
        start = attempt.begin(
            self.engine,
            item,
            attempt.upstream_of(task),
            log_file=str(path),
            pid=os.getpid(),
            actor=self.actor,
            clock=self.clock,
        )
        if isinstance(start, str):
            return TryEvent(item.key, item.try_number, "finished", detail=f"not started: {start}")
        masker = SecretMasker.from_environ()
        fd = open_log(path)
        try:
            attempt.write_header(fd, item, pid=os.getpid())
            prepared: attempt.Prepared | None = None
            with output_to(fd, masker):
                if task is None:
                    outcome = attempt.load_failure(load_error or "the task could not be loaded")
                else:
                    services = DbRunServices(self.engine, item.key, clock=self.clock, runs_progress_while_waiting=False)
                    outcome, prepared = attempt.run_here(task, item, start, masker, self._load_xcoms(item),
                                                        services=services, secrets=self._secrets)  # fmt: skip
            policy = attempt.policy_of(task)
            state = attempt.finish(self.engine, item, outcome, policy=policy, actor=self.actor, clock=self.clock)
            attempt.write_result(fd, item, state, outcome)
            if prepared is not None:
                with output_to(fd, masker):
                    errors = run_callbacks(prepared.task, state, prepared.context, masker=masker)
                attempt.audit_callback_errors(self.engine, item, errors, actor=self.actor, clock=self.clock)
        finally:
            os.close(fd)
        return TryEvent(item.key, item.try_number, "finished", state=state.value, detail=outcome.error)

    def _load_xcoms(self, item: WorkItem) -> attempt.XComLoader:
        def load(task_ids: list[str]) -> XComRows:
            with session_scope(self.engine, readonly=True) as session:
                return read_xcoms(session, item.key.dag_id, item.key.run_id, task_ids)

        return load
