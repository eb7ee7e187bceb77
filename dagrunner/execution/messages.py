"""Every message between the processes of the local executor: the whole protocol, in one file.

Four kinds of process talk over `multiprocessing` pipes, each message one frozen dataclass (pickled)::

    scheduler process          worker process               forker process           task process
    -----------------          --------------               --------------           ------------
    LocalExecutor --WorkItem--> Worker
                  --KillRequest->
                  --Stop------->
                  <--Report-----
                               Worker --ForkerConfig------> Forker
                                      --Spawn (+ a pipe end)->  --fork------------> (on that pipe)
                                      --Load--------------->
                                      <--Ready--------------  (a lean forker, once)
                                      <--Loaded-------------
                                      <--Exited-------------  (it reaped a task process)
                               Worker --Assign-------------------------------------> task process
                                      <--Accepted | Declined ------------------------
                                      --TryStarted---------------------------------->
                                      <--XComRequest --------------------------------  (any number)
                                      --XComsRead | XComReadFailed ----------------->
                                      <--ServiceCall --------------------------------  (any number, run_services)
                                      --ServiceAnswer ------------------------------>
                                      <--SecretRequest ------------------------------  (any number)
                                      --SecretAnswer -------------------------------->
                                      <--TryFinished---------------------------------
                                      --Recorded------------------------------------>  (if it has callbacks)
                                      <--CallbacksRan -------------------------------

One message is not a dataclass: a lean forker is a fresh interpreter, and the first thing its worker
sends is `(sys.path, sys.argv, package_root)` as a plain tuple, because the forker must adopt them before it
can import anything of ours (unpickling a class of ours would import dagrunner from the wrong place).

A closed pipe is also a message: the executor closing a worker's pipe stops it like `Stop`; a worker
closing a task process's pipe before `TryStarted` (a try fenced out) makes it exit without running.

Nothing here imports at run time beyond `base`: the scheduler process, the worker, a lean forker and every
task process import this module, and a task process is a fork whose cost grows with what is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagrunner.execution.base import TaskKey, TryEvent, WorkItem, XComRows
from dagrunner.execution.run_services import ServiceCall

if TYPE_CHECKING:
    from dagrunner.execution.attempt import TryStart
    from dagrunner.execution.retries import RetryPolicy
    from dagrunner.execution.runner import TryOutcome

#: A DAG file as the DAG cache holds it: (mtime_ns, size).
Stamp = tuple[int, int]


# --- executor <-> worker ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stop:
    """Executor -> worker: take no more work; finish the try in hand (if any), record it, and exit."""


@dataclass(frozen=True, slots=True)
class KillRequest:
    """Executor -> worker: stop this try's process group; it fails with `reason`.

    `interrupted`: the executor is shutting down, so the try did not fail on its own (see
    `TryOutcome.interrupted`).
    """

    key: TaskKey
    try_number: int
    reason: str
    fail_fast: bool = True
    interrupted: bool = False


#: What a worker reads from its executor: a try to run (the `WorkItem` itself), a kill, or a stop.
FromExecutor = WorkItem | KillRequest | Stop


@dataclass(frozen=True, slots=True)
class Report:
    """Worker -> executor: an event about the try it holds (if any), and whether it is free for the next.

    A try without callbacks is reported finished and the worker free in one message, so the executor
    can hand the worker its next try on the same wake-up."""

    event: TryEvent | None = None
    idle: bool = False


IDLE = Report(idle=True)


# --- worker <-> forker ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForkerConfig:
    """Worker -> forker, first (after the lean forker's sys.path): what the forker and its task processes
    need of the worker's configuration (not the WorkerConfig itself: a forker needs only this much)."""

    worker_pid: int
    dags_folder: Path | None
    plugins_folder: Path | None
    import_timeout_s: float


@dataclass(frozen=True, slots=True)
class Spawn:
    """Worker -> forker: fork a task process on the pipe whose end follows as a passed descriptor."""


@dataclass(frozen=True, slots=True)
class Load:
    """Worker -> forker: import the DAG file of `item` if it is new or changed (answered by `Loaded`)."""

    seq: int
    item: WorkItem


@dataclass(frozen=True, slots=True)
class Ready:
    """Lean forker -> worker: it has imported what it needs and serves (a forked forker is ready at once)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """Forker -> worker: the file of try `seq` is imported; `error` says why its task cannot be had."""

    seq: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Exited:
    """Forker -> worker: task process `pid` exited and was reaped (`status` as os.waitpid gives it)."""

    pid: int
    status: int


FromForker = Ready | Loaded | Exited


# --- worker <-> task process ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assign:
    """Worker -> task process: this is your try. `known` is the stamp of the DAG file the worker's
    upstream map of this DAG came from (None: it has none)."""

    item: WorkItem
    log_path: str
    known: Stamp | None


@dataclass(frozen=True, slots=True)
class TryFacts:
    """What the worker needs to know about a task to start, supervise and record a try of it."""

    upstream_task_ids: frozenset[str]
    policy: RetryPolicy
    timeout_s: float | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """Task process -> worker: it has the task and waits for `TryStarted`."""

    pid: int
    facts: TryFacts
    stamp: Stamp
    #: task_id -> upstream task ids for every task of the DAG, when `Assign.known` is not `stamp`: the
    #: worker records the next tries of this DAG without waiting for an answer first.
    upstreams: dict[str, frozenset[str]] | None = None


@dataclass(frozen=True, slots=True)
class Declined:
    """Task process -> worker: its DAG cache does not have the task's file as it is now; it exits."""


@dataclass(frozen=True, slots=True)
class TryStarted:
    """Worker -> task process: the try is recorded `running`; run it with what starting it read."""

    start: TryStart


@dataclass(frozen=True, slots=True)
class XComRequest:
    """Task process -> worker: read these tasks' XComs for me (the try was not given them up front, and a
    task process has no database connection of its own)."""

    task_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class XComsRead:
    """Worker -> task process: the XComs an `XComRequest` asked for."""

    rows: XComRows


@dataclass(frozen=True, slots=True)
class XComReadFailed:
    """Worker -> task process: the XComs could not be read (the task's pull fails with `error`)."""

    error: str


XComReply = XComsRead | XComReadFailed


@dataclass(frozen=True, slots=True)
class SecretRequest:
    """Task process -> worker: a connection's JSON form or a variable's value from the metadata DB, or set a
    variable (`op`: "connection", "variable", "set_variable"); see `execution.secrets`."""

    op: str
    key: str
    value: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class SecretAnswer:
    """Worker -> task process: the value (None: not stored), or why it could not be read (`error`)."""

    value: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TryFinished:
    """Task process -> worker: how the try finished. With `wants_recorded` it has callbacks and waits for
    `Recorded` to run them; otherwise it exits at once."""

    outcome: TryOutcome
    wants_recorded: bool


@dataclass(frozen=True, slots=True)
class Recorded:
    """Worker -> task process: the try's outcome is recorded as `state` (a TaskInstanceState value); run
    the callbacks for it."""

    state: str


@dataclass(frozen=True, slots=True)
class CallbacksRan:
    """Task process -> worker: the callbacks ran; one line per callback that raised (audited)."""

    errors: tuple[str, ...]


#: What a task process may send while its try runs (after `TryStarted`).
FromTaskProcess = XComRequest | ServiceCall | SecretRequest | TryFinished | CallbacksRan
