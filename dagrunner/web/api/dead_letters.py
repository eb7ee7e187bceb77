"""/api/v1 endpoints: dead letters: broker messages a watcher could not turn into an asset event
(`dagrunner events dead-letters list|show|replay|discard`). Replay and discard are the CLI's calls
(`scheduling.watchers.replay.replay`, `persistence.dead_letters.discard`), audited with actor api:<user>.

A payload is shown as text when it is UTF-8, else as base64; headers, and a payload that is JSON, are
redacted (a message may carry a token): a replay always sends the stored bytes, never what is shown."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagrunner.persistence.models import DeadLetter, DeadLetterStatus
from dagrunner.web.deps import Operator, PageArgs, Viewer, Web
from dagrunner.web.inputs import NO_NUL
from dagrunner.web.pages import Page
from dagrunner.web.redact import redact

router = APIRouter(tags=["dead letters"])

LetterId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The dead letter's id.")]


class LetterSummary(BaseModel):
    """A dead letter as `events dead-letters list --json` prints it."""

    id: int
    status: str
    watcher: str
    asset: str
    broker: str
    source: str
    message_id: str | None
    attempts: int
    reason: str
    bytes: int
    created_at: str
    updated_at: str
    resolved_by: str | None
    asset_event_id: int | None


class Letter(LetterSummary):
    """One dead letter with its headers (redacted) and payload: text ("utf-8") or "base64"."""

    headers: dict[str, Any]
    encoding: Literal["utf-8", "base64"]
    payload: str


class Discard(BaseModel):
    reason: Annotated[str | None, Field(max_length=10_000, pattern=NO_NUL, description="Why (audited).")] = None


class Replayed(BaseModel):
    """What a replay did (`dead-letters replay --json`): `replayed` false when it failed again (it stays)."""

    id: int
    replayed: bool
    detail: str
    asset_event_id: int | None
    created_runs: list[list[str]]


def _summary(row: DeadLetter) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status.value, "watcher": row.watcher, "asset": row.asset,
        "broker": row.broker, "source": row.source, "message_id": row.message_id, "attempts": row.attempts,
        "reason": row.reason, "bytes": len(row.payload), "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(), "resolved_by": row.resolved_by,
        "asset_event_id": row.asset_event_id,
    }  # fmt: skip


def _payload(payload: bytes) -> dict[str, str]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return {"encoding": "base64", "payload": base64.b64encode(payload).decode("ascii")}
    try:
        data = json.loads(text)
    except ValueError:
        return {"encoding": "utf-8", "payload": text}
    shown = redact(data)
    return {"encoding": "utf-8", "payload": text if shown == data else json.dumps(shown)}


def _get(session: Session, dead_letter_id: int) -> DeadLetter:
    from dagrunner.persistence import dead_letters

    return dead_letters.get(session, dead_letter_id)


def _still_waiting(row: DeadLetter, doing: str) -> None:
    if row.status != DeadLetterStatus.DEAD:
        raise HTTPException(409, f"dead letter {row.id} was {row.status.value} already (by {row.resolved_by}); "
                                 f"cannot {doing} it")  # fmt: skip


@router.get("/dead-letters", response_model=Page[LetterSummary])
def list_dead_letters(
    _user: Viewer,
    state: Web,
    paging: PageArgs,
    status: Annotated[
        Literal["dead", "replayed", "discarded", "all"], Query(description="dead: still waiting (the default).")
    ] = "dead",
) -> dict[str, Any]:
    """Dead letters, newest first: those still waiting unless `status` says otherwise."""
    where = [] if status == "all" else [DeadLetter.status == DeadLetterStatus(status)]
    with state.read() as session:
        total = session.scalar(select(func.count()).select_from(DeadLetter).where(*where)) or 0
        rows = session.scalars(
            select(DeadLetter).where(*where).order_by(DeadLetter.id.desc()).limit(paging.limit).offset(paging.offset)
        )
        items = [_summary(r) for r in rows]
    return paging.page(items, int(total))


@router.get("/dead-letters/{dead_letter_id}", response_model=Letter)
def show_dead_letter(dead_letter_id: LetterId, _user: Viewer, state: Web) -> dict[str, Any]:
    """One dead letter: where it came from, why, its headers and its payload."""
    with state.read() as session:
        row = _get(session, dead_letter_id)
        return {**_summary(row), "headers": redact(dict(row.headers)), **_payload(bytes(row.payload))}


@router.post("/dead-letters/{dead_letter_id}/replay", response_model=Replayed)
def replay_dead_letter(dead_letter_id: LetterId, user: Operator, state: Web) -> dict[str, Any]:
    """Send it through its watcher again (decode, validate, record), audited; 409 once replayed or discarded.

    `replayed` false: it failed again and stays, with one more attempt and the new reason."""
    from dagrunner.scheduling.watchers.replay import replay

    with state.read() as session:
        _still_waiting(_get(session, dead_letter_id), "replay")
    result = replay(state.engine, state.settings, dead_letter_id, actor=user.actor, clock=state)
    return {"id": result.dead_letter_id, "replayed": result.replayed, "detail": result.detail,
            "asset_event_id": result.event_id, "created_runs": [list(r) for r in result.created_runs]}  # fmt: skip


@router.post("/dead-letters/{dead_letter_id}/discard", response_model=LetterSummary)
def discard_dead_letter(
    dead_letter_id: LetterId, user: Operator, state: Web, body: Discard | None = None
) -> dict[str, Any]:
    """Mark it discarded: never replayed, kept for the audit; 409 once replayed or discarded."""
    from dagrunner.persistence import dead_letters

    with state.write() as session:
        row = dead_letters.get(session, dead_letter_id, for_update=True)
        _still_waiting(row, "discard")
        dead_letters.discard(session, row, actor=user.actor, when=state.now(), reason=body.reason if body else None)
        return _summary(row)
