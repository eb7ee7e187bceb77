"""Saga compensation: when a run fails for good, undo the steps that succeeded in it, last finished first.

A step names its undo task with `step.compensate_with(undo)` (`authoring/compensation.py`). Undo tasks get
no instance when a run is created, and the run's plan ignores them (`evaluation.plan_run`). Compensation is a
property of the run, decided here by the scheduler (DESIGN section 10):

1. The plan says FAILED and the run has no compensation instances yet: each step whose instance is
   `success` in this run (per map index) gets an instance of its undo task, numbered by `compensation_order`
   from 1, the step that finished last first (end_date descending, ties by id). A step that never ran, was
   skipped or failed is not compensated. Audited: `task.created`, and `compensation.started` per step.
   With nothing to compensate the run simply fails.
2. While any compensation is unfinished the run stays running. They are ordinary task instances (retries,
   fencing, logs, audit), queued one at a time: compensation k only after k-1 finished (`order_check`, a
   pure rule whose reason `tasks why` prints). A failed compensation does not stop the ones after it: the
   rest of the rollback still runs.
3. Each finished compensation is audited once as `compensation.finished` (with its end state), claimed by a
   fenced update of `task_instance.compensation_reported` so that two schedulers never both write it.
4. All finished: the run fails. If a compensation failed after its retries, the run `needs_attention`
   (with a reason, audited as `run.needs_attention`, shown by `runs list`): what it should have undone may
   still be in effect.

A run whose plan succeeds (a cleared run that now works) ends as its plan says, whatever earlier
compensation instances it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dagrunner.labels import task_label
from dagrunner.loading.serialization import SerializedDag, TaskSpec
from dagrunner.persistence.audit import TIRow, record_created, record_event
from dagrunner.persistence.models import DagRun, TaskInstance
from dagrunner.scheduling.evaluation import RunPlan
from dagrunner.scheduling.readiness import WAITING, Check, TaskFacts, evaluate
from dagrunner.scheduling.trigger_rules import UpstreamCounts
from dagrunner.states import FINISHED, DagRunState, TaskInstanceState

_TI = cast(Table, TaskInstance.__table__)
_RUN = cast(Table, DagRun.__table__)
_NEVER = datetime.min.replace(tzinfo=UTC)


class Instance(Protocol):
    """What the rules read of a task instance: a scheduler `TIRow` or an ORM `TaskInstance`."""

    id: int
    task_id: str
    map_index: int
    state: Any
    next_try_at: datetime | None


# --- the pure rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompensationFacts:
    """What decides whether one compensation instance may be queued now."""

    state: TaskInstanceState
    next_try_at: datetime | None
    step: str  # the step it undoes, as `task` or `task[map_index]`
    order: int  # 1: the step that finished last
    total: int
    #: The compensation before this one in the rollback: (its step, its state); None for the first.
    previous: tuple[str, TaskInstanceState] | None


def order_check(facts: CompensationFacts) -> Check:
    """Compensation k runs only after compensation k-1 finished (whatever its outcome)."""
    if facts.previous is None:
        return Check(
            "compensation_order", True, f"compensation 1 of {facts.total}: {facts.step} finished last, undone first"
        )
    step, state = facts.previous
    if state in FINISHED:
        return Check(
            "compensation_order",
            True,
            f"compensation {facts.order} of {facts.total}: compensation of {step} finished ({state.value})",
        )
    return Check("compensation_order", False, f"waiting for compensation of {step} to finish")


def compensation_checks(facts: CompensationFacts, now: datetime) -> tuple[Check, ...]:
    """Every rule for one compensation instance: waiting, its retry delay, its place in the rollback. An undo
    task has no upstream, so no trigger rule applies (its own, from default_args, is ignored)."""
    base = evaluate(TaskFacts(facts.state, "always", UpstreamCounts.of(()), next_try_at=facts.next_try_at), now)
    kept = tuple(c for c in base.checks if c.rule in ("task_state", "retry_delay"))
    return (*kept, order_check(facts))


def rollback_facts(
    dag: SerializedDag, comps: Sequence[Instance], orders: Mapping[int, int]
) -> list[tuple[Instance, CompensationFacts]]:
    """Each compensation instance of a run with its facts, in rollback order (`orders`: id -> order)."""
    ordered = sorted(comps, key=lambda ti: (orders.get(ti.id, 0), ti.id))
    out: list[tuple[Instance, CompensationFacts]] = []
    previous: tuple[str, TaskInstanceState] | None = None
    for ti in ordered:
        step = _step_label(dag.task(ti.task_id), ti.map_index)
        state = TaskInstanceState(ti.state)
        facts = CompensationFacts(state, ti.next_try_at, step, orders.get(ti.id, 0), len(ordered), previous)
        out.append((ti, facts))
        previous = (step, state)
    return out


def _step_label(undo: TaskSpec, map_index: int) -> str:
    step = undo.compensates or undo.task_id
    return f"{step}[{map_index}]" if map_index >= 0 else step


# --- the scheduler's hook ----------------------------------------------------------------------------


def compensate(
    session: Session, dag: SerializedDag, run: DagRun, tis: Sequence[TIRow], plan: RunPlan, *, now: datetime,
    actor: str,
) -> bool:  # fmt: skip
    """Steer a run of a DAG with compensations whose plan says FAILED (see the module docstring): start the
    rollback, or add the compensation that may run now to `plan.ready`, or let the run fail once it is done.
    `plan.outcome` becomes None while the rollback goes on. Returns whether instances were created (the
    run is then decided again, with them)."""
    if plan.outcome != DagRunState.FAILED:
        return False
    undo_ids = dag.compensation_task_ids
    comps = [ti for ti in tis if ti.task_id in undo_ids]
    if not comps:
        created = _start(session, dag, run, tis, now=now, actor=actor)
        if created:
            plan.outcome = None
        return created
    orders, reported = _orders(session, comps)
    facts = rollback_facts(dag, comps, orders)
    _report_finished(session, run, facts, reported, now=now, actor=actor)
    if all(f.state in FINISHED for _, f in facts):
        _flag_failures(session, run, facts, now=now, actor=actor)
        return False  # the run fails as planned
    plan.outcome = None
    for ti, f in facts:
        if all(check.passed for check in compensation_checks(f, now)):
            plan.ready.append(cast(TIRow, ti))
        elif f.next_try_at is not None and f.next_try_at > now and f.state in WAITING:
            plan.next_timer = min(filter(None, (plan.next_timer, f.next_try_at)))
    return False


def _start(session: Session, dag: SerializedDag, run: DagRun, tis: Sequence[TIRow], *, now: datetime,
           actor: str) -> bool:  # fmt: skip
    """Create the compensation instances of the steps that succeeded, in rollback order, audited."""
    undo_of = {spec.task_id: spec.compensated_by for spec in dag.tasks if spec.compensated_by is not None}
    succeeded = [ti for ti in tis if ti.task_id in undo_of and ti.state == TaskInstanceState.SUCCESS]
    if not succeeded:
        return False
    query = select(_TI.c.id, _TI.c.end_date).where(_TI.c.id.in_([ti.id for ti in succeeded]))
    ends: dict[int, datetime | None] = {row.id: row.end_date for row in session.execute(query)}
    steps = sorted(succeeded, key=lambda ti: (ends.get(ti.id) or _NEVER, ti.id), reverse=True)
    new = [
        _instance(run, dag.task(cast(str, undo_of[ti.task_id])), ti.map_index, order, now)
        for order, ti in enumerate(steps, 1)
    ]
    reason = f"the run failed: compensating {len(new)} step(s) that succeeded, last finished first"
    try:
        with session.begin_nested():
            record_created(session, new, actor=actor, reason=reason, when=now)
    except IntegrityError:
        return True  # another scheduler started this rollback meanwhile: decide the run again, with them
    for order, (step, undo) in enumerate(zip(steps, new, strict=True), 1):
        record_event(
            session, "compensation.started", actor=actor, when=now, dag_id=run.dag_id, run_id=run.run_id,
            task_id=step.task_id, map_index=step.map_index,
            reason=f"{undo.task_id} will undo {_step_label(dag.task(undo.task_id), step.map_index)} "
                   f"({order} of {len(new)})",
            detail={"compensation_task": undo.task_id, "order": order, "of": len(new),
                    "step_end_date": _iso(ends.get(step.id))},
        )  # fmt: skip
    return True


def _instance(run: DagRun, undo: TaskSpec, map_index: int, order: int, now: datetime) -> TaskInstance:
    return TaskInstance(
        dag_id=run.dag_id, run_id=run.run_id, task_id=undo.task_id, map_index=map_index, max_tries=undo.retries,
        operator=undo.operator, queue=undo.queue, pool=undo.pool, pool_slots=undo.pool_slots,
        priority_weight=undo.priority, updated_at=now, compensation_order=order,
    )  # fmt: skip


def _orders(session: Session, comps: Sequence[TIRow]) -> tuple[dict[int, int], set[int]]:
    """id -> compensation_order, and the ids whose `compensation.finished` is written."""
    query = select(_TI.c.id, _TI.c.compensation_order, _TI.c.compensation_reported).where(
        _TI.c.id.in_([ti.id for ti in comps])
    )
    rows = list(session.execute(query))
    return {row.id: row.compensation_order or 0 for row in rows}, {row.id for row in rows if row.compensation_reported}


def _report_finished(
    session: Session, run: DagRun, facts: list[tuple[Instance, CompensationFacts]], reported: set[int], *,
    now: datetime, actor: str,
) -> None:  # fmt: skip
    """`compensation.finished` once per finished compensation: the fenced claim decides who writes it. A
    reported compensation that is waiting again (cleared to run again) is reported again when it finishes."""
    again = [ti.id for ti, f in facts if ti.id in reported and f.state not in FINISHED]
    if again:
        session.execute(update(_TI).where(_TI.c.id.in_(again)).values(compensation_reported=False))
    done = [(ti, f) for ti, f in facts if f.state in FINISHED and ti.id not in reported]
    if not done:
        return
    claim = (
        update(_TI)
        .where(_TI.c.id.in_([ti.id for ti, _ in done]), _TI.c.compensation_reported.is_(False))
        .values(compensation_reported=True)
        .returning(_TI.c.id)
    )
    claimed = set(session.scalars(claim))
    for ti, f in done:
        if ti.id not in claimed:
            continue
        step_task, _, _ = f.step.partition("[")
        record_event(
            session, "compensation.finished", actor=actor, when=now, dag_id=run.dag_id, run_id=run.run_id,
            task_id=step_task, map_index=ti.map_index,
            reason=f"{ti.task_id} undoing {f.step} finished as {f.state.value}",
            detail={"compensation_task": ti.task_id, "order": f.order, "of": f.total, "state": f.state.value},
        )  # fmt: skip


def _flag_failures(
    session: Session, run: DagRun, facts: list[tuple[Instance, CompensationFacts]], *, now: datetime, actor: str
) -> None:
    """A compensation that failed after its retries: the run needs a person (once, audited)."""
    failed = [(ti, f) for ti, f in facts if f.state == TaskInstanceState.FAILED]
    if not failed:
        _resolve(session, run, now=now, actor=actor)
        return
    names = ", ".join(f"{ti.task_id} (undoing {f.step})" for ti, f in failed)
    tasks = "|".join(sorted({ti.task_id for ti, _ in failed}))
    day = run.logical_date.isoformat()
    reason = (
        f"compensation failed after its retries: {names}; what it should have undone may still be in effect. "
        f"Check by hand, then run it again with `dagrunner tasks clear {run.dag_id} -t '^({tasks})$' "
        f"-s {day} -e {day} --only-failed`"
    )
    flag = (
        update(_RUN)
        .where(_RUN.c.id == run.id, _RUN.c.needs_attention.is_(False))
        .values(needs_attention=True, needs_attention_reason=reason)
        .returning(_RUN.c.id)
    )
    if session.execute(flag).first() is None:
        return  # flagged already
    record_event(
        session, "run.needs_attention", actor=actor, when=now, dag_id=run.dag_id, run_id=run.run_id, reason=reason,
        detail={"failed_compensations": [task_label(run.dag_id, ti.task_id, ti.map_index, run.run_id)
                                         for ti, _ in failed]},
    )  # fmt: skip


def _resolve(session: Session, run: DagRun, *, now: datetime, actor: str) -> None:
    """The run needed attention and its rollback now ended with no failed compensation (one was cleared
    and ran again): it needs nothing any more, audited as `run.attention_resolved`."""
    unflag = (
        update(_RUN)
        .where(_RUN.c.id == run.id, _RUN.c.needs_attention.is_(True))
        .values(needs_attention=False, needs_attention_reason=None)
        .returning(_RUN.c.id)
    )
    if session.execute(unflag).first() is not None:
        record_event(session, "run.attention_resolved", actor=actor, when=now, dag_id=run.dag_id, run_id=run.run_id,
                     reason="every compensation of the run has now finished without failing")  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- `tasks why` -----------------------------------------------------------------------------------


def explain_checks(dag: SerializedDag, ti: TaskInstance, run_tis: Sequence[TaskInstance], now: datetime) -> list[Check]:
    """The rules of one compensation instance, as the scheduler decides them (`tasks why`)."""
    comps = [other for other in run_tis if other.task_id in dag.compensation_task_ids]
    orders = {other.id: other.compensation_order or 0 for other in comps}
    for other, facts in rollback_facts(dag, comps, orders):
        if other.id == ti.id:
            return list(compensation_checks(facts, now))
    return []
