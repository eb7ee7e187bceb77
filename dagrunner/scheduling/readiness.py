"""Readiness: may this task instance run now? Pure rules over facts, each returning (passed, reason).

The scheduler gathers facts from the database, calls `evaluate()` for dependency rules and
`allocate()` for the concurrency limits, and writes the decisions. `dagrunner tasks why` shows the very
same checks, so what a user reads is exactly what the scheduler decided on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dagrunner.scheduling.setup_teardown import SetupFacts, evaluate_setup_rule
from dagrunner.scheduling.trigger_rules import UpstreamCounts, evaluate_trigger_rule
from dagrunner.states import TaskInstanceState

#: States a task instance waits in until the scheduler queues it.
WAITING: frozenset[TaskInstanceState] = frozenset(
    {
        TaskInstanceState.NONE,
        TaskInstanceState.SCHEDULED,
        TaskInstanceState.UP_FOR_RETRY,
        TaskInstanceState.UP_FOR_RESCHEDULE,
    }
)
#: States of its own previous instance that let a depends_on_past task run.
PAST_OK: frozenset[TaskInstanceState] = frozenset({TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED})


@dataclass(frozen=True)
class Check:
    rule: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class TaskFacts:
    """What the dependency rules look at for one task instance."""

    state: TaskInstanceState
    trigger_rule: str
    upstream: UpstreamCounts
    next_try_at: datetime | None = None
    depends_on_past: bool = False
    #: The state of this task in the DAG's previous run, "none" when that run lacks it, None: no previous run.
    past_state: TaskInstanceState | None = None
    run_state: str = "running"
    #: A teardown, or a task within a setup's scope: its setups (scheduling/setup_teardown.py).
    setup: SetupFacts | None = None
    #: Tries that ended in a sensor's "not yet" (only `tasks why` reads it; the tick leaves it 0).
    reschedule_count: int = 0


@dataclass(frozen=True)
class Decision:
    """`new_state` set: the task can never run in this run (upstream_failed / skipped)."""

    checks: tuple[Check, ...]
    new_state: TaskInstanceState | None = None

    @property
    def ready(self) -> bool:
        return self.new_state is None and all(c.passed for c in self.checks)


def evaluate(facts: TaskFacts, now: datetime) -> Decision:
    """Every dependency rule for one task instance, in the order a person would ask about them."""
    checks = [_state_check(facts)]
    setups = facts.setup.setups if facts.setup is not None and facts.setup.is_teardown else None
    outcome = evaluate_trigger_rule(facts.trigger_rule, facts.upstream, setups)
    checks.append(Check("trigger_rule", outcome.passed, outcome.reason))
    new_state = outcome.new_state
    if facts.setup is not None:
        setup_outcome = evaluate_setup_rule(facts.setup)
        checks.append(Check("setup_teardown", setup_outcome.passed, setup_outcome.reason))
        new_state = setup_outcome.new_state or new_state
    checks.append(_retry_check(facts, now))
    checks.append(_past_check(facts))
    return Decision(tuple(checks), new_state if facts.state in WAITING else None)


def _state_check(facts: TaskFacts) -> Check:
    if facts.state in WAITING:
        return Check("task_state", True, f"task instance is {facts.state.value}, waiting to be queued")
    return Check("task_state", False, f"task instance is {facts.state.value}, not waiting to be queued")


def _retry_check(facts: TaskFacts, now: datetime) -> Check:
    """When a waiting instance may be queued again: after its retry delay, or (a `reschedule` sensor) at its
    next poke; both wait on `next_try_at`, so one timer path in the scheduler serves both."""
    if facts.state == TaskInstanceState.UP_FOR_RESCHEDULE and facts.next_try_at is not None:
        return _poke_check(facts.next_try_at, facts.reschedule_count, now)
    if (
        facts.state not in (TaskInstanceState.UP_FOR_RETRY, TaskInstanceState.UP_FOR_RESCHEDULE)
        or facts.next_try_at is None
    ):
        return Check("retry_delay", True, "no retry delay to wait for")
    if facts.next_try_at <= now:
        return Check("retry_delay", True, f"retry delay elapsed at {facts.next_try_at.isoformat()}")
    left = (facts.next_try_at - now).total_seconds()
    return Check("retry_delay", False, f"next try not before {facts.next_try_at.isoformat()} ({left:.0f}s from now)")


def _poke_check(next_poke_at: datetime, reschedule_count: int, now: datetime) -> Check:
    at = f"{next_poke_at:%H:%M:%S} (reschedule {reschedule_count})"
    if next_poke_at <= now:
        return Check("next_poke", True, f"its next poke was due at {at}")
    left = (next_poke_at - now).total_seconds()
    return Check("next_poke", False, f"waiting for its next poke at {at}, {left:.0f}s from now")


def _past_check(facts: TaskFacts) -> Check:
    if not facts.depends_on_past:
        return Check("depends_on_past", True, "depends_on_past is off")
    if facts.past_state is None:
        return Check("depends_on_past", True, "no previous run: depends_on_past does not apply")
    if facts.past_state in PAST_OK:
        return Check("depends_on_past", True, f"previous run's instance is {facts.past_state.value}")
    return Check(
        "depends_on_past",
        False,
        f"previous run's instance is {facts.past_state.value}; it must succeed or be skipped first",
    )


# --- concurrency ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A ready task instance competing for a slot."""

    key: object
    dag_id: str
    pool: str
    pool_slots: int
    priority: int
    order: tuple[object, ...] = ()  # ties: older runs first, then task order


@dataclass
class Limits:
    """Free capacity right now: executor slots, per-DAG task slots, per-pool slots."""

    executor_slots: int
    dag_slots: dict[str, int] = field(default_factory=dict)  # dag_id -> max_active_tasks - active
    pool_slots: dict[str, int] = field(default_factory=dict)  # pool -> slots - occupied
    pool_held: dict[str, str] = field(default_factory=dict)  # pool -> why it starts nothing (circuit open)


def allocate(candidates: Iterable[Candidate], limits: Limits) -> tuple[list[Candidate], dict[object, str]]:
    """Highest priority first, give out slots until a limit is hit. Returns (to queue, key -> why not)."""
    chosen: list[Candidate] = []
    blocked: dict[object, str] = {}
    for cand in sorted(candidates, key=lambda c: (-c.priority, c.order)):
        why = _blocker(cand, limits)
        if why:
            blocked[cand.key] = why
            continue
        limits.executor_slots -= 1
        limits.dag_slots[cand.dag_id] = limits.dag_slots.get(cand.dag_id, 0) - 1
        limits.pool_slots[cand.pool] = limits.pool_slots.get(cand.pool, 0) - cand.pool_slots
        chosen.append(cand)
    return chosen, blocked


def _blocker(cand: Candidate, limits: Limits) -> str | None:
    if limits.executor_slots <= 0:
        return "parallelism: every executor slot is taken"
    if limits.dag_slots.get(cand.dag_id, 0) <= 0:
        return f"max_active_tasks of DAG {cand.dag_id} reached"
    if cand.pool not in limits.pool_slots:
        return f"pool {cand.pool!r} does not exist; create it or use default_pool"
    if cand.pool in limits.pool_held:
        return limits.pool_held[cand.pool]
    if limits.pool_slots[cand.pool] < cand.pool_slots:
        return f"pool {cand.pool!r} has {max(0, limits.pool_slots[cand.pool])} free slot(s), needs {cand.pool_slots}"
    return None


def upstream_counts(upstream_ids: Sequence[str], states: Mapping[str, Sequence[TaskInstanceState]]) -> UpstreamCounts:
    """Count the direct upstream instances' states (a mapped upstream counts once per map index)."""
    listed: list[TaskInstanceState] = []
    for task_id in upstream_ids:
        listed.extend(states.get(task_id, ()))
    return UpstreamCounts.of(listed)
