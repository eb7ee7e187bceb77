"""The forker: the process beside each local worker that keeps DAG files imported and forks the task processes.

A local worker is three kinds of process. The worker (`execution.worker`) writes to the database and supervises
tries; it runs no user code and never forks while it works. Forking write-protects every page of the
parent, so each page a parent writes afterwards costs a copy-on-write fault (several microseconds each on
a virtual machine); a worker that forked for every try took a thousand such faults per try in its own
database work. The forker imports DAG files (`DagCache`) and forks task processes from that warm state,
and does little else. A task process runs exactly one try and talks to the worker directly, over a pipe
the worker made and passed to the forker.

A fork costs kernel time in proportion to the memory of the process forked (its page tables are copied,
and torn down again when the child exits), and a worker carries SQLAlchemy, the ORM models and its
engine, more than half of its memory, none of which a task process needs. So a forker comes in two
kinds (see `ForkerLink`): *forked* from its worker, ready at once but carrying all that, or *lean*, a
fresh interpreter (`python -c _BOOT`) that imports only what running a task takes (no module on that
path imports SQLAlchemy: ~31 MB against ~55 MB), so each fork and exit of a task process costs 3-6 ms
less CPU, after half a second of importing. A worker starts with a forked one and changes to a lean one
once it has run enough tries to pay for the import (`worker_config.LEAN_FORKER_AFTER`). A lean forker adopts
the worker's sys.path and sys.argv first; the environment and working directory it inherits from the
worker, which adopted the scheduler's before starting it.

A task process is forked *before* its try is known, as the worker's spare: while one try finishes and the
scheduler decides the next, the forker forks the next process and it gets ready (its own process group,
death with the forker, its log stream built). When a try comes, the worker `Assign`s it to the spare,
which finds the task in the DAG cache it inherited and answers `Accepted` with the task's facts, or
`Declined` when its cache does not have the file as it is now. Then the worker asks the forker to `Load`
the file (an import, reported as `Loaded`, with the error if it failed), and has a fresh spare forked.
After the worker's `TryStarted` the task process points its output at the try's log, runs the task, sends
`TryFinished` and, if it has callbacks, waits for the state `Recorded` and runs them. It has no database
connection: XComs the worker did not pre-fetch it asks the worker for, over the same pipe. The forker
reaps it and reports `Exited` with its wait status. `execution.messages` draws the whole exchange.

The forker dies with its worker (PR_SET_PDEATHSIG), and a task process with its forker, so nothing
outlives a worker that is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import recv_handle, send_handle
from typing import TYPE_CHECKING, Any

from dagrunner.errors import ExecutionError
from dagrunner.execution import attempt
from dagrunner.execution.base import WorkItem, XComRows
from dagrunner.execution.dag_cache import DagCache
from dagrunner.execution.exit_codes import FORKER_CODES, ExitCode, describe_exit
from dagrunner.execution.logs import OutputRedirect
from dagrunner.execution.masking import SecretMasker
from dagrunner.execution.messages import (
    Accepted,
    Assign,
    CallbacksRan,
    Declined,
    Exited,
    ForkerConfig,
    FromForker,
    Load,
    Loaded,
    Ready,
    Recorded,
    Spawn,
    TryFacts,
    TryFinished,
    TryStarted,
    XComReadFailed,
    XComRequest,
    XComsRead,
)
from dagrunner.execution.run_services import PipeRunServices
from dagrunner.execution.runner import TryOutcome, run_callbacks
from dagrunner.execution.secrets import PipeSecrets

if TYPE_CHECKING:
    from dagrunner.execution.attempt import XComLoader
    from dagrunner.execution.runnable import RunnableTask
    from dagrunner.execution.worker_config import WorkerConfig

_PR_SET_PDEATHSIG = 1
#: Without pidfds (not Linux), how often the forker looks for task processes that exited.
_REAP_POLL_S = 0.05
#: What a forker imports before it serves, so the first DAG file it imports finds them loaded: what DAG
#: files import (the modules a task process runs are imported with this one).
FORKER_PRELOAD = ("dagrunner.operators",)

#: What a lean forker's interpreter runs, with the fd of its pipe as argv[1]: adopt the worker's sys.path
#: and argv before importing anything of ours or the user's (standard library only until then), import
#: dagrunner from where the worker has it (which need not be what sys.path finds first: a forkserver
#: imports its preload before it adopts the scheduler's sys.path), then serve.
_BOOT = (
    "import sys\n"
    "from multiprocessing.connection import Connection\n"
    "conn = Connection(int(sys.argv[1]))\n"
    "sys.path[:], sys.argv[:], root = conn.recv()\n"
    "sys.path.insert(0, root)\n"
    "import dagrunner\n"
    "sys.path.remove(root)\n"
    "from dagrunner.execution.forker import forker_main\n"
    "forker_main(conn)\n"
)


# --- the worker's side ---------------------------------------------------------------------------------


class ForkerLink:
    """A worker's handle on its forker: starts it (again, if it died), has it fork task processes and
    import DAG files, and collects what it reports.

    `lean=False`: the forker is forked from the worker, ready at once. `lean=True`: it is a fresh
    interpreter that keeps no descriptor of ours but its pipe; it imports while we go on (what we send
    meanwhile waits in the pipe) and reports `Ready` when it serves."""

    def __init__(self, config: WorkerConfig, *, lean: bool, inherited: list[Connection]) -> None:
        """`inherited`: the worker's connections a forked forker must close (its executor pipe)."""
        self.config = config
        self.lean = lean
        self.inherited = inherited
        self.process: subprocess.Popen[bytes] | _Forked | None = None
        self.pid = 0
        self.conn: Connection | None = None
        self.ready = False
        self.loaded: dict[int, Loaded] = {}
        self.exited: dict[int, int] = {}
        self.death = ""
        self.start()

    @property
    def alive(self) -> bool:
        return self.conn is not None

    def start(self) -> None:
        mine, theirs = multiprocessing.Pipe(duplex=True)
        config = _forker_config(self.config)
        try:
            if self.lean:
                self.process = subprocess.Popen(_lean_command(theirs.fileno()), pass_fds=[theirs.fileno()])
            else:
                self.process = _fork_forker(theirs, [mine, *self.inherited], config)
        finally:
            theirs.close()  # only the forker holds that end now: its death closes the pipe
        self.pid, self.conn, self.ready = self.process.pid, mine, not self.lean
        self.loaded.clear()
        self.exited.clear()
        if self.lean:
            try:
                mine.send((sys.path, sys.argv, _package_root()))
                mine.send(config)
            except OSError:
                self._lost()

    def running(self) -> bool:
        """Whether the forker is still there (False: it died, noticed now or earlier; `start` another)."""
        if self.conn is None or self.process is None:
            return False
        code = self.process.poll()
        if code is not None:
            self._lost(code)
        return code is None

    def spawn(self) -> Connection:
        """Have a task process forked; returns the worker's end of the pipe to it (usable at once: what
        is sent waits in the pipe until the process reads it)."""
        mine, theirs = multiprocessing.Pipe(duplex=True)
        try:
            if self.conn is not None:
                self.conn.send(Spawn())
                send_handle(self.conn, theirs.fileno(), self.pid)
        except OSError:
            self._lost()
        finally:
            theirs.close()  # only the forker and the task process hold that end now
        return mine

    def load(self, seq: int, item: WorkItem) -> str | None:
        """Have the forker import `item`'s DAG file; the error that keeps its task from running, or None."""
        try:
            if self.conn is not None:
                self.conn.send(Load(seq, item))
        except OSError:
            self._lost()
        while seq not in self.loaded and self.conn is not None:
            self.pump(None)
        answer = self.loaded.pop(seq, None)
        return self.death_message() if answer is None else answer.error

    def pump(self, timeout: float | None = 0.0) -> None:
        """Read what the forker reported (waiting up to `timeout` for the first message)."""
        try:
            if self.conn is None or not self.conn.poll(timeout):
                return
            while self.conn.poll():
                message: FromForker = self.conn.recv()
                match message:
                    case Exited(pid, status):
                        self.exited[pid] = status
                    case Ready():
                        self.ready = True
                    case Loaded(seq):
                        self.loaded[seq] = message
        except (EOFError, OSError):
            self._lost()

    def forget_exited(self) -> None:
        """Drop the exits reported so far: a new try's process is the only one that matters now."""
        self.exited.clear()

    def death_message(self) -> str:
        return self.death or "the forker process died"

    def stop(self) -> None:
        """Close the pipe (the forker exits when it sees that) and reap it."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            self._reap(wait_s=5.0)

    def _lost(self, code: int | None = None) -> None:
        """The forker is gone: close our end, reap it, and remember why for the try it failed."""
        if self.conn is None:
            return
        self.conn.close()
        self.conn = None
        if code is None:
            code = self._reap(wait_s=1.0)
        what = "is gone" if code is None else describe_exit(code, FORKER_CODES)
        self.death = f"the forker process {self.pid}, which imports DAG files and starts task processes, {what}"

    def _reap(self, wait_s: float) -> int | None:
        """The forker's exit code (negative: the signal that killed it), killing it if it does not
        exit within `wait_s`."""
        if self.process is None:
            return None
        try:
            return self.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class _Forked:
    """A forker forked from the worker, behind the part of Popen's interface that ForkerLink uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: as Popen does, call it an exit with 0
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"forker {self.pid}", timeout or 0.0)
            time.sleep(0.001)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def _forker_config(config: WorkerConfig) -> ForkerConfig:
    """What a forker needs of its worker's `config` (the worker being this process)."""
    return ForkerConfig(
        worker_pid=os.getpid(),
        dags_folder=config.dags_folder,
        plugins_folder=config.plugins_folder,
        import_timeout_s=config.import_timeout_s,
    )


# --- the forker process ----------------------------------------------------------------------------------


def _fork_forker(conn: Connection, to_close: list[Connection], config: ForkerConfig) -> _Forked:
    """Fork a forker from this (the worker's) process, serving on `conn`."""
    _flush_stdio()
    pid = os.fork()
    if pid == 0:  # the forker: never return into the worker's code
        code: int = ExitCode.FORKER_FAILED
        try:
            for other in to_close:
                other.close()
            code = Forker(conn, config).serve() if _tied_to(config.worker_pid) else ExitCode.ORPHANED
        except BaseException:  # noqa: BLE001 - say why on stderr, then go
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)
    return _Forked(pid)


def _lean_command(fd: int) -> list[str]:
    """The command line of a lean forker whose pipe is `fd`, with this interpreter's flags (-X, -W...)."""
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]  # as multiprocessing
    return [sys.executable, *flags, "-c", _BOOT, str(fd)]


def _package_root() -> str:
    """The folder that holds the `dagrunner` package this process runs."""
    package = sys.modules["dagrunner"].__file__
    assert package is not None
    return os.path.dirname(os.path.dirname(os.path.abspath(package)))


def forker_main(conn: Connection) -> None:
    """Entry point of a lean forker (run by `_BOOT`, with the worker's sys.path adopted)."""
    code: int = ExitCode.FORKER_FAILED
    try:
        config: ForkerConfig = conn.recv()
        code = ExitCode.ORPHANED
        if _tied_to(config.worker_pid):
            for name in FORKER_PRELOAD:
                importlib.import_module(name)
            with contextlib.suppress(OSError):  # the worker stopped while we imported: serve sees EOF
                conn.send(Ready())
            code = Forker(conn, config).serve()
    except BaseException:  # noqa: BLE001 - say why on stderr, then go
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        _flush_stdio()
        os._exit(code)  # no interpreter teardown: nothing of ours needs it


def _tied_to(worker_pid: int) -> bool:
    """Die with the worker from now on; False when it is gone already (before PDEATHSIG was armed)."""
    _die_with_parent()
    return os.getppid() == worker_pid


class Forker:
    def __init__(self, conn: Connection, config: ForkerConfig) -> None:
        self.conn = conn
        self.config = config
        self.cache = DagCache(
            dags_folder=config.dags_folder,
            plugins_folder=config.plugins_folder,
            import_timeout_s=config.import_timeout_s,
        )
        #: pidfd (or pid, without pidfds) -> pid of each task process not yet reaped.
        self.children: dict[int, int] = {}
        self.pidfds = _pidfds_work()

    def serve(self) -> int:
        """Serve the worker until it closes the pipe; returns the exit code."""
        while True:
            polling = not self.pidfds and bool(self.children)
            watched: list[Any] = [self.conn, *([] if polling else self.children)]
            ready = wait(watched, timeout=_REAP_POLL_S if polling else None)
            self._reap(ready, polling)
            if self.conn not in ready:
                continue
            try:
                match self.conn.recv():
                    case Spawn():
                        self._fork(recv_handle(self.conn))
                    case Load(seq, item):
                        _, error = attempt.load_task(self.cache, item)
                        self._send(Loaded(seq, error))
            except (EOFError, OSError):
                return ExitCode.OK

    def _fork(self, fd: int) -> None:
        _flush_stdio()
        gc.freeze()  # keep the warm heap's pages shared: the child's GC then never touches them
        forker_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the task process: never return into the forker's code
            code: int = ExitCode.TASK_PROCESS_FAILED
            try:
                self.conn.close()
                code = _task_process(Connection(fd), self.cache, forker_pid)
            except BaseException:  # noqa: BLE001 - reported as a death without outcome; say why
                with contextlib.suppress(Exception):
                    traceback.print_exc()
                    sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(fd)
        self.children[os.pidfd_open(pid) if self.pidfds else pid] = pid

    def _reap(self, ready: list[Any], polling: bool) -> None:
        for handle, pid in list(self.children.items()):
            if not polling and handle not in ready:
                continue
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped == 0:
                continue
            del self.children[handle]
            if self.pidfds:
                os.close(handle)
            self._send(Exited(pid, status))

    def _send(self, message: FromForker) -> None:
        with contextlib.suppress(OSError):  # the worker is gone; we die with it
            self.conn.send(message)


# --- inside the task process -----------------------------------------------------------------------------


def _task_process(conn: Connection, cache: DagCache, forker_pid: int) -> int:
    """Get ready, take the try assigned, run it, report; returns the exit code. Runs only in the child."""
    _die_with_parent()
    if os.getppid() != forker_pid:  # the forker died before PDEATHSIG was armed
        return ExitCode.ORPHANED
    os.setpgid(0, 0)  # before the worker learns our pid, so it can always kill the group
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    masker = SecretMasker.from_environ()
    output = OutputRedirect(masker)  # built now, attached to the log when the try starts
    try:
        assign: Assign = conn.recv()
    except (EOFError, OSError):
        return ExitCode.OK  # not needed after all (the worker stopped, or replaced us)
    item = assign.item
    found = cache.cached_task(item.fileloc, item.key.dag_id, item.key.task_id)
    try:
        if found is None:
            conn.send(Declined())
            return ExitCode.OK
        task, stamp = found
        conn.send(Accepted(os.getpid(), _facts(task), stamp, None if assign.known == stamp else _upstreams(task)))
        started: TryStarted = conn.recv()
    except (EOFError, OSError):  # the worker is gone, or fenced the try out and closed the pipe
        return ExitCode.OK
    fd = os.open(assign.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    output.attach(fd)
    os.close(fd)
    try:
        return _run_try(conn, task, item, started, masker, output)
    except BaseException:  # noqa: BLE001 - say why in the try's log (drained below), then go
        with contextlib.suppress(Exception):
            traceback.print_exc()
        return ExitCode.TASK_PROCESS_FAILED
    finally:
        output.drain()


def _run_try(
    conn: Connection,
    task: RunnableTask,
    item: WorkItem,
    started: TryStarted,
    masker: SecretMasker,
    output: OutputRedirect,
) -> int:
    """Run the started try, send how it finished and, with callbacks, run them for the state recorded.

    The output is drained into the log before each report, so a recorded end has its whole log."""
    lock = threading.Lock()  # one pipe for XCom, run-service and secret requests: one at a time
    services = PipeRunServices(conn, lock)
    secrets = PipeSecrets(conn, lock)
    outcome, prepared = attempt.run_here(task, item, started.start, masker, _xcom_loader(conn, lock),
                                         services=services, secrets=secrets)  # fmt: skip
    output.drain()
    wants_recorded = prepared is not None and _has_callbacks(prepared.task)
    try:
        conn.send(TryFinished(outcome, wants_recorded))
    except Exception as exc:  # noqa: BLE001 - a value pickle refuses; the worker must still hear
        failed = TryOutcome.failed(f"the outcome could not be sent: {type(exc).__name__}: {exc}")
        conn.send(TryFinished(failed, wants_recorded))
    if not wants_recorded:
        return ExitCode.OK
    try:
        recorded: Recorded = conn.recv()
    except (EOFError, OSError):
        return ExitCode.OK  # the worker is gone; it could not record callbacks either
    assert prepared is not None
    errors = run_callbacks(prepared.task, recorded.state, prepared.context, masker=masker)
    output.drain()
    conn.send(CallbacksRan(tuple(errors)))
    return ExitCode.OK


def _facts(task: RunnableTask) -> TryFacts:
    return TryFacts(attempt.upstream_of(task), attempt.policy_of(task), attempt.timeout_seconds(task))


def _upstreams(task: RunnableTask) -> dict[str, frozenset[str]]:
    return {task_id: frozenset(other.upstream_task_ids) for task_id, other in task.dag.task_dict.items()}


def _has_callbacks(task: RunnableTask) -> bool:
    return bool(
        task.on_success_callback or task.on_failure_callback or task.on_retry_callback or task.on_skipped_callback
    )


def _xcom_loader(conn: Connection, lock: threading.Lock) -> XComLoader:
    """Reads XComs the worker did not pre-fetch: the worker reads them and answers over the pipe (see
    `worker.TryProcess._answer_xcoms`). A task process opens no database connection of its own: importing
    SQLAlchemy for it would cost more than the try."""

    def load(task_ids: list[str]) -> XComRows:
        with lock:
            conn.send(XComRequest(tuple(task_ids)))
            reply = conn.recv()
        match reply:
            case XComsRead(rows):
                return rows
            case XComReadFailed(error):
                raise ExecutionError(f"reading the XComs of {', '.join(task_ids)} failed in the worker: {error}")
        raise ExecutionError(f"the worker answered a request for XComs with {type(reply).__name__}")

    return load


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this process when its parent dies (elsewhere: no-op)."""
    if _PRCTL is not None:
        with contextlib.suppress(Exception):
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _load_prctl() -> Any:
    """libc's prctl, looked up once (a dlopen per task process would cost half a millisecond)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _pidfds_work() -> bool:
    """Whether this system has pidfds (Linux 5.3+): a task process's exit then wakes the forker."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


_PRCTL = _load_prctl()
