"""The outbox relay: delivers published events from the `outbox` table to every sink and the listeners.

`Relay.step()` does what can be done now and says when it wants to run again; `dagrunner triggerer` calls
it in a loop thread (`run_relay` is the same loop, for tests and a standalone use). Per sink:

- rows go out in outbox id order (hence in order per run), up to the *settled* id (`persistence.outbox`);
- at least once: the sink's progress (`outbox_sink.delivered_through`) moves only after a send succeeded,
  so a relay that dies mid-batch re-sends what it had not recorded, with the same CloudEvent id;
- a failure stops that sink at that row; it is retried after a capped exponential backoff (with jitter),
  audited `outbox.delivery_failed` once per failure episode, and `outbox.delivery_recovered` when a send
  works again. Other sinks go on: each sink runs in a thread of its own within a step, and spends at most
  about `STEP_BUDGET_S` (or one send's timeout) per step;
- one relay at a time delivers to a sink: it holds the sink row's lease (a conditional UPDATE), renewed
  every step, so a scheduler's relay and a standalone triggerer's (or two on PostgreSQL) never both send.

The listener plugins (`scheduling.listeners`) are one more sink, `@listeners`, without filters: a hook that
raises is retried like a sink (with backoff) up to `LISTENER_MAX_ATTEMPTS` times, then the event is skipped
for the listeners, audited `listener.failed`.

Rows every configured sink (and the listeners) has are deleted; with no sink and no listener, every
settled row is deleted at once.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dagrunner.clock import Clock
from dagrunner.persistence import outbox as ob
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.event_sinks import Sink, SinkError, make_sink, wants
from dagrunner.scheduling.listeners import Listener, ListenerError, call_hooks, find_listeners
from dagrunner.settings import SinkSpec

log = logging.getLogger(__name__)

BATCH = 200
STEP_BUDGET_S = 1.0
IDLE_WAIT_S = 0.5
BUSY_WAIT_S = 0.02
BACKOFF_BASE_S = 1.0
LISTENER_MAX_ATTEMPTS = 3
LISTENER_BACKOFF_S = 5.0


class _Listeners:
    """The listener plugins as a sink: `send` calls every hook for the event."""

    name = ob.LISTENERS

    def __init__(self, listeners: list[Listener]) -> None:
        self.listeners = listeners
        self.spec = SinkSpec(ob.LISTENERS, "webhook", max_backoff=LISTENER_BACKOFF_S)

    def send(self, event: ob.OutboxEvent) -> None:
        call_hooks(self.listeners, event)

    def close(self) -> None:
        pass


@dataclass
class _Outcome:
    """What one sink's turn did: how far it got and whether it wants to run again at once."""

    more: bool = False
    retry_at: datetime | None = None


class Relay:
    """Delivers outbox rows to the configured sinks and listeners; `step()` in a loop, then `close()`."""

    def __init__(
        self, engine: Engine, settings: Any, *, actor: str, clock: Clock,
        listeners: list[Listener] | None = None, sinks: list[Sink] | None = None,
    ) -> None:  # fmt: skip
        self.engine, self.settings, self.actor, self.clock = engine, settings, actor, clock
        self.source: str = settings.events_source
        self.owner = f"{actor} (pid {os.getpid()}, relay {uuid.uuid4().hex[:8]})"[:1000]
        self.sinks: list[Sink] = (
            sinks if sinks is not None else [make_sink(s, self.source) for s in settings.event_sinks]
        )
        if listeners is None:
            listeners = []
            if settings.events_listeners:
                listeners, failures = find_listeners(settings.plugins_folder)
                for line in failures:
                    self._report_listener_import(line)
        if listeners:
            self.sinks.append(_Listeners(listeners))
        timeouts = [s.spec.timeout for s in self.sinks] or [1.0]
        self.lease = timedelta(seconds=max(30.0, 3 * (max(timeouts) + STEP_BUDGET_S)))
        self._settled = 0 if engine.dialect.name == "postgresql" else None  # None: all visible rows are settled
        self._probe: ob.Probe | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.sinks)), thread_name_prefix="outbox-sink")
        self._closed = False
        if self.sinks:
            with session_scope(engine) as session:
                ob.ensure_sinks(session, [s.name for s in self.sinks])

    # --- the step -------------------------------------------------------------------------------------

    def step(self) -> float:
        """Deliver what can be delivered now (every due sink at once, each in its thread); prune what every
        sink has. Returns the seconds until it wants to step again."""
        if self._closed:
            raise RuntimeError("Relay.step() after close()")
        settled = self.settle()
        outcomes = list(self._pool.map(lambda sink: self._turn(sink, settled), self.sinks))
        self._prune(settled)
        now = self.clock.now()
        waits = [BUSY_WAIT_S if o.more else IDLE_WAIT_S for o in outcomes]
        waits += [max(BUSY_WAIT_S, (o.retry_at - now).total_seconds()) for o in outcomes if o.retry_at is not None]
        if self._probe is not None:
            waits.append(BUSY_WAIT_S)
        return min(waits, default=IDLE_WAIT_S)

    def close(self) -> None:
        """Stop: let go of every lease (another relay may take over at once) and every connection."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        try:
            with session_scope(self.engine) as session:
                for sink in self.sinks:
                    ob.release_lease(session, sink.name, self.owner)
        except Exception:  # noqa: BLE001 - a lease not released expires on its own
            log.warning("outbox relay: could not release its sink leases; they expire in %s", self.lease)
        for sink in self.sinks:
            sink.close()

    # --- what is settled -------------------------------------------------------------------------------

    def settle(self) -> int | None:
        """The id through which rows may go out now (None: no bound), moved on when it can be (see
        `persistence.outbox`). `step()` calls it; a test may call it until what it wrote is settled."""
        if self._settled is None:
            return None
        with session_scope(self.engine) as session:
            if self._probe is not None and ob.horizon_passed(session, self._probe.xmax or 0):
                self._settled, self._probe = max(self._settled, self._probe.max_id), None
            if self._probe is None:
                probe = ob.settle_probe(session)
                if probe.xmax is None:
                    self._settled = max(self._settled, probe.max_id)
                elif probe.max_id > self._settled:
                    self._probe = probe
        return self._settled

    # --- one sink's turn -------------------------------------------------------------------------------

    def _turn(self, sink: Sink, settled: int | None) -> _Outcome:
        try:
            return self._deliver(sink, settled)
        except Exception:  # noqa: BLE001 - e.g. the database is away: this sink tries again next step
            log.exception("outbox relay: sink %s: step failed", sink.name)
            return _Outcome()

    def _deliver(self, sink: Sink, settled: int | None) -> _Outcome:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            if not ob.take_lease(session, sink.name, self.owner, now, self.lease):
                return _Outcome()
            state = ob.sink_state(session, sink.name)
        assert state is not None
        if state.next_retry_at is not None and state.next_retry_at > now:
            return _Outcome(retry_at=state.next_retry_at)
        with session_scope(self.engine, readonly=True) as session:
            events = ob.pending(session, state.delivered_through, settled, BATCH)
        through, sent, error, failed = state.delivered_through, 0, None, None
        started = time.monotonic()
        for event in events:
            if time.monotonic() - started > STEP_BUDGET_S:
                break
            if isinstance(sink, _Listeners) or wants(sink.spec, event):
                try:
                    sink.send(event)
                except (SinkError, ListenerError) as exc:
                    error, failed = str(exc), event
                    break
                sent += 1
            through = event.id
        with session_scope(self.engine) as session:
            if through > state.delivered_through and not ob.advance(
                session, sink.name, self.owner, through=through, delivered=sent, now=self.clock.now()
            ):
                return _Outcome()  # the lease was lost meanwhile: the new holder goes on
            if state.failing_since is not None and (sent or through > state.delivered_through):
                self._audit(session, "outbox.delivery_recovered", None,
                            {"sink": sink.name, "failing_since": state.failing_since.isoformat()})  # fmt: skip
            if failed is not None and error is not None:
                return self._failed(session, sink, state, failed, error, recovered=sent > 0)
        return _Outcome(more=len(events) == BATCH or (bool(events) and through < events[-1].id))

    def _failed(
        self, session: Session, sink: Sink, state: ob.SinkState, event: ob.OutboxEvent, error: str, *, recovered: bool
    ) -> _Outcome:
        """Record a failed send: back off, audit a new failure episode; a listener event that keeps failing
        is skipped (audited `listener.failed`)."""
        now = self.clock.now()
        attempts = 1 if recovered else state.attempts + 1
        log.warning("outbox relay: sink %s: event %s (%s) not delivered (attempt %d): %s",
                    sink.name, event.event_id, event.type, attempts, error)  # fmt: skip
        detail = {"sink": sink.name, "event_id": event.event_id, "type": event.type, "subject": event.subject,
                  "error": error, "attempts": attempts}  # fmt: skip
        if isinstance(sink, _Listeners) and attempts >= LISTENER_MAX_ATTEMPTS:
            self._audit(session, "listener.failed", error, {**detail, "skipped": True}, event)
            ob.advance(session, sink.name, self.owner, through=event.id, delivered=0, now=now)
            return _Outcome(more=True)
        delay = min(sink.spec.max_backoff, BACKOFF_BASE_S * 2 ** (attempts - 1)) * random.uniform(0.8, 1.0)  # noqa: S311
        retry_at = now + timedelta(seconds=delay)
        ob.record_failure(session, sink.name, self.owner, error=error, now=now, retry_at=retry_at)
        if (state.failing_since is None or recovered) and not isinstance(sink, _Listeners):
            self._audit(session, "outbox.delivery_failed", error, detail, event)
        return _Outcome(retry_at=retry_at)

    def _audit(self, session: Session, name: str, reason: str | None, detail: dict[str, Any],
               event: ob.OutboxEvent | None = None) -> None:  # fmt: skip
        task = event.data.get("task_id") if event is not None else None
        record_event(session, name, actor=self.actor, when=self.clock.now(), reason=reason, detail=detail,
                     dag_id=event.dag_id if event else None, run_id=event.run_id if event else None,
                     task_id=task if isinstance(task, str) else None)  # fmt: skip

    def _report_listener_import(self, line: str) -> None:
        log.error("outbox relay: listener plugin not loaded: %s", line)
        with session_scope(self.engine) as session:
            record_event(session, "listener.failed", actor=self.actor, when=self.clock.now(), reason=line,
                         detail={"stage": "import"})  # fmt: skip

    # --- pruning ---------------------------------------------------------------------------------------

    def _prune(self, settled: int | None) -> None:
        try:
            with session_scope(self.engine) as session:
                if self.sinks:
                    names = [s.name for s in self.sinks]
                    through = session.execute(
                        select(ob.SINK_T.c.delivered_through).where(ob.SINK_T.c.name.in_(names))
                    ).scalars().all()  # fmt: skip
                    bound = min(through) if len(through) == len(names) else 0
                else:
                    bound = settled if settled is not None else ob.settle_probe(session).max_id
                if settled is not None:
                    bound = min(bound, settled)
                if bound > 0:
                    ob.prune(session, bound)
        except Exception:  # noqa: BLE001 - pruning is tidying; the next step tries again
            log.exception("outbox relay: pruning failed")


def run_relay(relay: Relay, stop: threading.Event, *, sleep: Callable[[float], bool] | None = None) -> None:
    """Step `relay` until `stop` is set, waiting as it asks between steps; then close it."""
    wait = sleep or stop.wait
    try:
        while not stop.is_set():
            wait(relay.step())
    finally:
        relay.close()
