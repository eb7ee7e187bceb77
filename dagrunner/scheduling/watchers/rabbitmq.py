"""A RabbitMQ queue: basic_consume with manual acks after commit, prefetch-bounded. A failed try is
nacked (requeued) after a short backoff and counted here per message (the broker says only that a
delivery is a redelivery), so `event_max_attempts` applies. `pika` is imported here only."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from dagrunner.authoring.triggers import RabbitMQTrigger
from dagrunner.persistence.dead_letters import Letter
from dagrunner.scheduling.watchers.consumer import BrokerUnavailable, OnHandled
from dagrunner.scheduling.watchers.handler import MessageHandler, WatcherSpec
from dagrunner.scheduling.watchers.messages import Delivery

log = logging.getLogger(__name__)
RETRY_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class RabbitMQConsumer:
    def __init__(
        self, spec: WatcherSpec, handler: MessageHandler, on_handled: OnHandled, stop: threading.Event | None = None
    ) -> None:
        assert isinstance(spec.trigger, RabbitMQTrigger)
        self.trigger: RabbitMQTrigger = spec.trigger
        self.spec = spec
        self.handler = handler
        self.handler.on_dead_letter = self._publish_dead_letter
        self.on_handled = on_handled
        self.stop = stop or threading.Event()
        self._conn: Any = None
        self._channel: Any = None
        self._messages: Any = None
        self._attempts: dict[str, int] = {}  # message id -> failed tries so far (this process)

    def connect(self) -> None:
        import pika

        try:
            params = pika.URLParameters(self.trigger.url)
            params.connection_attempts, params.socket_timeout, params.blocked_connection_timeout = 1, 5, 30
            self._conn = pika.BlockingConnection(params)
            self._channel = self._conn.channel()
            if self.trigger.declare:
                self._channel.queue_declare(self.trigger.queue, durable=True)
            else:
                self._channel.queue_declare(self.trigger.queue, passive=True)
            if self.trigger.dead_letter_exchange:
                self._channel.exchange_declare(self.trigger.dead_letter_exchange, "direct", durable=True)
            self._channel.basic_qos(prefetch_count=self.trigger.prefetch)
            self._messages = self._channel.consume(self.trigger.queue, inactivity_timeout=0.5)
        except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
            self.close()
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc or 'connection refused or lost'}") from None

    def poll(self, timeout_s: float) -> int:  # noqa: ARG002 - the consumer's inactivity timeout bounds it
        import pika

        handled = 0
        try:
            for method, properties, body in self._messages:
                if method is None:
                    break
                self._handle(method, properties, body)
                handled += 1
                if handled >= self.trigger.prefetch or self.stop.is_set():
                    break
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc or 'connection lost'}") from None
        return handled

    def _handle(self, method: Any, properties: Any, body: bytes) -> None:
        message_id = properties.message_id or None
        counter = message_id or f"tag:{method.delivery_tag}"
        attempt = self._attempts.get(counter, 0) + 1
        if method.redelivered and attempt == 1:
            attempt = 2  # delivered before, to a process that did not live to count it
        headers = {
            **dict(properties.headers or {}), "routing_key": method.routing_key, "exchange": method.exchange,
            "content_type": properties.content_type, "redelivered": bool(method.redelivered),
        }  # fmt: skip
        handled = self.handler.handle(Delivery(bytes(body), message_id, headers, attempt))
        if handled.ack:
            self._attempts.pop(counter, None)
            self._channel.basic_ack(method.delivery_tag)
        else:
            self._attempts[counter] = attempt
            self.stop.wait(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S)) - 1])
            self._channel.basic_nack(method.delivery_tag, requeue=True)
        self.on_handled(handled)

    def _publish_dead_letter(self, letter: Letter) -> None:
        if not self.trigger.dead_letter_exchange:
            return
        import pika

        headers = {k: v for k, v in letter.headers.items() if isinstance(v, str | int | float | bool)}
        headers.update({"x-dagrunner-reason": letter.reason, "x-dagrunner-watcher": letter.watcher,
                        "x-dagrunner-attempts": letter.attempts})  # fmt: skip
        self._channel.basic_publish(
            self.trigger.dead_letter_exchange,
            self.trigger.dead_letter_routing_key or self.trigger.queue,
            letter.payload,
            pika.BasicProperties(headers=headers, message_id=letter.message_id, delivery_mode=2),
        )

    def close(self) -> None:
        conn, self._conn, self._channel, self._messages = self._conn, None, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection: nothing to do
                conn.close()
