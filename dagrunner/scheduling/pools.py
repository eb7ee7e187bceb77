"""Pools made and changed by people: `dagrunner pools set|delete|reset` and the `[pools.NAME]` tables of the
config file, applied when the scheduler starts. Every change is audited (`pool.created`, `pool.updated`,
`pool.deleted`; a breaker's moves are `pool.breaker`).

The config file is declarative: at each scheduler start every pool it names is created, or changed to the
values it gives (a value it leaves out stays as it is). So a pool changed with `pools set` since keeps that
change only until the next scheduler start; each change the config makes is audited with the old and new
values and printed by the scheduler, never silent. Pools the config does not name are left alone, and the
config never touches a breaker's state (an open breaker stays open; `pools reset` closes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagrunner.errors import InvalidPoolError, NotFoundError
from dagrunner.persistence import breakers
from dagrunner.persistence.audit import BREAKER, Change, record_event, transition
from dagrunner.persistence.breakers import BreakerRow
from dagrunner.persistence.models import DEFAULT_POOL, Pool, TaskInstance
from dagrunner.settings import PoolSpec, check_pool_name, check_positive
from dagrunner.states import OCCUPYING_SLOT, BreakerState

_SETTABLE = ("slots", "description", "breaker_failures", "breaker_cooldown_s")


@dataclass(frozen=True)
class PoolChange:
    """What `set_pool` did: created the pool, or changed these columns (old, new); nothing when empty."""

    name: str
    created: bool
    changed: dict[str, tuple[Any, Any]]

    def describe(self) -> str:
        if self.created:
            return f"pool {self.name} created: " + ", ".join(f"{k}={new}" for k, (_, new) in self.changed.items())
        if not self.changed:
            return f"pool {self.name} unchanged"
        return f"pool {self.name} changed: " + ", ".join(
            f"{k} {old} -> {new}" for k, (old, new) in self.changed.items()
        )


def check_spec(spec: PoolSpec) -> PoolSpec:
    """InvalidPoolError naming the value for a name, slot count or threshold we cannot use."""
    try:
        check_pool_name(spec.name)
        if spec.slots is not None:
            check_positive("--slots", spec.slots)
        if spec.breaker_failures is not None:
            check_positive("--breaker-failures", spec.breaker_failures)
    except ValueError as exc:
        raise InvalidPoolError(str(exc)) from None
    if spec.breaker_cooldown_s is not None and not spec.breaker_cooldown_s > 0:
        raise InvalidPoolError(f"--breaker-cooldown must be positive, not {spec.breaker_cooldown_s!r}")
    return spec


def set_pool(
    session: Session, spec: PoolSpec, *, no_breaker: bool = False, actor: str, now: datetime, source: str = "cli"
) -> PoolChange:
    """Create the pool `spec` names (it needs slots then) or change the values `spec` gives. `no_breaker`
    removes its breaker (closing it first when open, audited). Audited as `pool.created` / `pool.updated`
    (with `source`: cli or the config file) when anything changed."""
    check_spec(spec)
    if no_breaker and spec.breaker_failures is not None:
        raise InvalidPoolError("give either --breaker-failures N or --no-breaker, not both")
    pool = session.scalars(select(Pool).where(Pool.name == spec.name).with_for_update()).first()
    wanted = {k: getattr(spec, k) for k in _SETTABLE if getattr(spec, k) is not None}
    if pool is None:
        if spec.slots is None:
            raise InvalidPoolError(f"no pool {spec.name!r} yet; give --slots N to create it")
        pool = Pool(name=spec.name, **wanted)
        session.add(pool)
        session.flush()
        change = PoolChange(spec.name, True, {k: (None, v) for k, v in wanted.items()})
        record_event(session, "pool.created", actor=actor, when=now, detail={"pool": spec.name, "source": source,
                     "values": wanted})  # fmt: skip
        return change
    if no_breaker and pool.breaker_failures is not None:
        _close_removed_breaker(session, pool, actor=actor, now=now)
        wanted["breaker_failures"] = None
    changed = {k: (getattr(pool, k), v) for k, v in wanted.items() if getattr(pool, k) != v}
    for name, (_, new) in changed.items():
        setattr(pool, name, new)
    session.flush()
    if changed:
        record_event(session, "pool.updated", actor=actor, when=now, detail={
            "pool": spec.name, "source": source, "old": {k: old for k, (old, _) in changed.items()},
            "new": {k: new for k, (_, new) in changed.items()},
        })  # fmt: skip
    return PoolChange(spec.name, False, changed)


def _close_removed_breaker(session: Session, pool: Pool, *, actor: str, now: datetime) -> None:
    if pool.breaker_state != BreakerState.CLOSED:
        row = BreakerRow(pool.id, pool.name, pool.breaker_state, pool.consecutive_failures, pool.breaker_failures,
                         pool.breaker_cooldown_s, pool.opened_at)  # fmt: skip
        transition(session, BREAKER, [row], Change(BreakerState.CLOSED, now, actor, "the breaker was removed"))
        session.refresh(pool)


def apply_pool_config(session: Session, specs: Sequence[PoolSpec], *, source: str, actor: str,
                      now: datetime) -> list[PoolChange]:  # fmt: skip
    """The config file's pools (see the module docstring): the changes made (unchanged pools left out)."""
    changes = [set_pool(session, spec, actor=actor, now=now, source=source) for spec in specs]
    return [c for c in changes if c.created or c.changed]


def delete_pool(session: Session, name: str, *, actor: str, now: datetime) -> None:
    """Delete a pool no queued or running try holds (never `default_pool`); audited as `pool.deleted`.
    Instances that name it later wait with "pool ... does not exist" in `tasks why`."""
    if name == DEFAULT_POOL:
        raise InvalidPoolError(f"{DEFAULT_POOL} cannot be deleted; change its slots with `pools set {DEFAULT_POOL}`")
    pool = session.scalars(select(Pool).where(Pool.name == name).with_for_update()).first()
    if pool is None:
        raise NotFoundError(f"no pool {name!r}; `dagrunner pools list` shows the pools")
    busy = session.scalar(
        select(func.count()).where(TaskInstance.pool == name, TaskInstance.state.in_(list(OCCUPYING_SLOT)))
    )
    if busy:
        raise InvalidPoolError(f"pool {name!r} has {busy} queued or running tries; delete it when they have ended")
    session.delete(pool)
    session.flush()
    record_event(session, "pool.deleted", actor=actor, when=now, detail={"pool": name, "slots": pool.slots})


def reset_breaker(session: Session, name: str, *, reason: str, actor: str, now: datetime) -> BreakerRow:
    """Close `name`'s breaker by hand (`pools reset`); the row as it was. Refused for a pool without one."""
    row = breakers.breaker_of(session, name)
    if row is None:
        if session.scalar(select(Pool.id).where(Pool.name == name)) is None:
            raise NotFoundError(f"no pool {name!r}; `dagrunner pools list` shows the pools")
        raise InvalidPoolError(f"pool {name!r} has no circuit breaker; add one with "
                               f"`dagrunner pools set {name} --breaker-failures N`")  # fmt: skip
    return breakers.reset(session, name, reason=reason, actor=actor, now=now)
