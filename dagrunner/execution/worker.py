"""A warm worker process of the local executor: it records and supervises tries; its forker runs them.

The worker is started once (forkserver or spawn, never a fork of the scheduler). It first forks its
forker (`execution.forker`: keeps DAG files imported and forks task processes ahead of time), then opens
its own database engine, and serves work items one at a time over its pipe (after
`worker_config.LEAN_FORKER_AFTER` tries it changes to a lean forker, see there):

1. assign the try to a spare task process (forked before the try came). It finds the task in
   the DAG cache it inherited and answers with its pid and the task's facts while we go on; when its
   cache lacks the file as it is now, the forker imports the file and forks a fresh process;
2. record `running`, fenced, and read what the try needs: one short transaction. Which upstream XComs to
   read comes from what a task process told us about the DAG earlier; for a DAG not described yet we
   wait for the answer first;
3. tell the task process the try is started (`TryStarted`). It leads its own process group (so a timeout
   or kill takes every process the task started), writes fds 1 and 2 into the try's log file, runs the
   task and sends `TryFinished` back; with success, failure, retry or skipped callbacks it then waits for
   the state `Recorded` and runs them, otherwise it exits at once. Whatever the task does to its process
   (leaks, globals, os._exit, a segfault) ends with it;
4. while it runs, heartbeat the try every `heartbeat_s` seconds, read the XComs it asks for that were
   not pre-fetched (it has no database connection), and kill its group if it runs past its
   execution_timeout (plus a grace; its own SIGALRM fires first) or is killed;
5. record the outcome (one short transaction), tell the executor at once (that wakes the scheduler) and,
   when there are no callbacks to wait for, that we are free; then let it run its callbacks and audit
   their errors.

The worker never runs user code and never forks while it works (only to start a forker, once, and again
if one dies), so its pages stay its own and its database work takes no copy-on-write faults.

The worker survives its scheduler: with the pipe closed or its parent gone (a forkserver worker's
parent is the forkserver, which exits with the scheduler) it finishes the try in hand, records it, and
exits. Its forker dies with it, and the task processes with the forker.

`execution.messages` draws every message exchanged; `TryProcess` sees its worker only through
`TrySupervisor`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import Connection as DbConnection
from sqlalchemy import Engine

from dagrunner.clock import utcnow
from dagrunner.execution import attempt
from dagrunner.execution.base import TryEvent, WorkItem
from dagrunner.execution.exit_codes import TASK_PROCESS_CODES, describe_exit
from dagrunner.execution.forker import ForkerLink
from dagrunner.execution.logs import log_path, open_log, write_line
from dagrunner.execution.messages import (
    IDLE,
    Accepted,
    Assign,
    CallbacksRan,
    FromExecutor,
    KillRequest,
    Recorded,
    Report,
    SecretAnswer,
    SecretRequest,
    Stamp,
    Stop,
    TryFacts,
    TryFinished,
    TryStarted,
    XComReadFailed,
    XComReply,
    XComRequest,
    XComsRead,
)
from dagrunner.execution.recording import heartbeat, moved_on, read_xcoms
from dagrunner.execution.retries import RetryPolicy
from dagrunner.execution.run_services import ServiceAnswer, ServiceCall
from dagrunner.execution.run_services import answer as answer_service
from dagrunner.execution.runner import TryOutcome, timeout_message
from dagrunner.execution.secrets import DatabaseSecrets
from dagrunner.execution.worker_config import WorkerConfig
from dagrunner.persistence.engine import OUTAGE_ERRORS, Outage, make_engine, session_scope
from dagrunner.states import TaskInstanceState

T = TypeVar("T")

#: After execution_timeout the task process raises TaskTimeout itself; this much later the worker kills it.
HARD_KILL_GRACE_S = 3.0
#: How long a task process may run its callbacks after its outcome is recorded before it is killed.
CALLBACK_TIMEOUT_S = 300.0
#: How long to wait for a task process that closed its pipe to be reported exited before killing it.
EXIT_WAIT_S = 5.0
#: How often a try may ask for a freshly forked task process when the one offered lacks its DAG file.
_FRESH_PROCESS_TRIES = 2
#: Task processes each worker keeps forked ahead of its tries.
SPARES = 2
#: The stop a closed executor pipe (or a vanished parent) stands for.
_STOP = Stop()


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
        # First, so a forked forker inherits no database state.
        self.forker = ForkerLink(config, lean=config.lean_forker_after <= 0, inherited=[conn])
        #: A lean forker getting ready to take over from a forked one, and when to start one.
        self.next_forker: ForkerLink | None = None
        self.lean_due = config.lean_forker_after
        self.engine: Engine = make_engine(config.engine_url, busy_timeout=config.busy_timeout)
        #: One connection for all our transactions: no pool checkout (or PostgreSQL ping) per transaction.
        #: After a lost connection SQLAlchemy connects again on its next use.
        self.db: DbConnection = self.engine.connect()
        self.secrets = DatabaseSecrets(self.engine, config.state_folder or Path(".dagrunner"), actor=config.actor)
        #: (fileloc, dag_id) -> (the file's stamp, task_id -> upstream task ids) as a task process described it.
        self.upstreams: dict[tuple[str, str], tuple[Stamp, dict[str, frozenset[str]]]] = {}
        #: The files the forker has imported, and the task processes forked ahead for the next tries.
        self.forker_files: set[str] = set()
        self.spares: deque[Connection] = deque()
        self.tries = 0
        self.stopping = False
        self.pipe_closed = False
        #: Work the executor sent while a try ran, taken in order once it is done.
        self.backlog: deque[FromExecutor] = deque()

    # --- the loop ------------------------------------------------------------------------------------

    def serve(self) -> None:
        """Take work items until told to stop, the pipe closes, or the parent process is gone."""
        while not self.stopping:
            match self.backlog.popleft() if self.backlog else self._next_message():
                case WorkItem() as item:
                    self.run_safely(item)
                case Stop():
                    self.stopping = True
                case KillRequest():
                    pass  # for a try that is over already
        self._drop_spares()
        self.forker.stop()
        if self.next_forker is not None:
            self.next_forker.stop()
        self.db.close()
        self.engine.dispose()

    def run_safely(self, item: WorkItem) -> None:
        """`run`, but an error of ours (the database unreachable, say) reports the try lost instead of
        killing the worker; the scheduler then records it (fenced, so a recorded outcome stays)."""
        try:
            self.run(item)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            detail = f"worker {os.getpid()} failed to run it: {type(exc).__name__}: {exc}"
            self._send(Report(TryEvent(item.key, item.try_number, "lost", detail=detail), idle=True))

    def _next_message(self) -> FromExecutor:
        while not self.pipe_closed:
            if self.conn.poll(1.0):
                try:
                    message: FromExecutor = self.conn.recv()
                    return message
                except (EOFError, OSError):
                    self.pipe_closed = True
                    return _STOP
            if os.getppid() != self.parent_pid:
                return _STOP
        return _STOP

    def _send(self, message: Report) -> None:
        with contextlib.suppress(OSError):  # the executor is gone: the DB has the outcome anyway
            self.conn.send(message)

    # --- one try ---------------------------------------------------------------------------------------

    def run(self, item: WorkItem) -> None:
        if not self.forker.running():  # it died, and its task processes with it: start afresh
            self._drop_spares()
            self.forker_files.clear()
            self.forker.start()
        elif not self.forker.lean and self.tries >= self.lean_due:
            self._go_lean()
        self.tries += 1
        path = log_path(self.config.logs_folder, item.key, item.try_number)
        self.forker.forget_exited()  # earlier tries' processes no longer matter
        known = self.upstreams.get((item.fileloc, item.key.dag_id))
        process = TryProcess(
            self,
            self.forker,
            item,
            seq=self.tries,
            log_file=str(path),
            known=known[0] if known is not None else None,
            heartbeat_s=self.config.heartbeat_s,
        )
        process.offer(self._take_spare(item))
        try:
            idle = self._run(item, path, process)
        finally:
            process.abandon()  # when we failed midway: leave nothing running
        if not idle:
            self._send(IDLE)

    def _run(self, item: WorkItem, path: Path, process: TryProcess) -> bool:
        """Steps 2-5 of the module docstring; whether the executor was already told we are idle."""
        upstream = self.known_upstream(item)
        if upstream is None:  # no task process described this DAG yet: wait for its answer
            process.await_accepted()
            upstream = process.facts.upstream_task_ids if process.facts is not None else frozenset()
        pid, actor = os.getpid(), self.config.actor
        start = self.recorded(lambda db: attempt.begin(db, item, upstream, log_file=str(path), pid=pid, actor=actor))
        if isinstance(start, str):
            process.cancel()
            self._send(Report(TryEvent(item.key, item.try_number, "finished", detail=f"not started: {start}"), True))
            self._order_spares()
            return True
        fd = open_log(path)
        try:
            attempt.write_header(fd, item, pid=os.getpid())
            process.start(start)
            if item.fileloc in self.forker_files:  # else the forker imports it now: spares come after
                self._order_spares()  # forked while this try runs and we would only wait
            outcome = process.wait_finished()
            if process.load_error is not None:
                write_line(fd, f"[dagrunner] {process.load_error}")
            state = self.recorded(lambda db: attempt.finish(db, item, outcome, policy=process.policy, actor=actor))
            attempt.write_result(fd, item, state, outcome)
            idle = not process.wants_recorded
            event = TryEvent(item.key, item.try_number, "finished", state=state.value, detail=outcome.error)
            self._send(Report(event, idle))
            self._order_spares()  # unless they are on their way (ordered above, and not dropped since)
            errors = process.after_recorded(state, outcome)
            self.recorded(lambda db: attempt.audit_callback_errors(db, item, errors, actor=actor))
        finally:
            os.close(fd)
        return idle

    def _go_lean(self) -> None:
        """Start a lean forker, or change to the one started earlier once it is ready (LEAN_FORKER_AFTER)."""
        if self.next_forker is None:
            self.next_forker = ForkerLink(self.config, lean=True, inherited=[])
            return
        self.next_forker.pump()
        if not self.next_forker.alive:  # it could not start: keep the forked one, and try again later
            print(f"[dagrunner worker {os.getpid()}] {self.next_forker.death_message()}", file=sys.stderr)
            self.next_forker = None
            self.lean_due = self.tries + max(1, self.config.lean_forker_after)
        elif self.next_forker.ready:
            self._drop_spares()  # forked by the forker we leave; the first try of a file imports it anew
            self.forker_files.clear()
            self.forker.stop()
            self.forker, self.next_forker = self.next_forker, None

    def recorded(self, write: Callable[[DbConnection], T]) -> T:
        """`write(connection)`, retried through a database outage (`OUTAGE_ERRORS`: the connection lost,
        SQLite locked elsewhere, writes refused) with bounded exponential backoff, on a new connection
        each time; logged once per outage. Safe: a transaction that failed wrote nothing, and our writes
        are fenced, so one that committed just before the connection broke is refused the second time.
        A try is not started (no user code runs) until its start is recorded, so waiting here during an
        outage uses no try. Past `db_unreachable_timeout_s` raises DatabaseOutageTimeoutError."""
        outage = Outage(self.config.db_unreachable_timeout_s)
        while True:
            try:
                result = write(self._open_db())
            except OUTAGE_ERRORS as exc:
                delay = outage.failed(exc, utcnow())
                words = outage.worth_saying(exc)
                if words is not None:
                    print(f"[dagrunner worker {os.getpid()}] {words}; retrying for up to "
                          f"{outage.timeout_s:g}s: {exc}", file=sys.stderr, flush=True)  # fmt: skip
                with contextlib.suppress(Exception):
                    self.db.close()  # a new connection next time: this one may be dead
                time.sleep(delay)
                continue
            length = outage.recovered(utcnow())
            if length is not None:
                print(f"[dagrunner worker {os.getpid()}] the metadata database works again after {length:.1f}s",
                      file=sys.stderr, flush=True)  # fmt: skip
            return result

    def _open_db(self) -> DbConnection:
        """The connection we keep, opened afresh when an outage closed it."""
        if self.db.closed:
            self.db = self.engine.connect()
        return self.db

    def known_upstream(self, item: WorkItem) -> frozenset[str] | None:
        """The task's upstream task ids as a task process last described its DAG (None: not described)."""
        known = self.upstreams.get((item.fileloc, item.key.dag_id))
        return known[1].get(item.key.task_id) if known is not None else None

    def _drop_spares(self) -> None:
        while self.spares:
            self.spares.popleft().close()  # it sees its pipe close and exits

    def _take_spare(self, item: WorkItem) -> Connection | None:
        """The oldest spare task process, if it can have `item`'s task (its forker has
        imported the file); None when the forker must import it first."""
        if item.fileloc not in self.forker_files:
            return None
        return self.spares.popleft() if self.spares else self.forker.spawn()

    def _order_spares(self) -> None:
        """Keep `SPARES` task processes forked ahead. Two, because a fork and its process getting ready
        take about as long as a no-op try: back-to-back tries sometimes outran a single spare."""
        while len(self.spares) < SPARES and self.forker.alive:
            self.spares.append(self.forker.spawn())

    # --- what a TryProcess asks of us (TrySupervisor) ---------------------------------------------------

    def control_conn(self) -> Connection | None:
        return None if self.pipe_closed else self.conn

    def take_control(self) -> KillRequest | None:
        """Read the executor's message that came while a try runs: a kill is returned, a stop noted, and
        early work kept for later."""
        try:
            message: FromExecutor = self.conn.recv()
        except (EOFError, OSError):
            self.stopping = self.pipe_closed = True  # the executor is gone: finish this try, record it, exit
            return None
        match message:
            case KillRequest():
                return message
            case Stop():
                self.stopping = True
            case _:
                self.backlog.append(message)
        return None

    def file_loaded(self, fileloc: str) -> None:
        """The forker imported `fileloc`: the spares, forked before, do not have it."""
        self.forker_files.add(fileloc)
        self._drop_spares()

    def dag_described(self, item: WorkItem, stamp: Stamp, upstreams: dict[str, frozenset[str]]) -> None:
        """A task process described the DAG of `item` as its file is at `stamp` (task_id -> upstream ids)."""
        self.upstreams[(item.fileloc, item.key.dag_id)] = (stamp, upstreams)

    def read_xcoms(self, item: WorkItem, task_ids: list[str]) -> XComReply:
        """The XComs of `task_ids` in the run of `item`, for its task process, or why they cannot be read
        (the task's pull then fails with it, not the worker)."""
        try:
            with session_scope(self.engine, readonly=True) as session:
                return XComsRead(read_xcoms(session, item.key.dag_id, item.key.run_id, task_ids))
        except Exception as exc:  # noqa: BLE001
            return XComReadFailed(f"{type(exc).__name__}: {exc}")

    def answer_service(self, item: WorkItem, call: ServiceCall) -> ServiceAnswer:
        """A task process's question about other DAGs' runs, answered on the worker's engine (an error the
        call raised goes back to the task, not the worker)."""
        from dagrunner.execution.external_runs import DbRunServices

        return answer_service(DbRunServices(self.engine, item.key), call)

    def read_secret(self, request: SecretRequest) -> SecretAnswer:
        """A connection or variable a task process asked for (or a variable it sets), or why not."""
        return self.secrets.answer(request)

    def heartbeat(self, item: WorkItem) -> str | None:
        """Stamp the try's heartbeat; why it must stop when its instance no longer runs it (None: go on)."""
        try:
            with attempt.transaction(self._open_db()) as conn:
                if heartbeat(conn, item.key, item.try_number, utcnow()):
                    return None
                return moved_on(conn, item.key, item.try_number)
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not kill the try
            print(f"[dagrunner worker {os.getpid()}] heartbeat failed: {exc}", file=sys.stderr)
            return None


# --- the process of one try ------------------------------------------------------------------------------


class TrySupervisor(Protocol):
    """What a `TryProcess` needs of the worker that runs it, and nothing more (`Worker` is the one)."""

    def control_conn(self) -> Connection | None:
        """The executor's pipe, to watch while the try runs (None: it closed)."""

    def take_control(self) -> KillRequest | None:
        """Handle the message waiting on `control_conn`; a kill is returned for the try to act on."""

    def file_loaded(self, fileloc: str) -> None:
        """The forker imported `fileloc` anew (task processes forked before lack it)."""

    def dag_described(self, item: WorkItem, stamp: Stamp, upstreams: dict[str, frozenset[str]]) -> None:
        """A task process described `item`'s DAG: task_id -> upstream task ids, for its file at `stamp`."""

    def read_xcoms(self, item: WorkItem, task_ids: list[str]) -> XComReply:
        """The XComs a task process asked for, or why they could not be read."""

    def read_secret(self, request: SecretRequest) -> SecretAnswer:
        """A connection or variable a task process asked for (or a variable it sets), or why not."""

    def heartbeat(self, item: WorkItem) -> str | None:
        """Record that the try of `item` is alive; why it must stop when its instance moved on (None: go on)."""

    def answer_service(self, item: WorkItem, call: ServiceCall) -> ServiceAnswer:
        """What a task process asked about other DAGs' runs (`execution.run_services`), answered."""


class TryProcess:
    """The task process running one try, as its worker sees and controls it (its forker forked it).

    The worker talks to it directly over `conn`; it names its pid and its task's facts when it accepts
    the try. When it cannot (its DAG cache lacks the file as it is now), the forker imports the file and
    forks a fresh one."""

    def __init__(
        self,
        supervisor: TrySupervisor,
        forker: ForkerLink,
        item: WorkItem,
        *,
        seq: int,
        log_file: str,
        known: Stamp | None,
        heartbeat_s: float,
    ) -> None:
        """`seq` numbers the try within its worker (for the forker's answers); `known` is the stamp of the
        DAG file our upstream map of this DAG came from (None: we have none)."""
        self.supervisor = supervisor
        self.forker = forker
        self.item = item
        self.seq = seq
        self.log_file = log_file
        self.known = known
        self.heartbeat_s = heartbeat_s
        self.conn: Connection | None = None
        self.pid: int | None = None
        self.facts: TryFacts | None = None
        #: Why there is no task process (the task could not be loaded, the forker died).
        self.load_error: str | None = None
        self.started_at = time.monotonic()
        self.kill_reason: str | None = None
        self.kill_fail_fast = False
        self.kill_interrupted = False
        self.timed_out = False
        self.wants_recorded = False
        self.done = False

    @property
    def policy(self) -> RetryPolicy:
        return self.facts.policy if self.facts is not None else RetryPolicy.none()

    def offer(self, conn: Connection | None) -> None:
        """Assign the try to the task process on `conn` (None: there is none to ask; get one later)."""
        self.conn = conn
        if conn is not None:
            with contextlib.suppress(OSError):  # it died: its answer reads as EOF
                conn.send(Assign(self.item, self.log_file, self.known))

    def await_accepted(self) -> None:
        """Wait until a task process has accepted the try (its pid and the task's facts), or know why
        none can (`load_error`)."""
        if self.pid is not None or self.load_error is not None:
            return
        answer = self._answer()
        for _ in range(_FRESH_PROCESS_TRIES):
            if isinstance(answer, Accepted):
                break
            answer = self._fresh_process()
        if not isinstance(answer, Accepted):
            if self.load_error is None:
                self.load_error = f"no task process could take the try: {self._why_not()}"
            self._close()
            return
        self.pid, self.facts = answer.pid, answer.facts
        if answer.upstreams is not None:
            self.supervisor.dag_described(self.item, answer.stamp, answer.upstreams)

    def cancel(self) -> None:
        """The try was fenced out: its process sees its pipe close and exits without running anything."""
        self._close()
        self.done = True

    def start(self, start: attempt.TryStart) -> None:
        """Tell the task process its try is started (once it has accepted it; not when none could)."""
        self.await_accepted()
        if self.load_error is None and self.conn is not None:
            with contextlib.suppress(OSError):  # it died already: waiting sees its pipe closed
                self.conn.send(TryStarted(start))
            self.started_at = time.monotonic()

    def wait_finished(self) -> TryOutcome:
        """Wait for the started try to finish: its outcome, or the failure that stands for it."""
        if self.load_error is not None or self.conn is None:
            return TryOutcome.failed(self.load_error or "no task process")
        return self._supervise(self.conn)

    def _answer(self) -> Accepted | None:
        """What the task process on `conn` answered the Assign (None: it declined, there is none, or it
        died)."""
        answer = _receive(self.conn) if self.conn is not None else None
        return answer if isinstance(answer, Accepted) else None

    def _fresh_process(self) -> Accepted | None:
        """Have the forker import the task's file and fork a process that has it; its answer."""
        self._close()
        error = self.forker.load(self.seq, self.item)
        self.supervisor.file_loaded(self.item.fileloc)
        if error is not None:
            self.load_error = error
            return None
        self.offer(self.forker.spawn())
        return self._answer()

    def _why_not(self) -> str:
        if not self.forker.alive:
            return self.forker.death_message()
        return "its DAG file kept changing while it was imported, or the task process died at once"

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    # --- waiting ----------------------------------------------------------------------------------------

    def _supervise(self, conn: Connection) -> TryOutcome:
        """Until the try finishes: answer its XCom reads, heartbeat, act on kills, and kill it past its
        execution_timeout (plus a grace)."""
        timeout_s = self.facts.timeout_s if self.facts is not None else None
        deadline = self.started_at + timeout_s + HARD_KILL_GRACE_S if timeout_s else None
        next_heartbeat = time.monotonic() + self.heartbeat_s
        while True:
            now = time.monotonic()
            wake = min(next_heartbeat, deadline) if deadline is not None else next_heartbeat
            forker_conn = self.forker.conn
            control = self.supervisor.control_conn()
            watched = [conn] if forker_conn is None else [conn, forker_conn]
            if control is not None:
                watched.append(control)
            ready = wait(watched, timeout=max(0.0, wake - now))
            if forker_conn is not None and forker_conn in ready:
                self.forker.pump()
            if conn in ready:
                match _receive(conn):
                    case XComRequest() as request:
                        self._answer_xcoms(conn, request)
                    case ServiceCall() as call:
                        self._answer_service(conn, call)
                    case SecretRequest() as request:
                        self._answer_secret(conn, request)
                    case TryFinished(outcome, wants_recorded):
                        self.wants_recorded = wants_recorded
                        return outcome
                    case None:
                        return self._outcome_of_exit()
                    case other:
                        return TryOutcome.failed(f"the task process sent an unexpected {type(other).__name__}")
            if control is not None and control in ready:
                self._obey(self.supervisor.take_control())
            now = time.monotonic()
            if deadline is not None and now >= deadline and self.kill_reason is None:
                self.timed_out = True
                self.kill(
                    f"{timeout_message(timeout_s or 0)}; the task did not stop, so it was killed", fail_fast=False
                )
            if now >= next_heartbeat:
                self._stop_if_moved_on(self.supervisor.heartbeat(self.item))
                next_heartbeat = now + self.heartbeat_s

    def _stop_if_moved_on(self, why: str | None) -> None:
        """The heartbeat found the instance no longer running this try (a person marked it, or it was failed
        as a zombie or removed): its outcome could never be recorded, so the try is stopped now rather than
        left to hold a slot and act on the world. Its late outcome is fenced out as usual (`try.closed`)."""
        if why is not None and self.kill_reason is None:
            self.kill(f"stopped: its task instance no longer runs this try ({why})")

    def _obey(self, kill: KillRequest | None) -> None:
        if kill is not None and kill.key == self.item.key and kill.try_number == self.item.try_number:
            self.kill(kill.reason, fail_fast=kill.fail_fast, interrupted=kill.interrupted)

    def _answer_xcoms(self, conn: Connection, request: XComRequest) -> None:
        """Read the XComs the try was not given and send them (the task process has no database
        connection of its own, see `forker._xcom_loader`)."""
        reply = self.supervisor.read_xcoms(self.item, list(request.task_ids))
        with contextlib.suppress(OSError):  # it died meanwhile: waiting sees its pipe closed
            conn.send(reply)

    def _answer_service(self, conn: Connection, call: ServiceCall) -> None:
        reply = self.supervisor.answer_service(self.item, call)
        with contextlib.suppress(OSError):
            conn.send(reply)

    def _answer_secret(self, conn: Connection, request: SecretRequest) -> None:
        reply = self.supervisor.read_secret(request)
        with contextlib.suppress(OSError):  # it died meanwhile: waiting sees its pipe closed
            conn.send(reply)

    def _outcome_of_exit(self) -> TryOutcome:
        """What the death of the task process, without a `TryFinished`, stands for."""
        status = self._exit_status()
        code = None if status is None else os.waitstatus_to_exitcode(status)
        if self.kill_reason is not None:
            return TryOutcome.failed(
                self.kill_reason,
                fail_fast=self.kill_fail_fast,
                exit_code=code,
                timed_out=self.timed_out,
                interrupted=self.kill_interrupted,
            )
        if code is None:
            return TryOutcome.failed(
                f"the task process died without reporting an outcome: {self.forker.death_message()}"
            )
        return TryOutcome.failed(_death_message(code), exit_code=code)

    def _exit_status(self) -> int | None:
        """The wait status the forker reports for our process (killing it if it lingers); None when the
        forker died, taking the task process with it."""
        forker = self.forker
        for attempt_no in range(2):
            deadline = time.monotonic() + EXIT_WAIT_S
            while self.pid not in forker.exited and forker.alive and time.monotonic() < deadline:
                forker.pump(max(0.0, deadline - time.monotonic()))
            if self.pid in forker.exited or not forker.alive:
                break
            if attempt_no == 0:
                self.kill("the task process closed its pipe but did not exit")
        return forker.exited.get(self.pid) if self.pid is not None else None

    def after_recorded(self, state: TaskInstanceState, outcome: TryOutcome) -> list[str]:
        """Tell the process the recorded state and let it run its callbacks; their errors."""
        errors: list[str] = []
        if self.wants_recorded and self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.send(Recorded(state.value))
            errors = self._callback_errors(self.conn, state)
        self._close()
        if outcome.timed_out or self.timed_out or self.kill_reason is not None:
            self._kill_group()  # what the task left behind in its group (e.g. a `sleep` it started)
        self.done = True
        return errors

    def _callback_errors(self, conn: Connection, state: TaskInstanceState) -> list[str]:
        """Wait for the callbacks to run (answering the XCom reads they make); their errors."""
        deadline = time.monotonic() + CALLBACK_TIMEOUT_S
        while conn.poll(max(0.0, deadline - time.monotonic())):
            match _receive(conn):
                case XComRequest() as request:
                    self._answer_xcoms(conn, request)
                case ServiceCall() as call:
                    self._answer_service(conn, call)
                case SecretRequest() as request:
                    self._answer_secret(conn, request)
                case CallbacksRan(errors):
                    return list(errors)
                case _:
                    return []  # it died, or sent something else: no errors to audit
        self.kill(f"callbacks did not finish within {CALLBACK_TIMEOUT_S:g}s")
        return [f"callbacks for state {state} did not finish within {CALLBACK_TIMEOUT_S:g}s and were killed"]

    # --- control ---------------------------------------------------------------------------------------

    def kill(self, reason: str, *, fail_fast: bool = True, interrupted: bool = False) -> None:
        """SIGKILL the process's whole group; the try fails with `reason`."""
        if self.kill_reason is None:
            self.kill_reason = reason
            self.kill_fail_fast = fail_fast
            self.kill_interrupted = interrupted
        self._kill_group()

    def abandon(self) -> None:
        """After a failure of ours midway through a try: kill its process, if it may still run."""
        if not self.done:
            self.kill("the worker could not finish recording this try")
            self._close()
            self.done = True

    def _kill_group(self) -> None:
        if self.pid is not None:  # it made itself a group leader before it told us its pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


def _receive(conn: Connection) -> object:
    """The task process's next message (None: it died, or closed its pipe)."""
    try:
        message: object = conn.recv()
        return message
    except (EOFError, OSError):
        return None


def _death_message(code: int) -> str:
    """Why a try failed whose task process exited with `code` (as Popen gives it) without finishing it."""
    what = f"the task process {describe_exit(code, TASK_PROCESS_CODES)} without reporting an outcome"
    if code >= 0 and code not in TASK_PROCESS_CODES:
        what += " (os._exit or sys.exit in a thread?)"
    return what
