"""One delivery, start to end: decode, validate, key, record the asset event and commit; or dead-letter.

The consumer acks a message only after `handle` returned an outcome other than RETRY, and so only after
the transaction holding its asset event (with its dedupe key) or its dead letter was committed. A
message redelivered after a crash between that commit and the ack finds its dedupe key taken: nothing new
is recorded, and it is acked (DUPLICATE). A recording that fails (the database locked or away, a bug)
leaves the message unacked to be tried again, until `event_max_attempts` tries have failed: then it is
dead-lettered with the last error.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine

from dagrunner.authoring.triggers import MessageTrigger
from dagrunner.clock import Clock
from dagrunner.errors import UnknownAssetError
from dagrunner.execution.asset_events import record_asset_event
from dagrunner.persistence import dead_letters
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.watchers.messages import Delivery, Rejected, decode, message_key, validate

log = logging.getLogger(__name__)

#: The one fault-injection point (docs/events/watchers.md): with this set to 1 the triggerer SIGKILLs
#: itself right after committing a message's asset event, before acking it, so tests can show that the
#: redelivered message creates nothing new.
FAULT_AFTER_COMMIT_ENV = "DAGRUNNER_FAULT_AFTER_COMMIT"


@dataclass(frozen=True)
class WatcherSpec:
    """A watcher as the triggerer runs it: its name, its asset, the live trigger, the file declaring it."""

    name: str
    asset: str
    trigger: MessageTrigger
    fileloc: str = ""

    @property
    def label(self) -> str:
        return f"watcher {self.name} (asset {self.asset}, {self.trigger.target} on {self.trigger.broker})"


class Outcome(StrEnum):
    RECORDED = "recorded"  # a new asset event (and maybe runs): ack
    DUPLICATE = "duplicate"  # its id was recorded before (a redelivery): ack
    DEAD_LETTERED = "dead_lettered"  # kept in the dead letters: ack
    RETRY = "retry"  # recording failed: do NOT ack; it comes again


@dataclass(frozen=True)
class Handled:
    outcome: Outcome
    detail: str = ""
    event_id: int | None = None
    dead_letter_id: int | None = None
    created_runs: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def ack(self) -> bool:
        return self.outcome is not Outcome.RETRY


class MessageHandler:
    """Turns deliveries of one watcher into asset events or dead letters (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        spec: WatcherSpec,
        *,
        actor: str,
        clock: Clock,
        max_bytes: int,
        max_attempts: int,
        on_dead_letter: Callable[[dead_letters.Letter], None] | None = None,
    ) -> None:
        """`on_dead_letter`: called after a dead letter is committed, before the ack (RabbitMQ publishes it
        to the trigger's dead-letter exchange)."""
        self.engine = engine
        self.spec = spec
        self.actor = actor
        self.clock = clock
        self.max_bytes = spec.trigger.max_bytes or max_bytes
        self.max_attempts = max_attempts
        self.on_dead_letter = on_dead_letter

    def handle(self, delivery: Delivery) -> Handled:
        try:
            payload = decode(delivery.body, self.max_bytes)
            validate(self.spec.trigger, payload)
            key = message_key(self.spec.trigger, payload, delivery.broker_id)
        except Rejected as rejected:
            return self.dead_letter(delivery, str(rejected))
        try:
            handled = self._record(delivery, payload, key)
        except UnknownAssetError as exc:
            return self.dead_letter(delivery, f"unknown asset: {exc}")
        except Exception as exc:  # noqa: BLE001 - any failure to record: retried, then dead-lettered
            return self._failed(delivery, exc)
        _fault_after_commit()
        return handled

    def _record(self, delivery: Delivery, payload: dict[str, Any], key: str) -> Handled:
        source = {
            "kind": "watcher", "watcher": self.spec.name, "broker": self.spec.trigger.broker,
            "queue": self.spec.trigger.target, "message_id": key, "attempt": delivery.attempt,
        }  # fmt: skip
        with session_scope(self.engine) as session:
            recorded = record_asset_event(
                session, self.spec.asset, extra=payload, source=source, dedupe_key=f"{self.spec.name}:{key}",
                actor=self.actor, when=self.clock.now(),
            )  # fmt: skip
        if recorded is None:
            log.info("%s: message %s was recorded before (redelivered); acked, nothing new", self.spec.name, key)
            return Handled(Outcome.DUPLICATE, f"message {key} was recorded before")
        return Handled(Outcome.RECORDED, f"asset event {recorded.id}", recorded.id, None, tuple(recorded.created_runs))

    def _failed(self, delivery: Delivery, exc: Exception) -> Handled:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if delivery.attempt >= self.max_attempts:
            return self.dead_letter(delivery, f"recording failed {delivery.attempt} times (event_max_attempts); "
                                              f"last error: {error}")  # fmt: skip
        log.warning("%s: could not record message %s (try %d of %d), it will come again: %s", self.spec.name,
                    delivery.broker_id, delivery.attempt, self.max_attempts, error)  # fmt: skip
        return Handled(Outcome.RETRY, error)

    def dead_letter(self, delivery: Delivery, reason: str) -> Handled:
        """Keep the message in the dead letters (committed) so it can be acked; RETRY if even that fails."""
        letter = dead_letters.Letter(
            watcher=self.spec.name, asset=self.spec.asset, broker=self.spec.trigger.broker,
            source=self.spec.trigger.target, message_id=delivery.broker_id, payload=delivery.body,
            headers=delivery.headers, reason=reason, attempts=delivery.attempt,
        )  # fmt: skip
        try:
            with session_scope(self.engine) as session:
                letter_id = dead_letters.add(session, letter, actor=self.actor, when=self.clock.now())
        except Exception as exc:  # noqa: BLE001 - the database is away: the message stays unacked
            log.warning("%s: could not store dead letter for message %s (%s); it will come again: %s",
                        self.spec.name, delivery.broker_id, reason, exc)  # fmt: skip
            return Handled(Outcome.RETRY, str(exc))
        log.warning("%s: message %s dead-lettered as #%d: %s", self.spec.name, delivery.broker_id, letter_id, reason)
        if self.on_dead_letter is not None:
            try:
                self.on_dead_letter(letter)
            except Exception as exc:  # noqa: BLE001 - the store has it; the exchange copy is a courtesy
                log.warning("%s: dead letter #%d kept, but publishing it failed: %s", self.spec.name, letter_id, exc)
        return Handled(Outcome.DEAD_LETTERED, reason, None, letter_id)


def _fault_after_commit() -> None:
    if os.environ.get(FAULT_AFTER_COMMIT_ENV) == "1":
        log.warning("%s=1: killing this process after the commit, before the ack", FAULT_AFTER_COMMIT_ENV)
        os.kill(os.getpid(), signal.SIGKILL)
