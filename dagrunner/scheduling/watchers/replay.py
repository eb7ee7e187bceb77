"""`dagrunner events dead-letters replay ID`: a stored message through the same path as a live one.

Decode, validate and key it with its watcher's live trigger (its DAG file is imported here), then record
the asset event and mark the letter replayed in ONE transaction. A replay that fails again leaves the
letter waiting with one more attempt and the new reason. Either way it is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from dagrunner.clock import Clock
from dagrunner.errors import UnknownAssetError
from dagrunner.execution.asset_events import record_asset_event
from dagrunner.persistence import dead_letters
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.watchers.discovery import discover, files_with_watchers
from dagrunner.scheduling.watchers.handler import WatcherSpec
from dagrunner.scheduling.watchers.messages import Rejected, decode, message_key, validate
from dagrunner.settings import Settings


@dataclass(frozen=True)
class ReplayResult:
    dead_letter_id: int
    replayed: bool
    detail: str  # what became of it: "asset event N (runs: ...)" or the reason it failed again
    event_id: int | None = None
    created_runs: tuple[tuple[str, str], ...] = ()


def replay(engine: Engine, settings: Settings, dead_letter_id: int, *, actor: str, clock: Clock) -> ReplayResult:
    with session_scope(engine, readonly=True) as session:
        row = dead_letters.get(session, dead_letter_id)
        watcher, payload, broker_id = row.watcher, bytes(row.payload), row.message_id
    with session_scope(engine, readonly=True) as session:
        files = files_with_watchers(session)
    spec = next((w for w in discover(files, settings).watchers if w.name == watcher), None)
    try:
        if spec is None:
            raise Rejected(f"watcher {watcher!r} is not declared by any parsed DAG file any more")
        extra = decode(payload, spec.trigger.max_bytes or settings.event_max_message_bytes)
        validate(spec.trigger, extra)
        key = message_key(spec.trigger, extra, broker_id)
        with session_scope(engine) as session:
            row = dead_letters.get(session, dead_letter_id, for_update=True)
            source = {"kind": "replay", "dead_letter": dead_letter_id, "watcher": watcher,
                      "broker": spec.trigger.broker, "queue": spec.trigger.target, "message_id": key}  # fmt: skip
            recorded = record_asset_event(session, spec.asset, extra=extra, source=source,
                                          dedupe_key=f"{watcher}:{key}", actor=actor, when=clock.now())  # fmt: skip
            event_id = recorded.id if recorded is not None else None
            dead_letters.replayed(session, row, event_id, actor=actor, when=clock.now())
    except (Rejected, UnknownAssetError) as exc:
        reason = f"unknown asset: {exc}" if isinstance(exc, UnknownAssetError) else str(exc)
        return _failed(engine, dead_letter_id, reason, actor=actor, clock=clock)
    if recorded is None:
        return ReplayResult(dead_letter_id, True, f"an asset event with message id {key} existed already; nothing new")
    runs = ", ".join(f"{d}/{r}" for d, r in recorded.created_runs) or "none"
    return ReplayResult(dead_letter_id, True, f"asset event {recorded.id} (runs: {runs})", recorded.id,
                        tuple(recorded.created_runs))  # fmt: skip


def _failed(engine: Engine, dead_letter_id: int, reason: str, *, actor: str, clock: Clock) -> ReplayResult:
    with session_scope(engine) as session:
        row = dead_letters.get(session, dead_letter_id, for_update=True)
        dead_letters.replay_failed(session, row, reason, actor=actor, when=clock.now())
    return ReplayResult(dead_letter_id, False, reason)


__all__ = ["ReplayResult", "WatcherSpec", "replay"]
