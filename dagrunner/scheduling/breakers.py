"""How the scheduler honours pools' circuit breakers when it gives out slots (the stored breaker, and how
tries move it, is `persistence.breakers`).

An open breaker gives its pool no slot until its cool-down ends: ready instances of the pool stay
`scheduled` (or `up_for_retry`) and `tasks why` says "circuit open until HH:MM:SS". After the cool-down
exactly one try may run as the probe, and only when nothing of the pool is still in flight (a try started
before the breaker opened is waited for); giving it its slot moves the breaker to half open. While half
open nothing else starts; the probe's outcome closes or reopens it. A half-open breaker whose probe is
gone without an outcome (its worker died) lets the next probe through.

`gate` is the pure rule; `gate_pools` applies it to the scheduler's `Limits`; `admit_probes` keeps at most
one probe per pool among the tries chosen and moves each probe's breaker (audited).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from dagrunner.persistence import breakers
from dagrunner.persistence.breakers import BreakerRow
from dagrunner.scheduling.readiness import Candidate, Check, Limits
from dagrunner.states import BreakerState


@dataclass(frozen=True)
class Gate:
    """What a pool's breaker allows now: `held` (why no try may start), or a probe; `wake`: when to look
    again (the end of the cool-down)."""

    held: str | None = None
    probe: bool = False
    wake: datetime | None = None


def gate(row: BreakerRow, in_use: int, now: datetime) -> Gate:
    """The breaker rule for one pool with `in_use` slots held by queued or running tries."""
    if row.state == BreakerState.CLOSED:
        return Gate()
    until = row.open_until
    if until is not None and now < until:
        why = f"circuit open until {until:%H:%M:%S} UTC (pool {row.name}: {row.consecutive_failures} consecutive failures)"
        return Gate(held=why, wake=until)
    if in_use > 0:
        if row.state == BreakerState.HALF_OPEN:
            return Gate(held=f"circuit half open (pool {row.name}): waiting for the probe try's outcome")
        return Gate(held=f"circuit open, cool-down over (pool {row.name}): the probe waits for the pool's "
                         f"{in_use} running slot(s) to end")  # fmt: skip
    return Gate(probe=True)


@dataclass
class PoolGates:
    """The breakers that limit this round of queueing: probe pools and the earliest cool-down end."""

    probes: dict[str, BreakerRow] = field(default_factory=dict)
    wake: datetime | None = None


def gate_pools(session: Session, limits: Limits, in_use: Mapping[str, int], now: datetime) -> PoolGates:
    """Hold the pools whose breaker is open (their free slots become 0, with the reason `allocate` gives),
    and name the pools whose next try is a probe."""
    gates = PoolGates()
    for name, row in breakers.not_closed(session).items():
        verdict = gate(row, in_use.get(name, 0), now)
        if verdict.held is not None:
            limits.pool_held[name] = verdict.held
        if verdict.probe:
            gates.probes[name] = row
        if verdict.wake is not None:
            gates.wake = min(verdict.wake, gates.wake or verdict.wake)
    return gates


def admit_probes(
    session: Session, chosen: list[Candidate], gates: PoolGates, *, label: Callable[[object], str], actor: str,
    now: datetime,
) -> list[Candidate]:  # fmt: skip
    """`chosen` (highest priority first) with at most one try per probe pool: the first, whose breaker
    moves to half open. A probe whose breaker another process moved first is dropped too (it waits)."""
    if not gates.probes:
        return chosen
    kept: list[Candidate] = []
    probed: set[str] = set()
    for cand in chosen:
        row = gates.probes.get(cand.pool)
        if row is None:
            kept.append(cand)
        elif cand.pool not in probed:
            probed.add(cand.pool)
            if breakers.probe(session, row, label=label(cand.key), actor=actor, now=now):
                kept.append(cand)
    return kept


def breaker_check(session: Session, pool: str, in_use: int, now: datetime) -> Check | None:
    """`tasks why`'s line for the breaker of `pool` (None: the pool has no breaker)."""
    row = breakers.breaker_of(session, pool)
    if row is None:
        return None
    verdict = gate(row, in_use, now)
    if verdict.held is not None:
        return Check("pool_breaker", False, verdict.held)
    if verdict.probe:
        return Check(
            "pool_breaker", True, f"circuit open, cool-down over (pool {pool}): the next try runs as the probe"
        )
    failures = f"{row.consecutive_failures}/{row.threshold} consecutive failures"
    return Check("pool_breaker", True, f"circuit closed (pool {pool}: {failures})")
