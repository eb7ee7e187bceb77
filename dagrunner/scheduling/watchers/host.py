"""The watcher host: one thread per watcher, each connecting, consuming, and reconnecting with backoff.

A broker that is down or a wrong URL costs one log line and one `watcher.disconnected` audit row per
outage (not per retry); the thread retries with capped exponential backoff and audits
`watcher.connected` when it is back. Nothing is lost meanwhile: an unacked message stays in the Redis
consumer group or the durable RabbitMQ queue. When a message created runs, `on_runs_created` is told
(the triggerer passes it on to the scheduler, which starts them at once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from dagrunner.authoring.triggers import RabbitMQTrigger, RedisStreamTrigger
from dagrunner.clock import Clock
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.watchers.consumer import BrokerUnavailable, Consumer
from dagrunner.scheduling.watchers.handler import Handled, MessageHandler, WatcherSpec
from dagrunner.settings import Settings

log = logging.getLogger(__name__)
CONNECTED = "watcher.connected"
DISCONNECTED = "watcher.disconnected"
POLL_S = 0.5

RunsCreated = Callable[[tuple[tuple[str, str], ...]], None]


class Backoff:
    """Seconds to wait before reconnecting: `first_s`, doubling, at most `max_s`."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0) -> None:
        self.first_s, self.max_s, self.failures = first_s, max_s, 0

    def next(self) -> float:
        self.failures += 1
        return min(self.max_s, self.first_s * 2 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


class WatcherHost:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        specs: tuple[WatcherSpec, ...],
        *,
        actor: str,
        clock: Clock,
        on_runs_created: RunsCreated | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.specs = specs
        self.actor = actor
        self.clock = clock
        self.on_runs_created = on_runs_created or (lambda _runs: None)
        self.max_backoff_s = max_backoff_s
        self.stop_event = threading.Event()
        self.handled: dict[str, int] = {spec.name: 0 for spec in specs}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for spec in self.specs:
            thread = threading.Thread(target=self._watch, args=(spec,), name=f"watcher-{spec.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask every watcher to stop after the message in hand; wait up to `timeout_s` for them."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout_s)

    def _consumer(self, spec: WatcherSpec) -> Consumer:
        handler = MessageHandler(
            self.engine, spec, actor=self.actor, clock=self.clock, max_bytes=self.settings.event_max_message_bytes,
            max_attempts=self.settings.event_max_attempts,
        )  # fmt: skip
        if isinstance(spec.trigger, RedisStreamTrigger):
            from dagrunner.scheduling.watchers.redis_stream import RedisStreamConsumer

            return RedisStreamConsumer(spec, handler, self._handled(spec))
        if isinstance(spec.trigger, RabbitMQTrigger):
            from dagrunner.scheduling.watchers.rabbitmq import RabbitMQConsumer

            return RabbitMQConsumer(spec, handler, self._handled(spec), self.stop_event)
        raise TypeError(f"no consumer for trigger {type(spec.trigger).__name__}")

    def _handled(self, spec: WatcherSpec) -> Callable[[Handled], None]:
        def count(handled: Handled) -> None:
            self.handled[spec.name] += 1
            if handled.created_runs:
                self.on_runs_created(handled.created_runs)

        return count

    def _watch(self, spec: WatcherSpec) -> None:
        """One watcher's life: connect, consume until stopped; on a broker outage wait and reconnect."""
        consumer = self._consumer(spec)
        backoff = Backoff(max_s=self.max_backoff_s)
        down_since: datetime | None = None
        first = True
        while not self.stop_event.is_set():
            try:
                consumer.connect()
                self._connected(spec, down_since, first)
                down_since, first = None, False
                backoff.reset()
                while not self.stop_event.is_set():
                    consumer.poll(POLL_S)
            except BrokerUnavailable as exc:
                consumer.close()
                if down_since is None:
                    down_since = self.clock.now()
                    self._disconnected(spec, str(exc))
                self.stop_event.wait(backoff.next())
            except Exception:  # a bug in a consumer: logged with its traceback, and the watcher goes on
                log.exception("%s: unexpected error; reconnecting", spec.label)
                consumer.close()
                self.stop_event.wait(backoff.next())
        consumer.close()

    def _connected(self, spec: WatcherSpec, down_since: datetime | None, first: bool) -> None:
        now = self.clock.now()
        outage = (now - down_since).total_seconds() if down_since is not None else None
        if outage is not None:
            log.warning("%s: connected again after %.1fs", spec.label, outage)
        elif first:
            log.info("%s: connected", spec.label)
        self._audit(CONNECTED, spec, "connected" if outage is None else f"connected again after {outage:.1f}s",
                    {"outage_s": None if outage is None else round(outage, 3)})  # fmt: skip

    def _disconnected(self, spec: WatcherSpec, reason: str) -> None:
        log.warning("%s: broker unavailable (%s); retrying with backoff, messages wait in the broker", spec.label,
                    reason)  # fmt: skip
        self._audit(DISCONNECTED, spec, reason, {})

    def _audit(self, event: str, spec: WatcherSpec, reason: str, extra: dict[str, object]) -> None:
        detail = {"watcher": spec.name, "asset": spec.asset, "broker": spec.trigger.broker,
                  "source": spec.trigger.target, **extra}  # fmt: skip
        try:
            with session_scope(self.engine) as session:
                record_event(session, event, actor=self.actor, when=self.clock.now(), reason=reason, detail=detail)
        except Exception as exc:  # noqa: BLE001 - the audit row is lost with the database; the log line stays
            log.warning("could not audit %s for %s: %s", event, spec.name, exc)
