"""A pool's circuit breaker, as stored: counting failed tries, opening, probing, closing.

A pool stands for a downstream service. With a breaker (`pool.breaker_failures` set) the end of every try
in the pool is counted where it is recorded (`execution.recording.finish_try`, same transaction): a failed
try (failed or up_for_retry) adds one to `consecutive_failures`, a success sets it back to 0. The breaker
moves only through `audit.transition(BREAKER, ...)`, so each move has its `pool.breaker` audit row:

- closed -> open: `breaker_failures` consecutive failed tries; new tries of the pool are held (`opened_at`
  starts the cool-down);
- open -> half_open: the cool-down passed and the scheduler let one probe try through (`probe`);
- half_open -> closed: the probe succeeded (the count starts again at 0);
- half_open -> open: the probe failed (a new cool-down);
- open/half_open -> closed: `dagrunner pools reset` (`reset`).

A success while open (a try started before it opened) resets the count but does not close it: only the
probe after the cool-down, or a person, closes it. Skipped tries and tries that ended waiting count neither
way; a try whose worker died (`fail_lost_try`) is not counted either: that is our failure, not the service's.
How the scheduler holds tries of an open pool is `scheduling.breakers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from dagrunner.errors import NotFoundError
from dagrunner.persistence.audit import BREAKER, Change, record_event, transition
from dagrunner.persistence.models import Pool
from dagrunner.states import BreakerState

Db = Session | Connection

_POOL_T = cast(Table, Pool.__table__)
_COLUMNS = (
    _POOL_T.c.id, _POOL_T.c.name, _POOL_T.c.breaker_state, _POOL_T.c.consecutive_failures,
    _POOL_T.c.breaker_failures, _POOL_T.c.breaker_cooldown_s, _POOL_T.c.opened_at,
)  # fmt: skip
_HAS_BREAKER = _POOL_T.c.breaker_failures.is_not(None)
_NAMED = _POOL_T.c.name == bindparam("b_pool")
# Built once (the hot path: every try's end in a pool with a breaker). The UPDATE takes the pool row's lock
# (PostgreSQL), so two tries ending at once count one after the other and decide on the count they made.
_COUNT_FAILURE = (
    update(_POOL_T)
    .where(_NAMED, _HAS_BREAKER)
    .values(consecutive_failures=_POOL_T.c.consecutive_failures + 1)
    .returning(*_COLUMNS)
)
_COUNT_SUCCESS = (
    update(_POOL_T)
    .where(
        _NAMED,
        _HAS_BREAKER,
        or_(_POOL_T.c.consecutive_failures > 0, _POOL_T.c.breaker_state != BreakerState.CLOSED.value),
    )
    .values(consecutive_failures=0)
    .returning(*_COLUMNS)
)
_ONE = select(*_COLUMNS).where(_NAMED)
_NOT_CLOSED = select(*_COLUMNS).where(_HAS_BREAKER, _POOL_T.c.breaker_state != BreakerState.CLOSED.value)


@dataclass(slots=True)
class BreakerRow:
    """A pool's breaker as read (the `Subject` of `audit.BREAKER`: `state` is the breaker's state)."""

    id: int
    name: str
    state: BreakerState
    consecutive_failures: int
    threshold: int | None
    cooldown_s: float
    opened_at: datetime | None

    @property
    def open_until(self) -> datetime | None:
        """When the cool-down of an open breaker ends (None unless open)."""
        if self.state != BreakerState.OPEN or self.opened_at is None:
            return None
        return self.opened_at + timedelta(seconds=self.cooldown_s)


def _row(values: Any) -> BreakerRow:
    return BreakerRow(*values)


def count_try_end(db: Db, pool: str, *, failed: bool, label: str, actor: str, now: datetime) -> BreakerState | None:
    """Count the end of a try of `label` in `pool` (`failed`: it failed or is up for retry, else it
    succeeded) and move the breaker when the count says so. None when the pool has no breaker (or, for a
    success, nothing to change); else the breaker's state afterwards. Runs in the caller's transaction."""
    found = db.execute(_COUNT_FAILURE if failed else _COUNT_SUCCESS, {"b_pool": pool}).first()
    if found is None:
        return None
    row = _row(found)
    new, reason = _after_try(row, failed, label)
    if new is not None and _move(db, row, new, reason, actor=actor, now=now):
        return new
    return row.state


def _after_try(row: BreakerRow, failed: bool, label: str) -> tuple[BreakerState | None, str]:
    """Where the breaker goes once a try's end has been counted (None: it stays), and why."""
    if failed and row.state == BreakerState.HALF_OPEN:
        return BreakerState.OPEN, f"the probe try {label} failed; new tries held again for {row.cooldown_s:g}s"
    if failed and row.state == BreakerState.CLOSED and row.consecutive_failures >= (row.threshold or 0):
        return BreakerState.OPEN, (
            f"{row.consecutive_failures} consecutive failed tries (threshold {row.threshold}), the last "
            f"{label}; new tries held for {row.cooldown_s:g}s"
        )
    if not failed and row.state == BreakerState.HALF_OPEN:
        return BreakerState.CLOSED, f"the probe try {label} succeeded"
    return None, ""


def probe(db: Db, row: BreakerRow, *, label: str, actor: str, now: datetime) -> bool:
    """open -> half_open: the cool-down passed and the try of `label` is let through as the probe. False
    when another process moved the breaker first (that try is then not the probe, and waits)."""
    reason = f"cool-down of {row.cooldown_s:g}s ended; {label} runs as the one probe try"
    return _move(db, row, BreakerState.HALF_OPEN, reason, actor=actor, now=now)


def reset(db: Db, name: str, *, reason: str, actor: str, now: datetime) -> BreakerRow:
    """Close `name`'s breaker by hand (`pools reset`); its failure count starts again at 0. A closed breaker
    only has its count reset (audited as `pool.failures_reset` when there was one). Returns the row as it
    was; NotFoundError for an unknown pool."""
    found = db.execute(_ONE.with_for_update(), {"b_pool": name}).first()
    if found is None:
        raise NotFoundError(f"no pool {name!r}; `dagrunner pools list` shows the pools")
    row = _row(found)
    if row.state != BreakerState.CLOSED:
        _move(db, row, BreakerState.CLOSED, reason, actor=actor, now=now)
    elif row.consecutive_failures:
        db.execute(update(_POOL_T).where(_POOL_T.c.id == row.id).values(consecutive_failures=0))
        record_event(db, "pool.failures_reset", actor=actor, when=now, reason=reason,
                     detail={"pool": name, "consecutive_failures": row.consecutive_failures})  # fmt: skip
    return row


def not_closed(db: Db) -> dict[str, BreakerRow]:
    """The breakers that are open or half open, by pool name (what the scheduler's allocation gates)."""
    return {row.name: row for row in map(_row, db.execute(_NOT_CLOSED))}


def breaker_of(db: Db, name: str) -> BreakerRow | None:
    """The breaker of pool `name` (None: no such pool, or it has no breaker)."""
    found = db.execute(_ONE, {"b_pool": name}).first()
    row = None if found is None else _row(found)
    return row if row is not None and row.threshold is not None else None


def _move(db: Db, row: BreakerRow, new: BreakerState, reason: str, *, actor: str, now: datetime) -> bool:
    detail = {"consecutive_failures": row.consecutive_failures, "threshold": row.threshold}
    return bool(transition(db, BREAKER, [row], Change(new, now, actor, reason, detail=detail)))
