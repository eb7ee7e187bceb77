"""Where published events go: a webhook, a Redis stream, a RabbitMQ exchange (`[events.sinks.NAME]`).

A sink is small: `send(event)` delivers one event or raises `SinkError` saying why; `close()` lets go of
its connection. The relay (`scheduling.outbox_relay`) decides what to send, in which order, and what a
failure means. Brokers' client libraries (`redis`, `pika`: the `events` extra) are imported when a sink of
their kind is first used, so a deployment without such a sink does not need them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from dagrunner.errors import DagRunnerError
from dagrunner.persistence.outbox import OutboxEvent, mask_userinfo
from dagrunner.settings import SinkSpec

SIGNATURE_HEADER = "X-Dagrunner-Signature"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class SinkError(DagRunnerError):
    """A sink did not take an event (down, refused, timed out, misconfigured); the message says which."""


class Sink(Protocol):
    name: str
    spec: SinkSpec

    def send(self, event: OutboxEvent) -> None: ...

    def close(self) -> None: ...


def wants(spec: SinkSpec, event: OutboxEvent) -> bool:
    """Whether the sink's `dags` and `types` filters (globs; empty: all) let the event through."""
    if spec.dags and not any(fnmatch.fnmatchcase(event.dag_id or "", g) for g in spec.dags):
        return False
    return not spec.types or any(fnmatch.fnmatchcase(event.type, g) for g in spec.types)


def body_of(event: OutboxEvent, source: str) -> bytes:
    """The CloudEvent as sent: compact JSON, UTF-8 (what a webhook signature covers)."""
    return json.dumps(event.cloud_event(source), separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: str, body: bytes) -> str:
    """The `X-Dagrunner-Signature` value of a body: `sha256=` and the hex HMAC-SHA256 under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def routing_key(event: OutboxEvent) -> str:
    """RabbitMQ routing key: `<dag_id>.<task_id>.<verb>`, `<dag_id>.run.<verb>`, `asset.<name>.updated`."""
    if event.type.startswith("dagrunner.asset."):
        return f"asset.{event.subject}.{event.verb}"
    task_id = event.data.get("task_id")
    return f"{event.dag_id}.{task_id if task_id is not None else 'run'}.{event.verb}"


def make_sink(spec: SinkSpec, source: str, environ: Mapping[str, str] | None = None) -> Sink:
    kinds: dict[str, type[WebhookSink | RedisStreamSink | RabbitMQSink]] = {
        "webhook": WebhookSink, "redis_stream": RedisStreamSink, "rabbitmq": RabbitMQSink,
    }  # fmt: skip
    return kinds[spec.type](spec, source, os.environ if environ is None else environ)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not a delivery: urllib would re-send a POST as a bodiless GET and call it success."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: ARG002 - urllib's signature
        return None


class WebhookSink:
    """HTTP POST of the CloudEvent in structured mode, signed; 2xx is delivered, anything else failed."""

    def __init__(self, spec: SinkSpec, source: str, environ: Mapping[str, str]) -> None:
        self.name, self.spec, self.source, self.environ = spec.name, spec, source, environ
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, event: OutboxEvent) -> None:
        url = self.spec.resolved_url(self.environ)
        body = body_of(event, self.source)
        headers = {"Content-Type": CONTENT_TYPE, "User-Agent": "dagrunner-outbox"}
        if self.spec.secret_env is not None:
            secret = self.environ.get(self.spec.secret_env)
            if not secret:
                raise SinkError(f"secret_env names {self.spec.secret_env}, which is not set (or empty)")
            headers[SIGNATURE_HEADER] = signature(secret, body)
        request = urllib.request.Request(url or "", data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.spec.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise SinkError(f"POST {mask_userinfo(url)} answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SinkError(f"POST {mask_userinfo(url)} failed: {reason or type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise SinkError(f"POST {mask_userinfo(url)} answered HTTP {status}")

    def close(self) -> None:
        pass


class RedisStreamSink:
    """XADD of the CloudEvent's attributes (and `data` as JSON text) to a stream, trimmed to `maxlen`."""

    def __init__(self, spec: SinkSpec, source: str, environ: Mapping[str, str]) -> None:
        self.name, self.spec, self.source, self.environ = spec.name, spec, source, environ
        self._client: Any = None

    def send(self, event: OutboxEvent) -> None:
        import redis

        ce = event.cloud_event(self.source)
        fields = {k: (json.dumps(v, separators=(",", ":"), default=str) if k == "data" else str(v))
                  for k, v in ce.items()}  # fmt: skip
        try:
            if self._client is None:
                url = self.spec.resolved_url(self.environ) or "redis://127.0.0.1:6379/0"
                self._client = redis.Redis.from_url(
                    url, socket_timeout=self.spec.timeout, socket_connect_timeout=self.spec.timeout
                )
            kwargs: dict[str, Any] = {"maxlen": self.spec.maxlen, "approximate": True} if self.spec.maxlen else {}
            self._client.xadd(self.spec.stream, fields, **kwargs)
        except redis.RedisError as exc:
            self.close()
            raise SinkError(f"XADD to stream {self.spec.stream!r} failed: {exc}") from None

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to report
                client.close()


class RabbitMQSink:
    """A persistent publish of the CloudEvent (structured mode) to a topic exchange, with publisher
    confirms: delivered means the broker has it. The exchange is declared (topic, durable) if missing."""

    def __init__(self, spec: SinkSpec, source: str, environ: Mapping[str, str]) -> None:
        self.name, self.spec, self.source, self.environ = spec.name, spec, source, environ
        self._connection: Any = None
        self._channel: Any = None

    def _open(self) -> Any:
        import pika

        if self._channel is None:
            url = self.spec.resolved_url(self.environ) or "amqp://guest:guest@127.0.0.1:5672/%2F"
            params = pika.URLParameters(url)
            params.socket_timeout = params.stack_timeout = params.blocked_connection_timeout = self.spec.timeout
            params.connection_attempts = 1
            self._connection = pika.BlockingConnection(params)
            channel = self._connection.channel()
            channel.exchange_declare(self.spec.exchange, exchange_type="topic", durable=True)
            channel.confirm_delivery()
            self._channel = channel
        return self._channel

    def send(self, event: OutboxEvent) -> None:
        import pika
        import pika.exceptions

        try:
            channel = self._open()
            properties = pika.BasicProperties(
                content_type="application/cloudevents+json", delivery_mode=pika.DeliveryMode.Persistent,
                message_id=event.event_id, type=event.type,
            )  # fmt: skip
            channel.basic_publish(self.spec.exchange, routing_key(event), body_of(event, self.source), properties)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            what = str(exc) or type(exc).__name__
            raise SinkError(f"publish to exchange {self.spec.exchange!r} failed: {what}") from None

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to report
                connection.close()
