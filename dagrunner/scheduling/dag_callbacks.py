"""DAG-level callbacks, the scheduler's side: request one when a run ends, run it in a process of its own.

The scheduler never imports user code. When a run ends (every instance finished, its dagrun_timeout
passed, or it deadlocked) and its DAG has an `on_success_callback` / `on_failure_callback`, `request`
writes a `callback_request` row in the transaction that ends the run, owned by this scheduler's job.
After the commit, `dispatch` starts a process per pending request (`execution.dag_callbacks.run_request`,
at most `max_running` at once) that imports the DAG file, calls the callbacks with Airflow's DAG callback
context, logs, and marks the row done. `dispatch` also reaps: a process that died without marking its
request, or ran past `timeout_s` (then killed), has its request marked done with that error.

Nothing is lost to a scheduler kill: a pending request whose job is gone is taken over (`adopt`) by the
next scheduler that starts, and run again: at least once. A scheduler without a `WorkerConfig` (None)
still requests callbacks; the next scheduler that has one runs them once this one's job has ended.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.process import BaseProcess

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dagrunner.execution.dag_callbacks import mark_request_done, run_request
from dagrunner.execution.worker_config import WorkerConfig
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence import queries
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import CallbackRequest, DagRun
from dagrunner.states import DagRunState
from dagrunner.subprocesses import preloaded_context, start_process

log = logging.getLogger(__name__)

#: Airflow's `reason` in a DAG callback's context, by how the run ended.
REASON_SUCCESS = "success"
REASON_TASK_FAILURE = "task_failure"
REASON_TIMED_OUT = "timed_out"
REASON_DEADLOCKED = "all_tasks_deadlocked"
#: A callback process still running after this long is killed and its request marked failed.
CALLBACK_TIMEOUT_S = 300.0
MAX_RUNNING = 4


@dataclass(frozen=True)
class RunEnding:
    """How a run ends: its final state, the reason audited with it, and the callback context's `reason`."""

    state: DagRunState
    reason: str
    callback_reason: str

    @classmethod
    def finished(cls, outcome: DagRunState) -> RunEnding:
        """Every task instance finished (Airflow's rule decided `outcome`)."""
        why = REASON_SUCCESS if outcome == DagRunState.SUCCESS else REASON_TASK_FAILURE
        return cls(outcome, "every task instance finished", why)

    @property
    def callback_kind(self) -> str:
        return "on_success_callback" if self.state == DagRunState.SUCCESS else "on_failure_callback"


def request(
    session: Session, dag: SerializedDag, run: DagRun, ending: RunEnding, *, job_id: int | None, now: datetime,
    actor: str,
) -> int | None:  # fmt: skip
    """Record the callback `ending` calls for, if the DAG has one; returns the request's id."""
    kind = ending.callback_kind
    wanted = dag.has_on_success_callback if kind == "on_success_callback" else dag.has_on_failure_callback
    if not wanted:
        return None
    row = CallbackRequest(kind=kind, dag_id=run.dag_id, run_id=run.run_id, fileloc=dag.fileloc,
                          reason=ending.callback_reason, job_id=job_id, created_at=now, attempts=0)  # fmt: skip
    session.add(row)
    session.flush()
    record_event(session, "dag_callback.requested", actor=actor, when=now, dag_id=run.dag_id, run_id=run.run_id,
                 reason=ending.callback_reason, detail={"request_id": row.id, "kind": kind})  # fmt: skip
    return row.id


class DagCallbacks:
    """Runs this scheduler job's pending callback requests in processes of their own (module docstring)."""

    def __init__(
        self, config: WorkerConfig | None, *, actor: str, max_running: int = MAX_RUNNING,
        timeout_s: float = CALLBACK_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self.config = config
        self.actor = actor
        self.max_running = max_running
        self.timeout_s = timeout_s
        self._running: dict[int, tuple[BaseProcess, float]] = {}  # request id -> (process, monotonic deadline)
        self._look = True  # look for pending requests at the next dispatch

    def requested(self) -> None:
        """A request was written in this tick: look for it after the commit."""
        self._look = True

    def adopt(self, session: Session, job_id: int, now: datetime) -> int:
        """Take over the pending requests of jobs that are no longer running (call after recovery has
        ended the dead ones). Returns how many."""
        live = {job.id for job in queries.running_jobs(session)} | {job_id}
        orphaned = session.execute(
            select(CallbackRequest.id, CallbackRequest.job_id).where(CallbackRequest.done_at.is_(None))
        ).all()
        taken = 0
        for request_id, owner in orphaned:
            if owner in live:
                continue
            moved = session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == request_id, CallbackRequest.done_at.is_(None),
                       CallbackRequest.job_id.is_(None) if owner is None else CallbackRequest.job_id == owner)
                .values(job_id=job_id)
            )  # fmt: skip
            if getattr(moved, "rowcount", 0):
                taken += 1
                record_event(session, "dag_callback.adopted", actor=self.actor, when=now,
                             detail={"request_id": request_id, "from_job": owner, "job": job_id})  # fmt: skip
        self._look = self._look or bool(taken)
        return taken

    def dispatch(self, engine: Engine, job_id: int | None, now: datetime) -> None:
        """Reap finished callback processes, then start pending requests of `job_id` while there is room."""
        if self.config is None:
            return
        self._reap(engine, now)
        if not self._look or len(self._running) >= self.max_running:
            return
        self._look = False
        with session_scope(engine, readonly=True) as session:
            pending = session.scalars(
                select(CallbackRequest.id)
                .where(CallbackRequest.done_at.is_(None), CallbackRequest.job_id == job_id)
                .order_by(CallbackRequest.id)
            ).all()
        for request_id in pending:
            if request_id in self._running:
                continue
            if len(self._running) >= self.max_running:
                self._look = True  # the rest start as processes end
                break
            self._start(request_id)

    @property
    def running(self) -> int:
        return len(self._running)

    def shutdown(self, grace_s: float) -> None:
        """Wait up to `grace_s` for running callbacks, then kill the rest (their requests stay pending and
        the next scheduler runs them again)."""
        deadline = time.monotonic() + grace_s
        for process, _ in self._running.values():
            process.join(max(0.0, deadline - time.monotonic()))
        for request_id, (process, _) in list(self._running.items()):
            if process.is_alive():
                log.warning("killing the callback process of request %s at shutdown", request_id)
                process.kill()
                process.join(1.0)
        self._running.clear()

    def _start(self, request_id: int) -> None:
        assert self.config is not None
        process = preloaded_context().Process(
            target=run_request, args=(self.config, request_id), name=f"dagrunner-callback-{request_id}"
        )
        start_process(process)
        self._running[request_id] = (process, time.monotonic() + self.timeout_s)

    def _reap(self, engine: Engine, now: datetime) -> None:
        failed: dict[int, str] = {}
        for request_id, (process, deadline) in list(self._running.items()):
            if process.is_alive() and time.monotonic() < deadline:
                continue
            if process.is_alive():
                process.kill()
                process.join(1.0)
                failed[request_id] = f"the callback did not finish within {self.timeout_s:g}s and was killed"
            elif process.exitcode != 0:
                failed[request_id] = f"the callback process exited with code {process.exitcode}"
            del self._running[request_id]
            self._look = True  # room for the next pending request
        if failed:
            with session_scope(engine) as session:
                for request_id, error in failed.items():
                    row = session.get(CallbackRequest, request_id)
                    if row is not None:
                        mark_request_done(session, row, [error], actor=self.actor, now=now)
