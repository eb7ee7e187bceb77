"""The dead-letter store: broker messages an asset watcher could not use, with what is needed to replay them.

`add` writes one (audited `dead_letter.created`) in the caller's transaction, which the watcher commits
before it acks the message. `replayed` / `replay_failed` / `discard` record what a person did with it
(audited `dead_letter.replayed` / `dead_letter.discarded`); nothing here runs the replay itself (that is
`scheduling.watchers.replay`, which goes through the same decode/validate/record path as a live message).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagrunner.errors import NotFoundError, PersistenceError
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.models import DeadLetter, DeadLetterStatus

CREATED = "dead_letter.created"
REPLAYED = "dead_letter.replayed"
DISCARDED = "dead_letter.discarded"
#: How much of a payload the audit row and a listing show (the row keeps it all).
PREVIEW_BYTES = 200


@dataclass(frozen=True)
class Letter:
    """What the store is told about a message it keeps."""

    watcher: str
    asset: str
    broker: str  # masked URL
    source: str  # `stream orders` / `queue orders`
    message_id: str | None
    payload: bytes
    headers: Mapping[str, Any]
    reason: str
    attempts: int


def add(session: Session, letter: Letter, *, actor: str, when: datetime) -> int:
    """Keep `letter` (status `dead`), audited; returns its id. The caller commits, then acks."""
    row = DeadLetter(
        watcher=letter.watcher, asset=letter.asset, broker=letter.broker, source=letter.source,
        message_id=letter.message_id, payload=bytes(letter.payload), headers=_json_headers(letter.headers),
        reason=letter.reason, attempts=letter.attempts, status=DeadLetterStatus.DEAD,
        created_at=when, updated_at=when,
    )  # fmt: skip
    session.add(row)
    session.flush()
    record_event(session, CREATED, actor=actor, when=when, reason=letter.reason, detail={
        "dead_letter": row.id, "watcher": letter.watcher, "asset": letter.asset, "broker": letter.broker,
        "source": letter.source, "message_id": letter.message_id, "attempts": letter.attempts,
        "bytes": len(letter.payload), "preview": preview(letter.payload),
    })  # fmt: skip
    return row.id


def get(session: Session, dead_letter_id: int, *, for_update: bool = False) -> DeadLetter:
    row = session.get(DeadLetter, dead_letter_id, with_for_update=for_update or None, populate_existing=for_update)
    if row is None:
        raise NotFoundError(
            f"no dead letter {dead_letter_id}; `dagrunner events dead-letters list --all` shows every one"
        )
    return row


def listing(session: Session, *, include_resolved: bool = False, limit: int = 1000) -> list[DeadLetter]:
    """Newest first; only those still waiting unless `include_resolved`."""
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if not include_resolved:
        query = query.where(DeadLetter.status == DeadLetterStatus.DEAD)
    return list(session.scalars(query))


def count(session: Session, *, status: DeadLetterStatus | None = DeadLetterStatus.DEAD) -> int:
    query = select(func.count()).select_from(DeadLetter)
    if status is not None:
        query = query.where(DeadLetter.status == status)
    return int(session.scalar(query) or 0)


def _waiting(row: DeadLetter, doing: str) -> None:
    if row.status != DeadLetterStatus.DEAD:
        raise PersistenceError(
            f"dead letter {row.id} was {row.status.value} already (by {row.resolved_by}); cannot {doing} it"
        )


def replayed(session: Session, row: DeadLetter, asset_event_id: int | None, *, actor: str, when: datetime) -> None:
    """A replay used the message: it is an asset event now (or was one already: a duplicate id)."""
    _waiting(row, "replay")
    row.status, row.updated_at, row.resolved_by, row.asset_event_id = (
        DeadLetterStatus.REPLAYED,
        when,
        actor,
        asset_event_id,
    )
    session.flush()
    record_event(session, REPLAYED, actor=actor, when=when, reason="replayed: the message became an asset event"
                 if asset_event_id is not None else "replayed: an asset event with this message id existed already",
                 detail={"dead_letter": row.id, "watcher": row.watcher, "asset": row.asset, "outcome": "recorded",
                         "asset_event": asset_event_id})  # fmt: skip


def replay_failed(session: Session, row: DeadLetter, reason: str, *, actor: str, when: datetime) -> None:
    """A replay failed again: the letter stays, with one more attempt and the new reason."""
    _waiting(row, "replay")
    row.attempts, row.reason, row.updated_at = row.attempts + 1, reason, when
    session.flush()
    record_event(session, REPLAYED, actor=actor, when=when, reason=f"replay failed: {reason}",
                 detail={"dead_letter": row.id, "watcher": row.watcher, "asset": row.asset, "outcome": "failed",
                         "attempts": row.attempts})  # fmt: skip


def discard(session: Session, row: DeadLetter, *, actor: str, when: datetime, reason: str | None = None) -> None:
    """Nobody will replay it: marked discarded, kept for the audit."""
    _waiting(row, "discard")
    row.status, row.updated_at, row.resolved_by = DeadLetterStatus.DISCARDED, when, actor
    session.flush()
    record_event(session, DISCARDED, actor=actor, when=when, reason=reason or "discarded",
                 detail={"dead_letter": row.id, "watcher": row.watcher, "asset": row.asset})  # fmt: skip


def preview(payload: bytes, limit: int = PREVIEW_BYTES) -> str:
    """The start of a payload as text: UTF-8 where it is, else `base64:...`."""
    head = bytes(payload[:limit])
    more = "..." if len(payload) > limit else ""
    try:
        return head.decode("utf-8") + more
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(head).decode("ascii") + more


def _json_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Broker headers as JSON: bytes decoded (or base64), everything else as its string if not JSON."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return preview(bytes(value), limit=10_000)
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return str(value)

    return {str(k): plain(v) for k, v in headers.items()}
