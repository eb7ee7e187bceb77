"""CeleryExecutor: the scheduler's side of the Celery executor.

`submit` sends the try as a JSON message (`messages.encode_try`) to the Celery queue its task names
(`queue=`, else `celery_default_queue`). There is no result backend: the `dagrunner worker` that runs the
try records its start and outcome in the metadata DB itself, fenced as the local executor's workers do.

How the scheduler learns of a try's end, promptly: every executor declares an event queue of its own on
the same broker (`reply_to`, named in each message); the worker publishes a small JSON event there the
moment the outcome is recorded, and a thread here consumes it (kombu) and wakes `events()`. One broker
round trip (well under a millisecond on Redis), no new infrastructure, and it works the same on Redis and
RabbitMQ. The database stays the truth: every `poll_s` (and whenever a try outstays `queued_timeout_sec`)
one query reads the state of every try in flight, so an event lost with a broker restart or a dead worker
is noticed anyway:

- an instance no longer queued or running at that try: its end is reported (`finished`);
- running, but its heartbeat older than `zombie_threshold_sec`: the worker died (kill -9, machine gone):
  reported `lost`, and the scheduler fails or retries it by its policy;
- still queued `queued_timeout_sec` after it was sent (no worker took it): it is put back to `scheduled`
  without using a try (audited with the reason) and queued again by the scheduler under a new try
  number; the old message, if a worker ever takes it, is fenced out.

A broker that cannot be reached keeps the try queued in the DB and held here; sending is retried every
`_RESEND_S` (one log line when the broker goes away, one when it is back). `shutdown` leaves what is in
the broker there and what runs on workers running: both are recorded by the workers, fenced, whichever
scheduler is alive then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select, tuple_

from dagrunner.clock import Clock, SystemClock
from dagrunner.errors import ExecutionError
from dagrunner.execution import recording
from dagrunner.execution.base import Executor, TaskKey, TryEvent, WorkItem
from dagrunner.execution.celery.app import make_app
from dagrunner.execution.celery.messages import (
    CONTROL_EXCHANGE,
    RUN_TRY_TASK,
    MessageError,
    decode_event,
    encode_kill,
    encode_try,
)
from dagrunner.persistence.engine import make_engine
from dagrunner.persistence.models import DagFile, TaskInstance
from dagrunner.settings import Settings
from dagrunner.states import TaskInstanceState

log = logging.getLogger(__name__)

#: How often the DB is read for the tries in flight (the safety net under the event queue).
POLL_S = 2.0
#: How often sending is retried while the broker is unreachable.
_RESEND_S = 1.0
_TI = cast(Table, TaskInstance.__table__)
_LIVE = (TaskInstanceState.QUEUED, TaskInstanceState.RUNNING)
#: Where an instance is when the try sent never ran: put back (recovery, a clear) before it started.
_NOT_RUN = (TaskInstanceState.NONE, TaskInstanceState.SCHEDULED)


def _ours(row: Any, item: WorkItem) -> bool:
    """The instance's row is still at the try we sent, queued by the job that sent it (an adopter that
    queued it again, under its own job, made our message stale)."""
    return bool(row.try_number == item.try_number and row.queued_by_job_id == item.queued_by_job_id)


@dataclass
class _InFlight:
    item: WorkItem
    queue: str
    sent_at: datetime | None = None  # None: not sent yet (the broker was unreachable)
    started: bool = False
    #: time.monotonic() of the send: the poll leaves a try sent within `poll_s` to its worker's own event.
    sent_mono: float = 0.0


class CeleryExecutor(Executor):
    name = "celery"

    def __init__(
        self,
        settings: Settings,
        *,
        actor: str,
        parallelism: int | None = None,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.settings = settings
        self.actor = actor
        self.parallelism = max(1, parallelism or settings.parallelism)
        self.clock = clock or SystemClock()
        self.poll_s = poll_s
        self.app = make_app(settings)  # a clear error first when celery or the broker URL is missing
        self.engine = make_engine(settings.db_url, busy_timeout=settings.sqlite_busy_timeout)
        self.reply_to = f"dagrunner.events.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self._flight: dict[tuple[TaskKey, int], _InFlight] = {}
        self._events: list[TryEvent] = []
        self._cond = threading.Condition()
        self._woken = False
        self._stopping = False
        self._started = False
        self._consumer: threading.Thread | None = None
        self._consumer_ready = threading.Event()
        self._broker_down_since: float | None = None
        self._next_resend = 0.0
        self._next_poll = 0.0
        #: fileloc -> (the file's (mtime_ns, size), the hash its last parse stored): `_file_hash`.
        self._hashes: dict[str, tuple[tuple[int, int], str]] = {}

    # --- life cycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._consumer = threading.Thread(target=self._consume, name="celery-events", daemon=True)
        self._consumer.start()
        self._consumer_ready.wait(2.0)  # the event queue exists before the first try is sent

    def shutdown(self, grace_s: float) -> list[tuple[TaskKey, int]]:
        """No new work; wait up to `grace_s` for the tries that run on workers to end. Nothing is killed
        and nothing taken back: tries in the broker stay there, tries on workers run on, and both are
        recorded by their workers (a later scheduler sees their outcome). Returns [] (none was killed)."""
        self._stopping = True
        deadline = time.monotonic() + grace_s
        while self._running_on_workers() and time.monotonic() < deadline:
            self._housekeeping()
            with self._cond:
                self._cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        with self._cond:
            flights = list(self._flight.values())
        running = sum(1 for f in flights if f.started)
        queued = sum(1 for f in flights if not f.started and f.sent_at is not None)
        unsent = sum(1 for f in flights if f.sent_at is None)
        if flights:
            log.warning(
                "celery executor stopped: %d tries still running on workers, %d waiting in the broker, %d never "
                "sent (the broker was unreachable; still queued in the DB, a later scheduler queues them again)",
                running, queued, unsent,
            )  # fmt: skip
        self._consumer_ready.clear()
        if self._consumer is not None:
            self._consumer.join(timeout=3.0)
        return []

    def _running_on_workers(self) -> bool:
        with self._cond:
            return any(f.started or f.sent_at is not None for f in self._flight.values())

    # --- work --------------------------------------------------------------------------------------------

    def submit(self, item: WorkItem) -> None:
        if self._stopping:
            raise ExecutionError(f"the celery executor is shutting down; {item.key.label()} was not sent")
        if not self._started:
            raise ExecutionError("CeleryExecutor.submit() before start(); call start() first")
        queue = item.queue if item.queue and item.queue != "default" else self.settings.celery_default_queue
        flight = _InFlight(item, queue)
        with self._cond:
            self._flight[(item.key, item.try_number)] = flight
        if self._broker_down_since is None:
            self._send(flight)

    def _send(self, flight: _InFlight) -> bool:
        """Send one try to its queue; False (the try held, to be sent again) when the broker is unreachable."""
        item = flight.item
        # The file relative to the DAG folder: a worker on another host finds it in its own DAG folder.
        sendable = dataclasses.replace(item, fileloc=_in_dags_folder(item.fileloc, self.settings.dags_folder))
        body = encode_try(sendable, reply_to=self.reply_to, file_hash=self._file_hash(item.fileloc))
        try:
            # argsrepr/kwargsrepr given: Celery would otherwise saferepr() the body for monitoring tools, a
            # quarter of send_task's CPU here, on the path of every chain's next task (docs/celery.md).
            self.app.send_task(RUN_TRY_TASK, args=[body], queue=flight.queue, routing_key=flight.queue,
                               retry=False, priority=None, argsrepr=f"{item.key.label()} try {item.try_number}",
                               kwargsrepr="{}")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - kombu/redis/amqp raise many kinds; all mean "not sent"
            if self._broker_down_since is None:
                self._broker_down_since = time.monotonic()
                log.error("celery broker unreachable (%s: %s); tries stay queued and are sent when it is back",
                          type(exc).__name__, exc)  # fmt: skip
            self._next_resend = time.monotonic() + _RESEND_S
            return False
        if self._broker_down_since is not None:
            log.warning("celery broker reachable again after %.1fs; sending the held tries",
                        time.monotonic() - self._broker_down_since)  # fmt: skip
            self._broker_down_since = None
        flight.sent_at = self.clock.now()
        flight.sent_mono = time.monotonic()
        return True

    def _file_hash(self, fileloc: str) -> str | None:
        """The content hash of the DAG file as the scheduler parsed it (None: the DB has no parse of it).

        Read from `dag_file` once per version of the file, not once per try: the row's hash is kept with the
        file's (mtime_ns, size) when the row's `mtime` says the parse saw the file as it is on disk now, and
        used while the file keeps that stamp (an unchanged file parses to the same hash). A file changed
        since its last parse, or that cannot be stat'ed, is read from the DB every time, as before."""
        try:
            stat = os.stat(fileloc)
        except OSError:
            stat = None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat is not None else None
        known = self._hashes.get(fileloc)
        if known is not None and stamp is not None and known[0] == stamp:
            return known[1]
        with self.engine.connect() as conn:
            row = conn.execute(select(DagFile.file_hash, DagFile.mtime).where(DagFile.path == fileloc)).first()
        if row is None:
            self._hashes.pop(fileloc, None)
            return None
        if stat is not None and stamp is not None and row.mtime == stat.st_mtime:
            self._hashes[fileloc] = (stamp, row.file_hash)
        else:
            self._hashes.pop(fileloc, None)
        return cast(str, row.file_hash)

    @property
    def slots_free(self) -> int:
        with self._cond:
            return max(0, self.parallelism - len(self._flight))

    def running(self) -> set[tuple[TaskKey, int]]:
        with self._cond:
            return set(self._flight)

    def kill(self, key: TaskKey, reason: str) -> None:
        """Tell every worker (a fanout control message) to kill the try; one not known to have started is
        reported `lost` at once (the scheduler returns it to `scheduled` if it is still queued, and a worker
        that takes its message later is fenced out)."""
        with self._cond:
            flights = [f for (k, _), f in self._flight.items() if k == key]
        if any(not f.started for f in flights):
            with contextlib.suppress(Exception):  # which of them started: the DB knows (unknown: not started)
                self._poll(self.clock.now(), [])
        for flight in flights:
            self._publish_kill(flight.item, reason)
            if not flight.started:
                self._end(flight.item.key, flight.item.try_number,
                          TryEvent(key, flight.item.try_number, "lost", detail=f"killed before it started: {reason}"))  # fmt: skip

    def _publish_kill(self, item: WorkItem, reason: str) -> None:
        from kombu import Exchange

        exchange = Exchange(CONTROL_EXCHANGE, type="fanout", durable=False, auto_delete=False)
        try:
            with self.app.producer_or_acquire() as producer:
                producer.publish(encode_kill(item.key, item.try_number, reason), exchange=exchange, routing_key="",
                                 serializer="json", declare=[exchange], retry=False)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the worker's heartbeat sees a moved-on instance anyway
            log.error("could not send the kill of %s to the workers: %s", item.key.label(), exc)

    # --- events ------------------------------------------------------------------------------------------

    def events(self, timeout: float | None = 0.0) -> list[TryEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._housekeeping()
        while True:
            with self._cond:
                if self._events or self._woken:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(self.poll_s if remaining is None else min(remaining, self.poll_s))
                if self._events or self._woken:
                    break  # straight to the scheduler: the DB poll is not due on the path of an event
            self._housekeeping()
        with self._cond:
            self._woken = False
            events, self._events = self._events, []
        return events

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _end(self, key: TaskKey, try_number: int, event: TryEvent) -> None:
        """Report the end of a try in flight, once: the DB poll may see a try ended just before its
        worker's event arrives, and a second event would be taken for the end of the try sent next."""
        with self._cond:
            if self._flight.pop((key, try_number), None) is None:
                return
            self._events.append(event)
            self._cond.notify_all()

    def _housekeeping(self) -> None:
        """Send what the broker refused, and read the DB when it is time (or a try outstayed its queue)."""
        if self._broker_down_since is not None and time.monotonic() >= self._next_resend:
            with self._cond:
                unsent = [f for f in self._flight.values() if f.sent_at is None]
            for flight in unsent:
                if not self._send(flight):
                    break
        now = self.clock.now()
        limit = timedelta(seconds=self.settings.queued_timeout_sec)
        with self._cond:
            if not self._flight:
                return
            overdue = [f for f in self._flight.values() if not f.started and f.sent_at and now - f.sent_at >= limit]
        if overdue or time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self.poll_s
            try:
                self._poll(now, overdue)
            except Exception as exc:  # noqa: BLE001 - a DB outage: the next poll tries again
                log.warning("celery executor: could not read the tries in flight: %s", exc)

    def _poll(self, now: datetime, overdue: list[_InFlight]) -> None:
        """The DB safety net (module docstring): ends, dead workers, tries that outstayed their queue."""
        with self._cond:
            flights = dict(self._flight)
        keys = [(k.dag_id, k.run_id, k.task_id, k.map_index) for k, _ in flights]
        cols = (_TI.c.dag_id, _TI.c.run_id, _TI.c.task_id, _TI.c.map_index)
        query = select(*cols, _TI.c.state, _TI.c.try_number, _TI.c.last_heartbeat, _TI.c.queued_by_job_id).where(
            tuple_(*cols).in_(keys)
        )
        with self.engine.connect() as conn:
            rows = {(r.dag_id, r.run_id, r.task_id, r.map_index): r for r in conn.execute(query)}
        zombie_after = timedelta(seconds=self.settings.zombie_threshold_sec)
        overdue_ids = {id(f) for f in overdue}
        for (key, try_number), flight in flights.items():
            row = rows.get((key.dag_id, key.run_id, key.task_id, key.map_index))
            if row is None or not _ours(row, flight.item) or row.state not in _LIVE:
                if time.monotonic() - flight.sent_mono < self.poll_s:
                    continue  # just sent: its worker's event is due first; the next poll ends it
                ran = row is not None and _ours(row, flight.item) and row.state not in _NOT_RUN
                state = row.state.value if row is not None and ran else None  # None: it never ran (refused)
                self._end(key, try_number, TryEvent(key, try_number, "finished", state=state,
                                                    detail="seen in the database"))  # fmt: skip
            elif row.state == TaskInstanceState.RUNNING:
                flight.started = True
                if row.last_heartbeat is not None and now - row.last_heartbeat > zombie_after:
                    detail = f"its worker stopped heartbeating it over {zombie_after.total_seconds():g}s ago"
                    self._end(key, try_number, TryEvent(key, try_number, "lost", detail=detail))
            elif id(flight) in overdue_ids:
                self._requeue(flight, now)

    def _requeue(self, flight: _InFlight, now: datetime) -> None:
        item = flight.item
        reason = (
            f"no worker started it within queued_timeout_sec={self.settings.queued_timeout_sec:g}s of sending it "
            f"to Celery queue {flight.queue!r} (is a `dagrunner worker --queues {flight.queue}` running?)"
        )
        with self.engine.begin() as conn:
            moved = recording.return_queued_try(conn, item.key, item.try_number, reason=reason, now=now,
                                                actor=self.actor)  # fmt: skip
        if moved:
            log.warning("%s: %s; queued again", item.key.label(), reason)
            self._end(item.key, item.try_number, TryEvent(item.key, item.try_number, "finished", detail=reason))

    # --- the event queue -----------------------------------------------------------------------------------

    def _consume(self) -> None:
        """Consume this executor's event queue until shutdown, reconnecting when the broker comes back."""
        from kombu import Connection, Queue

        arguments = {"x-expires": 24 * 3600 * 1000} if self.settings.celery_broker_url.startswith("amqp") else None
        queue = Queue(self.reply_to, routing_key=self.reply_to, durable=False, auto_delete=False,
                      queue_arguments=arguments)  # fmt: skip
        down_since: float | None = None
        while not self._stopping or self._consumer_ready.is_set():
            try:
                with Connection(self.settings.celery_broker_url, connect_timeout=2.0) as conn:
                    conn.ensure_connection(max_retries=1)
                    with conn.Consumer(queue, callbacks=[self._on_message], accept=["json"], no_ack=True):
                        if down_since is not None:
                            log.warning("celery executor: event queue reachable again")
                            down_since = None
                        self._consumer_ready.set()
                        while self._consumer_ready.is_set():
                            with contextlib.suppress(TimeoutError, socket.timeout):
                                conn.drain_events(timeout=0.5)
                    with contextlib.suppress(Exception):
                        queue(conn.default_channel).delete()
                    return
            except Exception as exc:  # noqa: BLE001 - the broker went away: the DB poll covers, retry
                if down_since is None:
                    down_since = time.monotonic()
                    log.error("celery executor: event queue unreachable (%s); reading the DB meanwhile", exc)
                if self._stopping:
                    return
                time.sleep(1.0)

    def _on_message(self, body: Any, _message: Any) -> None:
        try:
            event = decode_event(body)
        except MessageError as exc:
            log.warning("celery executor: ignored a malformed event: %s", exc)
            return
        if event.kind == "started":
            with self._cond:
                flight = self._flight.get((event.key, event.try_number))
                if flight is not None:
                    flight.started = True
            return
        self._end(event.key, event.try_number, event)


def _in_dags_folder(fileloc: str, dags_folder: Path) -> str:
    """`fileloc` relative to the DAG folder when it is inside it, else as it is."""
    try:
        return str(Path(fileloc).resolve().relative_to(dags_folder.resolve()))
    except ValueError:
        return fileloc
