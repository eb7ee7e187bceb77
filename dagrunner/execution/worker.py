"""A warm worker process of the local executor, and the child it forks for each try.

The worker is started once (forkserver or spawn, never a fork of the scheduler), opens its own database
engine, and then serves work items one at a time over its pipe:

1. load the task (DAG file imported once, cached while unchanged);
2. record `running`, fenced, and read what the try needs: one short transaction;
3. `os.fork()` a child for the try. The child dies with the worker (PR_SET_PDEATHSIG), leads its own
   process group (so a timeout or kill takes every process the task started), writes fds 1 and 2 into
   the try's log file, runs the task and sends its TryOutcome back. If the task has success, failure
   or retry callbacks, it then waits for the recorded state and runs them; otherwise it exits at once.
   Whatever the task does to its process (leaks, globals, os._exit, a segfault) ends with the child;
4. while the child runs, heartbeat the try every `HEARTBEAT_S` seconds, and kill the child's group if it
   runs past its execution_timeout (plus a grace; the child's own SIGALRM fires first) or is killed;
5. record the outcome (one short transaction), tell the executor at once (that wakes the scheduler),
   let the child run its callbacks, audit their errors, reap it, and report idle.

The worker survives its scheduler: with the pipe closed or its parent gone (a forkserver worker's
parent is the forkserver, which exits with the scheduler) it finishes the try in hand, records it, and
exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from dagrunner.clock import utcnow
from dagrunner.execution import attempt
from dagrunner.execution.base import TaskKey, TryEvent, WorkItem
from dagrunner.execution.dag_cache import DagCache
from dagrunner.execution.logs import log_path, open_log, point_output_at
from dagrunner.execution.masking import SecretMasker
from dagrunner.execution.recording import XComRows, heartbeat, read_xcoms
from dagrunner.execution.runner import TryOutcome, run_callbacks, timeout_message
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.states import TaskInstanceState

#: Seconds between heartbeats of a running try (the zombie threshold is minutes). Not a setting yet.
HEARTBEAT_S = 5.0
#: After execution_timeout the child raises TaskTimeout itself; this much later the worker kills it.
HARD_KILL_GRACE_S = 3.0
#: How long a child may run its callbacks after its outcome is recorded before it is killed.
CALLBACK_TIMEOUT_S = 300.0
#: How long to wait for a child that closed its pipe to exit before killing it.
EXIT_WAIT_S = 5.0
_PR_SET_PDEATHSIG = 1

IDLE = "idle"


@dataclass(frozen=True)
class KillRequest:
    """Executor -> worker: stop this try's process group; it fails with `reason`."""

    key: TaskKey
    try_number: int
    reason: str
    fail_fast: bool = True


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, picklable (it crosses to a forkserver or spawned process)."""

    engine_url: str
    busy_timeout: float
    logs_folder: Path
    dags_folder: Path | None
    plugins_folder: Path | None
    import_timeout_s: float
    actor: str
    heartbeat_s: float = HEARTBEAT_S
    environ: dict[str, str] = field(default_factory=dict)
    cwd: str = ""


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scheduler's to handle (graceful stop)
    _adopt_environment(config)
    Worker(conn, config).serve()


def _adopt_environment(config: WorkerConfig) -> None:
    """Run with the scheduler's environment and directory, not the forkserver's (started earlier)."""
    if config.environ:
        os.environ.clear()
        os.environ.update(config.environ)
    if config.cwd:
        with contextlib.suppress(OSError):
            os.chdir(config.cwd)
    from dagrunner.authoring._settings import get_settings

    get_settings.cache_clear()


class Worker:
    def __init__(self, conn: Connection, config: WorkerConfig) -> None:
        self.conn = conn
        self.config = config
        self.parent_pid = os.getppid()
        self.engine: Engine = make_engine(config.engine_url, busy_timeout=config.busy_timeout)
        self.cache = DagCache(
            dags_folder=config.dags_folder,
            plugins_folder=config.plugins_folder,
            import_timeout_s=config.import_timeout_s,
        )
        self.stopping = False
        self.pipe_closed = False
        self.backlog: list[Any] = []

    # --- the loop ------------------------------------------------------------------------------------

    def serve(self) -> None:
        """Take work items until told to stop, the pipe closes, or the parent process is gone."""
        while not self.stopping:
            message = self.backlog.pop(0) if self.backlog else self._next_message()
            if isinstance(message, WorkItem):
                self.run_safely(message)
            elif message is None:
                self.stopping = True
        self.engine.dispose()

    def run_safely(self, item: WorkItem) -> None:
        """`run`, but an error of ours (the database unreachable, say) reports the try lost instead of
        killing the worker; the scheduler then records it (fenced, so a recorded outcome stays)."""
        try:
            self.run(item)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            detail = f"worker {os.getpid()} failed to run it: {type(exc).__name__}: {exc}"
            self._send(TryEvent(item.key, item.try_number, "lost", detail=detail))
            self._send(IDLE)

    def _next_message(self) -> Any:
        while not self.pipe_closed:
            if self.conn.poll(1.0):
                try:
                    return self.conn.recv()
                except (EOFError, OSError):
                    self.pipe_closed = True
                    return None
            if os.getppid() != self.parent_pid:
                return None
        return None

    def _send(self, message: Any) -> None:
        with contextlib.suppress(OSError):  # the executor is gone: the DB has the outcome anyway
            self.conn.send(message)

    # --- one try ---------------------------------------------------------------------------------------

    def run(self, item: WorkItem) -> None:
        task, load_error = attempt.load_task(self.cache, item)
        path = log_path(self.config.logs_folder, item.key, item.try_number)
        start = attempt.begin(self.engine, item, task, log_file=str(path), pid=os.getpid(), actor=self.config.actor)
        if isinstance(start, str):
            self._send(TryEvent(item.key, item.try_number, "finished", detail=f"not started: {start}"))
            self._send(IDLE)
            return
        fd = open_log(path)
        child: TryChild | None = None
        try:
            attempt.write_header(fd, item, pid=os.getpid())
            if task is None:
                outcome = _load_failure(fd, load_error or "the task could not be loaded")
            else:
                child = TryChild.fork(self, item, task, start, fd)
                outcome = child.wait_outcome(attempt.timeout_seconds(task))
            state = attempt.finish(self.engine, item, outcome, policy=attempt.policy_of(task), actor=self.config.actor)
            attempt.write_result(fd, item, state, outcome)
            self._send(TryEvent(item.key, item.try_number, "finished", state=state.value, detail=outcome.error))
            errors = child.after_recorded(state, outcome) if child is not None else []
            attempt.audit_callback_errors(self.engine, item, errors, actor=self.config.actor)
        finally:
            os.close(fd)
            if child is not None and child.exit_status is None:  # we failed midway: leave no child behind
                child.kill("the worker could not finish recording this try")
                child.reap()
        self._send(IDLE)

    def handle_control(self, child: TryChild) -> None:
        """A message from the executor while a try runs: a kill for it, a stop, or early work."""
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            self.stopping = self.pipe_closed = True  # the executor is gone: finish this try, record it, exit
            return
        if isinstance(message, KillRequest):
            if message.key == child.item.key and message.try_number == child.item.try_number:
                child.kill(message.reason, fail_fast=message.fail_fast)
        elif message is None:
            self.stopping = True
        else:
            self.backlog.append(message)

    def heartbeat(self, item: WorkItem) -> None:
        try:
            with session_scope(self.engine) as session:
                heartbeat(session, item.key, item.try_number, utcnow())
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not kill the try
            print(f"[dagrunner worker {os.getpid()}] heartbeat failed: {exc}", file=sys.stderr)


def _load_failure(fd: int, error: str) -> TryOutcome:
    os.write(fd, f"[dagrunner] {error}\n".encode("utf-8", errors="backslashreplace"))
    return TryOutcome.failed(error)


# --- the child of one try ------------------------------------------------------------------------------


class TryChild:
    """The forked process running one try, as its worker sees and controls it."""

    def __init__(self, worker: Worker, item: WorkItem, pid: int, conn: Connection) -> None:
        self.worker = worker
        self.item = item
        self.pid = pid
        self.conn = conn
        self.started = time.monotonic()
        self.kill_reason: str | None = None
        self.kill_fail_fast = False
        self.timed_out = False
        self.wants_ack = False
        self.exit_status: int | None = None

    @classmethod
    def fork(cls, worker: Worker, item: WorkItem, task: Any, start: attempt.TryStart, fd: int) -> TryChild:
        mine, theirs = multiprocessing.Pipe(duplex=True)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        gc.freeze()  # keep the warm heap's pages shared: the child's GC then never touches them
        worker_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never return into the worker's code
            code = 70
            try:
                mine.close()
                worker.conn.close()
                code = _child_main(theirs, item, task, start, fd, worker.engine, worker_pid)
            except BaseException:  # noqa: BLE001 - reported as a death without outcome; say why in the log
                with contextlib.suppress(Exception):
                    traceback.print_exc()
                    sys.stderr.flush()
            finally:
                os._exit(code)
        theirs.close()
        return cls(worker, item, pid, mine)

    # --- waiting ----------------------------------------------------------------------------------------

    def wait_outcome(self, timeout_s: float | None) -> TryOutcome:
        """The child's outcome, or the failure that stands for it (crash, timeout, kill)."""
        deadline = self.started + timeout_s + HARD_KILL_GRACE_S if timeout_s else None
        every = self.worker.config.heartbeat_s
        next_heartbeat = time.monotonic() + every
        while True:
            now = time.monotonic()
            wake = min(next_heartbeat, deadline) if deadline is not None else next_heartbeat
            watched = [self.conn] if self.worker.pipe_closed else [self.conn, self.worker.conn]
            ready = wait(watched, timeout=max(0.0, wake - now))
            if self.conn in ready:
                outcome = self._receive_outcome()
                if outcome is not None:
                    return outcome
                return self._outcome_of_exit(timeout_s)
            if self.worker.conn in ready:
                self.worker.handle_control(self)
            now = time.monotonic()
            if deadline is not None and now >= deadline and self.kill_reason is None:
                self.timed_out = True
                reason = f"{timeout_message(timeout_s or 0)}; the task did not stop, so it was killed"
                self.kill(reason, fail_fast=False)
            if now >= next_heartbeat:
                self.worker.heartbeat(self.item)
                next_heartbeat = now + every

    def _receive_outcome(self) -> TryOutcome | None:
        """The outcome the child sent (None: it died first). A child with no callbacks to run exits right
        after sending it, so that it stops sharing pages with us soon (every page the worker writes while
        a forked child lives is a copy-on-write fault); it is reaped after the outcome is recorded."""
        try:
            kind, payload, self.wants_ack = self.conn.recv()
        except (EOFError, OSError):
            return None
        if kind != "outcome" or not isinstance(payload, TryOutcome):
            return TryOutcome.failed(f"the task process sent an unexpected message {kind!r}")
        return payload

    def _outcome_of_exit(self, timeout_s: float | None) -> TryOutcome:
        status = self.reap()
        if self.kill_reason is not None:
            return TryOutcome.failed(
                self.kill_reason, fail_fast=self.kill_fail_fast, exit_code=_exit_code(status), timed_out=self.timed_out
            )
        return TryOutcome.failed(_death_message(status), exit_code=_exit_code(status))

    def after_recorded(self, state: TaskInstanceState, outcome: TryOutcome) -> list[str]:
        """Tell the child the recorded state, let it run its callbacks; their errors. Reaps the child."""
        errors: list[str] = []
        if self.exit_status is None and self.wants_ack:
            with contextlib.suppress(OSError):
                self.conn.send(state.value)
            if self.conn.poll(CALLBACK_TIMEOUT_S):
                with contextlib.suppress(EOFError, OSError):
                    kind, payload = self.conn.recv()
                    if kind == "callbacks":
                        errors = list(payload)
            else:
                self.kill(f"callbacks did not finish within {CALLBACK_TIMEOUT_S:g}s")
                errors = [f"callbacks for state {state} did not finish within {CALLBACK_TIMEOUT_S:g}s and were killed"]
        self.reap()
        self.conn.close()
        if outcome.timed_out or self.timed_out or self.kill_reason is not None:
            self._kill_group()  # what the task left behind in its group (e.g. a `sleep` it started)
        return errors

    # --- control ---------------------------------------------------------------------------------------

    def kill(self, reason: str, *, fail_fast: bool = True) -> None:
        """SIGKILL the child's whole process group; the try fails with `reason`."""
        if self.kill_reason is None:
            self.kill_reason = reason
            self.kill_fail_fast = fail_fast
        self._kill_group()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.exit_status is None:  # before its setpgid the child has no group of its own: kill it directly
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)

    def reap(self) -> int:
        """The child's wait status (waiting up to EXIT_WAIT_S for a child that closed its pipe early)."""
        if self.exit_status is not None:
            return self.exit_status
        if self.conn.poll(EXIT_WAIT_S):  # EOF comes once the child has exited (after its memory is freed)
            with contextlib.suppress(EOFError, OSError):
                self.conn.recv()
        deadline = time.monotonic() + EXIT_WAIT_S
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = status
                return status
            if time.monotonic() >= deadline:
                self.kill("the task process closed its pipe but did not exit")
                _, status = os.waitpid(self.pid, 0)
                self.exit_status = status
                return status
            time.sleep(0.001)


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def _death_message(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the task process was killed by {name} without reporting an outcome"
    return f"the task process exited with code {code} without reporting an outcome (os._exit or sys.exit in a thread?)"


# --- inside the child ----------------------------------------------------------------------------------


def _child_main(
    conn: Connection, item: WorkItem, task: Any, start: attempt.TryStart, fd: int, engine: Engine, worker_pid: int
) -> int:
    """Run the try; returns the exit code. Runs only in the forked child."""
    _die_with_parent()
    if os.getppid() != worker_pid:  # the worker died before PDEATHSIG was armed
        return 75
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    masker = SecretMasker.from_environ()
    point_output_at(fd, masker)
    outcome, prepared = attempt.run_here(task, item, start, masker, _xcom_loader(engine, item))
    _flush_output()
    wants_ack = prepared is not None and _has_callbacks(prepared.task)
    try:
        conn.send(("outcome", outcome, wants_ack))
    except Exception as exc:  # noqa: BLE001 - a value pickle refuses; the worker must still hear
        failed = TryOutcome.failed(f"the outcome could not be sent: {type(exc).__name__}: {exc}")
        conn.send(("outcome", failed, wants_ack))
    if not wants_ack:
        return 0
    try:
        state = conn.recv()
    except (EOFError, OSError):
        return 0  # the worker is gone; it could not record callbacks either
    assert prepared is not None
    errors = run_callbacks(prepared.task, state, prepared.context, masker=masker)
    _flush_output()
    conn.send(("callbacks", errors))
    return 0


def _has_callbacks(task: Any) -> bool:
    names = ("on_success_callback", "on_failure_callback", "on_retry_callback")
    return any(getattr(task, name, None) for name in names)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _xcom_loader(engine: Engine, item: WorkItem) -> Any:
    """Reads XComs the worker did not pre-fetch, on a connection of the child's own."""

    fresh = False

    def load(task_ids: list[str]) -> XComRows:
        nonlocal fresh
        if not fresh:  # never use a connection inherited from the worker: open our own
            engine.dispose(close=False)
            fresh = True
        with session_scope(engine, readonly=True) as session:
            return read_xcoms(session, item.key.dag_id, item.key.run_id, task_ids)

    return load


def _die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this process when the worker dies (elsewhere: no-op)."""
    if _PRCTL is not None:
        with contextlib.suppress(Exception):
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _load_prctl() -> Any:
    """libc's prctl, looked up once in the worker (a dlopen per child would cost half a millisecond)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
