"""A Redis stream read through a consumer group: XREADGROUP new entries, XACK after commit, and
XAUTOCLAIM entries left pending (a failed try, a crashed triggerer) to try them again with their
delivery count from the pending-entries list. `redis` is imported here only, in the triggerer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from typing import Any

from dagrunner.authoring.triggers import RedisStreamTrigger
from dagrunner.scheduling.watchers.consumer import BrokerUnavailable, OnHandled
from dagrunner.scheduling.watchers.handler import MessageHandler, WatcherSpec
from dagrunner.scheduling.watchers.messages import Delivery

log = logging.getLogger(__name__)
BATCH = 100
#: An entry pending this long without an ack is tried again (its try failed, or its consumer died).
CLAIM_IDLE_MS = 1000


class RedisStreamConsumer:
    def __init__(self, spec: WatcherSpec, handler: MessageHandler, on_handled: OnHandled) -> None:
        assert isinstance(spec.trigger, RedisStreamTrigger)
        self.trigger: RedisStreamTrigger = spec.trigger
        self.spec = spec
        self.handler = handler
        self.on_handled = on_handled
        self.name = self.trigger.consumer or f"{socket.gethostname()}-{os.getpid()}-{spec.name}"
        self._client: Any = None

    def connect(self) -> None:
        import redis

        try:
            client = redis.Redis.from_url(self.trigger.url, socket_connect_timeout=3, socket_timeout=10)
            client.ping()
            try:
                client.xgroup_create(self.trigger.stream, self.trigger.group, id=self.trigger.start_id, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        except (redis.RedisError, OSError, ValueError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from None
        self._client = client

    def poll(self, timeout_s: float) -> int:
        import redis

        try:
            handled = self._retry_pending()
            block = 1 if handled else max(1, int(timeout_s * 1000))
            reply = self._client.xreadgroup(
                self.trigger.group, self.name, {self.trigger.stream: ">"}, count=BATCH, block=block
            )
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self._handle(entry_id, fields, attempt=1)
                    handled += 1
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc) or "UNBLOCKED" in str(exc):  # stream/group deleted: connect() recreates them
                raise BrokerUnavailable(f"the consumer group is gone ({exc})") from None
            raise
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from None
        return handled

    def _retry_pending(self) -> int:
        reply = self._client.xautoclaim(
            self.trigger.stream, self.trigger.group, self.name, min_idle_time=CLAIM_IDLE_MS, start_id="0-0",
            count=BATCH,
        )  # fmt: skip
        claimed = reply[1]
        for entry_id, fields in claimed:
            if not fields:  # the entry was deleted from the stream (XDEL/XTRIM) while pending
                self._client.xack(self.trigger.stream, self.trigger.group, entry_id)
                continue
            info = self._client.xpending_range(
                self.trigger.stream, self.trigger.group, min=entry_id, max=entry_id, count=1
            )
            attempt = int(info[0]["times_delivered"]) if info else 2
            self._handle(entry_id, fields, attempt=attempt)
        return len(claimed)

    def _handle(self, entry_id: bytes | str, fields: dict[bytes, bytes], *, attempt: int) -> None:
        key = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        body, headers = _body_and_headers(fields)
        handled = self.handler.handle(Delivery(body, key, headers, attempt))
        if handled.ack:
            self._client.xack(self.trigger.stream, self.trigger.group, entry_id)
        self.on_handled(handled)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a dead connection: nothing to do
                self._client.close()
            self._client = None


def _body_and_headers(fields: dict[bytes, bytes]) -> tuple[bytes, dict[str, Any]]:
    """The payload is the `data` field, or the only field; other fields are the headers. An entry of
    several fields without `data` is the JSON object of its fields (each value as text)."""
    text = {k.decode("utf-8", "replace"): v for k, v in fields.items()}
    if "data" in text:
        return text.pop("data"), {k: v.decode("utf-8", "replace") for k, v in text.items()}
    if len(text) == 1:
        return next(iter(text.values())), {"field": next(iter(text))}
    return json.dumps({k: v.decode("utf-8", "replace") for k, v in text.items()}).encode(), {}
