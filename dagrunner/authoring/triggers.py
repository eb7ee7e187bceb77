"""The built-in message triggers: a Redis stream read through a consumer group, a RabbitMQ queue.

What every trigger shares (`MessageTrigger`): a broker `url`, an optional `message_id(payload) -> str`
(the key that makes a redelivered message create nothing new; default: the broker's own id), an optional
`validate(payload)` (raise, or return False, to reject a message: it goes to the dead letters), and
`max_bytes` (None: the `event_max_message_bytes` setting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from dagrunner.settings import mask_url

#: A message's decoded JSON object -> its id (dedupe key within the watcher).
MessageIdFn = Callable[[Mapping[str, Any]], str]
#: A message's decoded JSON object -> None/True (accepted) or False / an exception (rejected, with the reason).
ValidateFn = Callable[[Mapping[str, Any]], object]


def _callable_name(fn: Callable[..., Any] | None) -> str | None:
    if fn is None:
        return None
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _check(kind: str, **values: object) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{kind}: {name} must be a non-empty string, not {value!r}")


class MessageTrigger:
    """What every message trigger has (the subclasses are the frozen dataclasses to use)."""

    kind: ClassVar[str] = "message"

    url: str
    message_id: MessageIdFn | None
    validate: ValidateFn | None
    max_bytes: int | None

    @property
    def target(self) -> str:
        """The stream or queue, for log lines and dead letters."""
        raise NotImplementedError

    @property
    def broker(self) -> str:
        """The URL with its password masked: safe to log, audit and store."""
        return mask_url(self.url)

    def _common(self) -> dict[str, Any]:
        if self.max_bytes is not None and (isinstance(self.max_bytes, bool) or self.max_bytes < 1):
            raise ValueError(f"{type(self).__name__}: max_bytes must be a positive number of bytes")
        return {
            "kind": self.kind,
            "url": self.broker,
            "message_id": _callable_name(self.message_id),
            "validate": _callable_name(self.validate),
            "max_bytes": self.max_bytes,
        }

    def serialize(self) -> dict[str, Any]:
        """A JSON-able description without secrets or code (for `dags list`, `assets list`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class RedisStreamTrigger(MessageTrigger):
    """Messages from a Redis stream, read through a consumer group (`XREADGROUP`), acked (`XACK`) only
    after their asset event is committed; a message that keeps failing is retried from the group's
    pending-entries list, with its delivery count, until `event_max_attempts`.

    A stream entry's payload is its `data` field (or, with a single field, that field's value); an entry
    with several fields and no `data` is used as the JSON object of its fields.
    """

    kind: ClassVar[str] = "redis_stream"

    url: str
    stream: str
    group: str = "dagrunner"
    consumer: str | None = None  # default: the triggerer's host and pid
    message_id: MessageIdFn | None = None
    validate: ValidateFn | None = None
    max_bytes: int | None = None
    start_id: str = "0"  # where a new group starts: "0" every entry already in the stream, "$" only new ones

    def __post_init__(self) -> None:
        _check("RedisStreamTrigger", url=self.url, stream=self.stream, group=self.group, start_id=self.start_id)
        self._common()

    @property
    def target(self) -> str:
        return f"stream {self.stream}"

    def serialize(self) -> dict[str, Any]:
        return {**self._common(), "stream": self.stream, "group": self.group, "start_id": self.start_id}


@dataclass(frozen=True)
class RabbitMQTrigger(MessageTrigger):
    """Messages from a RabbitMQ queue (`basic_consume`, manual `basic_ack` after the asset event is
    committed). `declare`: declare the queue (durable) at start. A dead-lettered message is also
    published to `dead_letter_exchange` (with `dead_letter_routing_key`, default the queue's name) when set.
    """

    kind: ClassVar[str] = "rabbitmq"

    url: str
    queue: str
    declare: bool = True
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    prefetch: int = 100
    message_id: MessageIdFn | None = None
    validate: ValidateFn | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        _check("RabbitMQTrigger", url=self.url, queue=self.queue)
        if isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int) or self.prefetch < 1:
            raise ValueError(f"RabbitMQTrigger: prefetch must be a positive whole number, not {self.prefetch!r}")
        self._common()

    @property
    def target(self) -> str:
        return f"queue {self.queue}"

    def serialize(self) -> dict[str, Any]:
        return {
            **self._common(),
            "queue": self.queue,
            "declare": self.declare,
            "dead_letter_exchange": self.dead_letter_exchange,
            "dead_letter_routing_key": self.dead_letter_routing_key,
            "prefetch": self.prefetch,
        }
