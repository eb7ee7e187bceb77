"""One message as a watcher sees it, and the pure rules that turn it into a payload or a rejection."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagrunner.authoring.triggers import MessageTrigger


@dataclass(frozen=True)
class Delivery:
    """A message as delivered: raw bytes, the broker's id for it, headers, and how often it came."""

    body: bytes
    broker_id: str | None
    headers: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1  # 1 the first time; Redis: the entry's delivery count, RabbitMQ: counted by us


class Rejected(Exception):  # noqa: N818 - an outcome, caught right where it is raised
    """The message cannot be used, ever: it goes to the dead letters with `reason`."""


def decode(body: bytes, max_bytes: int) -> dict[str, Any]:
    """The message's JSON object; Rejected (with what was wrong) for anything else."""
    if len(body) > max_bytes:
        raise Rejected(f"message is {len(body)} bytes, over the limit of {max_bytes} (event_max_message_bytes)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(f"message is not UTF-8 text (binary?): {exc.reason} at byte {exc.start}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Rejected(f"message is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(payload, dict):
        raise Rejected(f"message is JSON but not an object (got {type(payload).__name__}); send a JSON object")
    return payload


def validate(trigger: MessageTrigger, payload: Mapping[str, Any]) -> None:
    """Run the watcher's `validate`: Rejected when it raises or returns False."""
    if trigger.validate is None:
        return
    try:
        verdict = trigger.validate(payload)
    except Exception as exc:  # noqa: BLE001 - any exception from the user's function is a rejection
        raise Rejected(f"rejected by validate: {type(exc).__name__}: {exc}") from None
    if verdict is False:
        raise Rejected("rejected by validate (it returned False)")


def message_key(trigger: MessageTrigger, payload: Mapping[str, Any], broker_id: str | None) -> str:
    """The message's id: the trigger's `message_id(payload)` when set, else the broker's id."""
    if trigger.message_id is not None:
        try:
            key = trigger.message_id(payload)
        except Exception as exc:  # noqa: BLE001 - the user's function: its failure rejects the message
            raise Rejected(f"message_id function failed: {type(exc).__name__}: {exc}") from None
        if key is None or str(key) == "":
            raise Rejected("message_id function returned no id")
        return str(key)
    if not broker_id:
        raise Rejected("the broker gave the message no id; set message_id= on the trigger")
    return broker_id
