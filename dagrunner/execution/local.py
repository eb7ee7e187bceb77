"""LocalExecutor (the default): `parallelism` warm worker processes on this machine.

Workers are started with multiprocessing's forkserver (dagrunner and its heavy dependencies preloaded
once) or spawn where there is none, never forked from the scheduler, so they share none of its state
or database connections. Each has its own duplex pipe, so the executor always knows which worker holds
which try; a worker runs one try at a time, each in a process of its own that the worker's forker
forked (see `execution.worker` and `execution.forker`).

`events()` waits on every worker's pipe and process sentinel at once: a try's end wakes the scheduler
the moment it is recorded, and a worker with no callbacks to wait for says in the same message that it
is free, so the next try is handed over on the same wake-up. A worker that dies is replaced, and its
try (if any) is reported `lost` so the scheduler records the failure.

`submit`, `kill` and `wake` may be called from other threads than the one waiting in `events()` (the
celery worker's pool threads hand their tries straight to a warm worker this way): one lock covers the
executor's state, and is not held while `events()` waits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from dagrunner.errors import ExecutionError
from dagrunner.execution.base import Executor, TaskKey, TryEvent, WorkItem
from dagrunner.execution.messages import KillRequest, Report, Stop
from dagrunner.execution.worker import worker_main
from dagrunner.execution.worker_config import HEARTBEAT_S, LEAN_FORKER_AFTER, WorkerConfig
from dagrunner.settings import Settings
from dagrunner.subprocesses import preloaded_context, start_process

#: After `shutdown` kills the tries left, how long their workers get to record them.
_KILL_RECORD_WAIT_S = 10.0


@dataclass
class _WorkerHandle:
    process: BaseProcess
    conn: Connection
    #: The try it holds (from submit until its `finished` event).
    item: WorkItem | None = None
    #: False from dispatch until the worker reports idle (it may still be running callbacks).
    idle: bool = True


class LocalExecutor(Executor):
    name = "local"

    def __init__(
        self,
        settings: Settings,
        engine_url: str | None = None,
        *,
        actor: str,
        parallelism: int | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        lean_forker_after: int = LEAN_FORKER_AFTER,
    ) -> None:
        self.settings = settings
        self.parallelism = max(1, parallelism or settings.parallelism)
        self.config = WorkerConfig.from_settings(
            settings, actor=actor, engine_url=engine_url, heartbeat_s=heartbeat_s, lean_forker_after=lean_forker_after
        )
        self._workers: list[_WorkerHandle] = []
        self._pending: deque[WorkItem] = deque()
        self._events: list[TryEvent] = []
        self._started = False
        self._stopping = False
        self._ctx: Any = None
        # wake(): a byte on this self-pipe ends the wait in `events()` (read end in every `wait()` list).
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._woken = False
        self._lock = threading.RLock()

    # --- life cycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._ctx = _mp_context()
        # The workers run in the environment and directory the scheduler has now, not the forkserver's.
        self.config = dataclasses.replace(self.config, environ=dict(os.environ), cwd=os.getcwd())
        self._started = True
        for _ in range(self.parallelism):
            self._workers.append(self._spawn())

    def _spawn(self) -> _WorkerHandle:
        mine, theirs = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main, args=(theirs, self.config), name="dagrunner-worker", daemon=True
        )
        start_process(process)  # without re-running the caller's __main__ in the worker
        theirs.close()  # only the worker holds its end now: its death (or ours) closes the pipe
        return _WorkerHandle(process, mine)

    def shutdown(self, grace_s: float) -> list[tuple[TaskKey, int]]:
        """No new work; running tries get `grace_s`, then are killed (retryable) and recorded by their
        workers; work never handed to a worker is returned unstarted. Returns every try left over."""
        self._stopping = True
        left: list[tuple[TaskKey, int]] = [(item.key, item.try_number) for item in self._pending]
        self._pending.clear()
        deadline = time.monotonic() + grace_s
        while self._in_flight() and time.monotonic() < deadline:
            self._collect(min(0.5, max(0.0, deadline - time.monotonic())))
        killed = [w.item for w in self._workers if w.item is not None]
        for item in killed:
            reason = f"the executor shut down and killed it after a {grace_s:g}s grace period"
            self._send_kill(item, reason, False, interrupted=True)
        left += [(item.key, item.try_number) for item in killed]
        deadline = time.monotonic() + _KILL_RECORD_WAIT_S
        while self._in_flight() and time.monotonic() < deadline:
            self._collect(min(0.5, max(0.0, deadline - time.monotonic())))
        self._stop_workers()
        return left

    def _stop_workers(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(Stop())
        for worker in self._workers:
            worker.process.join(timeout=5.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5.0)
            worker.conn.close()
        self._workers.clear()

    def __del__(self) -> None:
        # Not in shutdown(): another thread may still wake() us, and a closed fd's number can be reused.
        for fd in (getattr(self, "_wake_r", None), getattr(self, "_wake_w", None)):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    # --- work --------------------------------------------------------------------------------------------

    def submit(self, item: WorkItem) -> None:
        if self._stopping:
            raise ExecutionError(f"the local executor is shutting down; {item.key.label()} was not started")
        if not self._started:
            raise ExecutionError("LocalExecutor.submit() before start(); call start() first")
        with self._lock:
            self._pending.append(item)
            self._dispatch()

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not self._pending:
                return
            if worker.idle and worker.item is None and worker.process.is_alive():
                item = self._pending.popleft()
                try:
                    worker.conn.send(item)
                except OSError:  # died just now: its sentinel will be handled by the next _collect
                    self._pending.appendleft(item)
                    continue
                worker.item, worker.idle = item, False

    @property
    def slots_free(self) -> int:
        with self._lock:
            return max(0, self.parallelism - self._in_flight())

    def running(self) -> set[tuple[TaskKey, int]]:
        with self._lock:
            held = {(w.item.key, w.item.try_number) for w in self._workers if w.item is not None}
            return held | {(item.key, item.try_number) for item in self._pending}

    def kill(self, key: TaskKey, reason: str) -> None:
        with self._lock:
            self._kill(key, reason)

    def _kill(self, key: TaskKey, reason: str) -> None:
        for item in list(self._pending):
            if item.key == key:
                self._pending.remove(item)
                self._events.append(
                    TryEvent(key, item.try_number, "lost", detail=f"killed before it started: {reason}")
                )
        for worker in self._workers:
            if worker.item is not None and worker.item.key == key:
                self._send_kill(worker.item, reason, True)

    def _send_kill(self, item: WorkItem, reason: str, fail_fast: bool, *, interrupted: bool = False) -> None:
        for worker in self._workers:
            if worker.item is item:
                with contextlib.suppress(OSError):
                    worker.conn.send(KillRequest(item.key, item.try_number, reason, fail_fast, interrupted))

    def _in_flight(self) -> int:
        return len(self._pending) + sum(1 for w in self._workers if w.item is not None)

    # --- events --------------------------------------------------------------------------------------------

    def events(self, timeout: float | None = 0.0) -> list[TryEvent]:
        """Events since the last call; waits up to `timeout` (None: forever) when there are none yet."""
        self._collect(0.0)
        deadline = None if timeout is None else time.monotonic() + timeout
        # `_woken` too: a wake-up drained by the look above must end this call, not wait out `timeout`
        # (the celery worker's dispatcher would leave a try it was woken for waiting up to half a second).
        while not self._events and self._workers and not self._woken:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._collect(remaining)
            if self._woken:
                break
        with self._lock:
            self._woken = False
            events, self._events = self._events, []
        return events

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full: a wake-up is pending already
            os.write(self._wake_w, b"!")

    def _collect(self, timeout: float | None) -> None:
        """Read every message that is ready (waiting up to `timeout` for the first), handle deaths."""
        with self._lock:
            if not self._workers:
                return
            by_object: dict[Any, _WorkerHandle] = {}
            for worker in self._workers:
                by_object[worker.conn] = worker
                by_object[worker.process.sentinel] = worker
        ready = wait([*by_object, self._wake_r], timeout=timeout)  # not under the lock: submit() goes on
        with self._lock:
            self._handle_ready(ready, by_object)

    def _handle_ready(self, ready: list[Any], by_object: dict[Any, _WorkerHandle]) -> None:
        dead: list[_WorkerHandle] = []
        for obj in ready:
            if obj == self._wake_r:
                self._drain_wake()
                continue
            worker = by_object[obj]
            if obj is worker.conn:
                if not self._read(worker):
                    dead.append(worker)
            elif worker not in dead:
                dead.append(worker)
        for worker in dead:
            self._replace(worker)
        self._dispatch()

    def _drain_wake(self) -> None:
        self._woken = True
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_r, 512):
                pass

    def _read(self, worker: _WorkerHandle) -> bool:
        """Handle all messages waiting on the worker's pipe; False when the pipe is closed (it died)."""
        try:
            while worker.conn.poll():
                message: Report = worker.conn.recv()
                if message.event is not None:
                    self._events.append(message.event)
                    if worker.item is not None and message.event.key == worker.item.key:
                        worker.item = None
                if message.idle:
                    worker.idle = True
        except (EOFError, OSError):
            return False
        return True

    def _replace(self, worker: _WorkerHandle) -> None:
        """A worker died: drain what it said, report its try lost, start another in its place."""
        if worker not in self._workers:
            return
        self._read(worker)
        worker.process.join(timeout=1.0)
        if worker.item is not None:
            code = worker.process.exitcode
            self._events.append(
                TryEvent(
                    worker.item.key,
                    worker.item.try_number,
                    "lost",
                    detail=f"the worker process running it died (exit code {code})",
                )
            )
        worker.conn.close()
        index = self._workers.index(worker)
        if self._stopping:
            self._workers.pop(index)
        else:
            self._workers[index] = self._spawn()


def _mp_context() -> Any:
    """The shared forkserver with dagrunner preloaded where the platform has it, else spawn."""
    return preloaded_context()
