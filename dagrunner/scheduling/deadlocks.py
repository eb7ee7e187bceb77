"""Deadlock detection: a run that can never progress is failed with a reason, not left `running` forever.

A run is deadlocked when it is unfinished, nothing of it is in flight, and no waiting instance can ever
become runnable. Precisely, after the scheduler decided the run and found nothing to doom or expand:

- every unfinished instance is `none` or `scheduled` (a queued, running, up_for_retry, up_for_reschedule,
  deferred or restarting one will still change: no deadlock);
- every instance whose dependencies are met needs a pool it can never get: the pool does not exist, or
  holds fewer slots in all than the task's `pool_slots` (a full pool frees up, and a pool with an open
  circuit breaker closes again: those wait);
- every instance held by depends_on_past waits for an earlier run that has finished (a still-active
  earlier run may yet succeed: those wait);
- everything else waits on the upstream of those, so it is blocked with them.

Which situations get here (and which do not, tested both ways in tests/scheduling/test_deadlocks.py):
a task in a pool that does not exist or is too small; depends_on_past on an earlier run whose instance
failed, was upstream_failed or removed, or that lacks the task (added to the DAG later). A mapped task
over a missing or empty XCom is skipped by expansion and a non-list one fails it, so mapping cannot
deadlock; trigger rules are decided as soon as their outcome is certain, so they cannot either.

The run fails (its on_failure_callback gets Airflow's reason `all_tasks_deadlocked`), and, unlike Airflow,
which leaves them as they are, the instances that are blocked for good become `failed` with their own
reason and the ones waiting on them `upstream_failed`: `tasks states` then shows the culprits, and
`tasks clear --only-failed` (after creating the pool, or fixing the earlier run) picks up exactly these and
runs the run again. Left `none`, `tasks clear` would find nothing to clear.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence import queries
from dagrunner.persistence.audit import TIRow
from dagrunner.persistence.models import DagRun
from dagrunner.scheduling.dag_callbacks import REASON_DEADLOCKED, RunEnding
from dagrunner.scheduling.evaluation import RunPlan, decide, plan_run
from dagrunner.scheduling.history import past_states_for
from dagrunner.states import FINISHED, RUN_ACTIVE, DagRunState, TaskInstanceState

#: The only unfinished states a deadlocked run may hold: anything else is still moving.
STILL: frozenset[TaskInstanceState] = frozenset({TaskInstanceState.NONE, TaskInstanceState.SCHEDULED})
_POOLS_KEY = "dagrunner.deadlocks.pool_sizes"
_NAMED = 5  # blocked tasks named in the reason; the rest are counted


@dataclass(frozen=True)
class Deadlock:
    """A deadlocked run: how it ends, and what becomes of its unfinished instances."""

    ending: RunEnding
    #: (instance, why it can never run): these become `failed`.
    blocked: list[tuple[TIRow, str]]
    #: Instances waiting on the blocked ones: these become `upstream_failed`.
    waiting: list[TIRow] = field(default_factory=list)

    def moves(self) -> list[tuple[TaskInstanceState, str, list[TIRow]]]:
        """(new state, reason, instances) groups to apply, one reason per group."""
        groups: dict[str, list[TIRow]] = {}
        for ti, why in self.blocked:
            groups.setdefault(f"deadlocked: {why}", []).append(ti)
        moves = [(TaskInstanceState.FAILED, reason, tis) for reason, tis in groups.items()]
        if self.waiting:
            reason = "deadlocked: it waits on task instances that can never run"
            moves.append((TaskInstanceState.UPSTREAM_FAILED, reason, self.waiting))
        return moves


def find_deadlock(
    session: Session, dag: SerializedDag, run: DagRun, tis: Sequence[TIRow], plan: RunPlan, *, now: datetime,
    focus: Collection[str] | None,
) -> Deadlock | None:  # fmt: skip
    """The deadlock `run` is in (module docstring), else None. `plan` is the tick's plan of
    `focus` (None: the whole run); a focused plan is widened to the whole run first, but only when the
    cheap test (nothing in flight) already passed, so a busy run costs one pass over its instances."""
    if plan.outcome is not None or plan.to_expand or plan.doomed or not _all_still(tis):
        return None
    past_states = past_states_for(session, dag, run)
    if focus is not None:
        plan = plan_run(dag, tis, now=now, past_states=past_states)
        if plan.outcome is not None or plan.to_expand or plan.doomed:
            return None
    blocked: list[tuple[TIRow, str]] = []
    for ti in plan.ready:
        why = _pool_blocker(session, ti)
        if why is None:
            return None  # it runs once a slot is free
        blocked.append((ti, why))
    if plan.waiting_on_past:
        previous = queries.previous_run(session, run.dag_id, run.logical_date)
        if previous is not None and previous.state in RUN_ACTIVE:
            return None  # the earlier run may still succeed
        blocked += _held_by_past(dag, tis, plan, past_states or {}, previous, now)
    if not blocked:
        return None  # nothing found that blocks for good: leave the run be rather than guess
    ids = {ti.id for ti, _ in blocked}
    waiting = [ti for ti in tis if ti.state not in FINISHED and ti.id not in ids]
    named = "; ".join(f"{_name(ti)} {why}" for ti, why in blocked[:_NAMED])
    if len(blocked) > _NAMED:
        named += f"; and {len(blocked) - _NAMED} more"
    tail = f" ({len(waiting)} more task instance(s) wait on these)" if waiting else ""
    reason = f"deadlocked: no task instance can ever run: {named}{tail}"
    return Deadlock(RunEnding(DagRunState.FAILED, reason, REASON_DEADLOCKED), blocked, waiting)


def _name(ti: TIRow) -> str:
    """`task` or `task[i]`: the run is named once, by the reason's own row."""
    return f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id


def _all_still(tis: Sequence[TIRow]) -> bool:
    return all(ti.state in STILL for ti in tis if ti.state not in FINISHED)


def _pool_blocker(session: Session, ti: TIRow) -> str | None:
    """Why `ti` can never get its pool slots, or None when it can (once they are free)."""
    sizes: dict[str, int] | None = session.info.get(_POOLS_KEY)
    if sizes is None:  # once per tick (a session is one tick's transaction)
        sizes = session.info[_POOLS_KEY] = queries.pool_sizes(session)
    if ti.pool not in sizes:
        return f"needs pool {ti.pool!r}, which does not exist"
    if sizes[ti.pool] < ti.pool_slots:
        return f"needs {ti.pool_slots} slot(s) of pool {ti.pool!r}, which has {sizes[ti.pool]} in all"
    return None


def _held_by_past(
    dag: SerializedDag, tis: Sequence[TIRow], plan: RunPlan, past_states: dict[str, TaskInstanceState | None],
    previous: DagRun | None, now: datetime,
) -> list[tuple[TIRow, str]]:  # fmt: skip
    """The instances depends_on_past holds for good (the earlier run has finished)."""
    ready = {ti.id for ti in plan.ready}
    states: dict[str, list[TaskInstanceState]] = {}
    for ti in tis:
        states.setdefault(ti.task_id, []).append(TaskInstanceState(ti.state))
    where = f"run {previous.run_id}" if previous is not None else "the previous run"
    held = []
    for ti in tis:
        if ti.state in FINISHED or ti.id in ready or ti.task_id not in dag.task_dict:
            continue
        decision = decide(dag.task(ti.task_id), ti, states, now, past_states)
        if any(c.rule == "depends_on_past" and not c.passed for c in decision.checks):
            past = past_states.get(ti.task_id)
            held.append((ti, f"depends_on_past, and its instance in {where} is {past.value if past else 'missing'}"))
    return held
