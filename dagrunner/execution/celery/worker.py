"""The worker side of the Celery executor: what `dagrunner worker` runs for each message.

A Celery worker (thread pool, `concurrency` threads, late acks, prefetch 1 per thread) hands each try to a
`TryRunner`: a `LocalExecutor` with `concurrency` warm worker processes. The pool thread that took the
message gives the try straight to a free warm worker and waits; one dispatcher thread reads the tries' ends
and publishes them (no thread in between on the way in: a chain's next try starts a hand-over sooner).
So a try runs with exactly the local executor's runner and isolation (a forker forks one process per try:
an exception, `os._exit`, a segfault or a hang fails only that try, and a worker process that dies is
replaced), records its own start and outcome fenced on (state, try_number), and heartbeats per try.

Before a try is handed over, its message is checked (`messages.decode_try`: JSON of the exact shape, the
DAG file inside this worker's DAG folder) and the DAG file's content hash is compared with the one the
scheduler parsed: a different file fails that try (fail-fast, the reason audited and in its log) instead
of running other code.

A message delivered twice (at-least-once delivery, `acks_late`) is handed over twice, and the start fence
lets only one start: the other is refused (the instance is no longer `queued` at that try) and reported to
nobody. The end of a try is published at once to the scheduler's event queue named in the message
(`executor` module docstring). A kill request arrives on a fanout exchange every worker binds a queue to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from dagrunner.clock import utcnow
from dagrunner.execution import recording
from dagrunner.execution.base import TaskKey, TryEvent
from dagrunner.execution.celery.app import make_app
from dagrunner.execution.celery.messages import (
    CONTROL_EXCHANGE,
    RUN_TRY_TASK,
    MessageError,
    TryMessage,
    decode_kill,
    decode_try,
    encode_event,
)
from dagrunner.execution.local import LocalExecutor
from dagrunner.execution.logs import log_path, open_log, write_line
from dagrunner.execution.retries import RetryPolicy
from dagrunner.execution.runner import TryOutcome
from dagrunner.loading.isolated_import import file_hash
from dagrunner.loading.sync import parse_salt
from dagrunner.persistence.engine import make_engine
from dagrunner.settings import Settings

log = logging.getLogger(__name__)
HOSTNAME = socket.gethostname()

#: How long `stop` waits for the dispatcher to finish the tries in hand.
_STOP_WAIT_S = 30.0


class TryRunner:
    """Runs tries in a LocalExecutor's warm workers; Celery's pool threads call `run` and wait in it."""

    def __init__(self, settings: Settings, *, actor: str, concurrency: int, publish: Callable[[str, TryEvent], None]):
        self.settings = settings
        self.actor = actor
        self.publish = publish
        self.local = LocalExecutor(settings, settings.db_url, actor=actor, parallelism=concurrency)
        self.engine = make_engine(settings.db_url, busy_timeout=settings.sqlite_busy_timeout)
        #: (key, try_number) -> the deliveries handed over and not ended: (reply_to, future) in order.
        self._waiting: dict[tuple[TaskKey, int], deque[tuple[str, Future[TryEvent]]]] = {}
        #: Guards `_waiting` and the stop: a delivery is either handed over before the stop or refused.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._dispatch, name="try-dispatcher", daemon=True)
        self._salt = parse_salt(settings)
        self._dags = settings.dags_folder.resolve()
        self._hashes: dict[str, tuple[tuple[int, int], str]] = {}

    def start(self) -> None:
        self.local.start()
        self._thread.start()

    def stop(self, grace_s: float = _STOP_WAIT_S) -> None:
        with self._lock:
            self._stop.set()
        self.local.wake()
        self._thread.join(timeout=grace_s)
        self.local.shutdown(grace_s)

    # --- from Celery's pool threads -------------------------------------------------------------------

    def handle(self, body: object) -> None:
        """The Celery task: check the message, refuse a changed DAG file, else run the try and wait for it."""
        try:
            message = self._checked(decode_try(body))
        except MessageError as exc:
            log.error("refused a broker message that is not a dagrunner try: %s", exc)
            return
        refusal = self._file_refusal(message)
        if refusal is not None:
            self._refuse(message, refusal)
            return
        item = message.item
        done: Future[TryEvent] = Future()
        with self._lock:
            if self._stop.is_set():  # Celery stops taking messages first: only a race gets here
                log.warning("%s try %d: not started, the worker is stopping", item.key.label(), item.try_number)
                return
            self._waiting.setdefault((item.key, item.try_number), deque()).append((message.reply_to, done))
            self.local.submit(item)  # to a free warm worker now; its end comes back to the dispatcher
        done.result()

    def kill(self, key: TaskKey, try_number: int, reason: str) -> None:
        with self._lock:
            if (key, try_number) not in self._waiting:
                return
            self.local.kill(key, reason)
        self.local.wake()  # a try not handed to a worker yet is reported at once: the dispatcher reads it

    def _checked(self, message: TryMessage) -> TryMessage:
        """The message with its DAG file inside this worker's DAG folder (a relative path is taken there);
        MessageError for any other file: a broker message never names code outside the DAG folder."""
        path = Path(message.item.fileloc)
        full = (path if path.is_absolute() else self._dags / path).resolve()
        if not full.is_relative_to(self._dags) or full.suffix != ".py":
            raise MessageError(f"fileloc {message.item.fileloc!r} is not a .py file inside {self._dags}")
        return replace(message, item=replace(message.item, fileloc=str(full)))

    def _file_refusal(self, message: TryMessage) -> str | None:
        """Why the try must not run here: its DAG file differs from the one the scheduler parsed."""
        if message.file_hash is None:
            return None
        path = Path(message.item.fileloc)
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            known = self._hashes.get(str(path))
            digest = known[1] if known is not None and known[0] == stamp else file_hash(path, self._salt)
            self._hashes[str(path)] = (stamp, digest)
        except OSError as exc:
            return f"its DAG file {path} cannot be read on worker {HOSTNAME}: {exc}"
        if digest != message.file_hash:
            return (
                f"its DAG file {path} on worker {HOSTNAME} differs from the one the scheduler parsed (content "
                f"hash {digest[:12]} here, {message.file_hash[:12]} there), so it was not run: deploy the same "
                "DAG folder (and dagrunner version and parse settings) to the scheduler and every worker"
            )
        return None

    def _refuse(self, message: TryMessage, reason: str) -> None:
        """Record the try as started and failed at once (fail-fast, fenced), with `reason` in its log."""
        item = message.item
        path = log_path(self.settings.logs_folder, item.key, item.try_number)
        now = utcnow()
        outcome = TryOutcome.failed(reason, fail_fast=True, exit_code=None)
        with self.engine.begin() as conn:
            started = recording.start_try(conn, item, hostname=HOSTNAME, pid=os.getpid(), log_path=str(path),
                                          now=now, actor=self.actor)  # fmt: skip
            if started is None:
                return  # a duplicate or stale message: fenced out, nothing to say
            state = recording.finish_try(conn, item, outcome, policy=RetryPolicy.none(), now=now, actor=self.actor)
        fd = open_log(path)
        try:
            write_line(fd, f"[dagrunner] try {item.try_number} of {item.key.label()} refused on {HOSTNAME}: {reason}")
        finally:
            os.close(fd)
        log.error("%s: %s", item.key.label(), reason)
        self.publish(message.reply_to, TryEvent(item.key, item.try_number, "finished", state.value, reason))

    # --- the dispatcher thread ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while not (self._stop.is_set() and not self._waiting):
            for event in self.local.events(0.5):
                self._ended(event)

    def _ended(self, event: TryEvent) -> None:
        with self._lock:
            waiting = self._waiting.get((event.key, event.try_number))
            if not waiting:
                return
            reply_to, done = waiting.popleft()
            if not waiting:
                del self._waiting[(event.key, event.try_number)]
        refused = event.kind == "finished" and event.state is None and event.detail.startswith("not started")
        if refused:
            log.info("%s try %d: %s", event.key.label(), event.try_number, event.detail)
        else:
            self.publish(reply_to, event)
        done.set_result(event)


class EventPublisher:
    """Publishes try events to a scheduler's event queue over the broker (thread-safe)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, reply_to: str, event: TryEvent) -> None:
        try:
            with self._lock, self.app.producer_or_acquire() as producer:
                producer.publish(encode_event(event), exchange="", routing_key=reply_to, serializer="json",
                                 retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2})  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the DB has the outcome; the scheduler's poll finds it
            log.warning("could not tell scheduler queue %s about %s: %s", reply_to, event.key.label(), exc)


def listen_for_kills(app: Any, runner: TryRunner, stop: threading.Event) -> threading.Thread:
    """A thread consuming kill requests from the control fanout exchange (a queue of this worker's own)."""
    from kombu import Exchange, Queue

    exchange = Exchange(CONTROL_EXCHANGE, type="fanout", durable=False, auto_delete=False)
    name = f"dagrunner.control.{HOSTNAME}.{os.getpid()}"
    control = Queue(name, exchange=exchange, routing_key="", durable=False, auto_delete=True, exclusive=True)

    def on_message(body: Any, _message: Any) -> None:
        try:
            key, try_number, reason = decode_kill(body)
        except MessageError as exc:
            log.warning("ignored a malformed kill request: %s", exc)
            return
        runner.kill(key, try_number, reason)

    def consume() -> None:
        while not stop.is_set():
            try:
                with (
                    app.connection_for_read() as conn,
                    conn.Consumer(control, callbacks=[on_message], accept=["json"], no_ack=True),
                ):
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError, socket.timeout):
                            conn.drain_events(timeout=0.5)
            except Exception as exc:  # noqa: BLE001 - the broker went away; Celery reconnects too
                log.warning("kill requests: %s; reconnecting", exc)
                stop.wait(1.0)

    thread = threading.Thread(target=consume, name="kill-requests", daemon=True)
    thread.start()
    return thread


def run_worker(
    settings: Settings,
    *,
    actor: str,
    queues: list[str],
    concurrency: int,
    hostname: str,
    loglevel: str = "WARNING",
) -> None:
    """Run a Celery worker on `queues` until SIGTERM/SIGINT (Celery's warm shutdown: tries in hand finish)."""
    app = make_app(settings)
    publish = EventPublisher(app)
    runner = TryRunner(settings, actor=actor, concurrency=concurrency, publish=publish)

    @app.task(name=RUN_TRY_TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def run_try(body: object) -> None:
        runner.handle(body)

    stop = threading.Event()
    runner.start()
    listen_for_kills(app, runner, stop)
    try:
        worker = app.Worker(
            hostname=hostname, queues=queues, concurrency=concurrency, pool="threads", loglevel=loglevel,
            without_heartbeat=True, without_mingle=True, without_gossip=True, optimization="fair",
        )  # fmt: skip
        worker.start()
    finally:
        stop.set()
        runner.stop()
