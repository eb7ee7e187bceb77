"""Evaluate one run: which task instances can never run, which are ready, and how the run ends.

Pure over loaded rows: no queries, no writes. Tasks are walked in topological order and each decision
updates the states the next task sees, so a failure cascades through a whole chain of
`upstream_failed` tasks in one pass rather than one task per tick.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dagrunner.loading.serialization import SerializedDag, TaskSpec
from dagrunner.persistence.audit import TIRow
from dagrunner.persistence.models import TaskInstance
from dagrunner.scheduling.readiness import WAITING, Decision, TaskFacts, evaluate, upstream_counts
from dagrunner.scheduling.setup_teardown import setup_facts
from dagrunner.states import FAILED_STATES, FINISHED, DagRunState, TaskInstanceState


@dataclass
class RunPlan:
    doomed: list[tuple[TIRow, TaskInstanceState, str]] = field(default_factory=list)
    ready: list[TIRow] = field(default_factory=list)
    to_expand: list[TIRow] = field(default_factory=list)
    outcome: DagRunState | None = None
    next_timer: datetime | None = None  # earliest moment a waiting retry becomes due
    waiting_on_past: bool = False  # some instance waits for its previous run (depends_on_past)


def plan_run(
    dag: SerializedDag,
    tis: Sequence[TIRow],
    *,
    now: datetime,
    past_states: Mapping[str, TaskInstanceState | None] | None = None,
    focus: Collection[str] | None = None,
) -> RunPlan:
    """Decide the waiting task instances of one run (see module docstring).

    `focus`: decide only these tasks (the scheduler passes a finished try's task and its downstream);
    None decides every task. A focused task that is not waiting (finished, or skipped by a branch try)
    or that this plan dooms adds its own downstream, so cascades reach as far as they would without a
    focus. The run's outcome always looks at every instance, except those of undo tasks (`compensate_with`):
    the plan ignores them, and `scheduling.compensation` decides them and the run's end once it fails.
    """
    plan = RunPlan()
    by_task: dict[str, list[TIRow]] = {}
    undo_tasks = dag.compensation_task_ids  # their instances are `scheduling.compensation`'s to decide
    for ti in tis:
        if ti.task_id not in undo_tasks:
            by_task.setdefault(ti.task_id, []).append(ti)
    states: dict[str, list[TaskInstanceState]] = {t: [_state(ti.state) for ti in group] for t, group in by_task.items()}
    todo = None if focus is None else set(focus)
    for task_id in dag.topological_order:
        if todo is not None and task_id not in todo:
            continue
        spec = dag.task(task_id)
        for index, ti in enumerate(by_task.get(task_id, ())):
            if states[task_id][index] not in WAITING:
                if todo is not None:  # e.g. skipped by a branch try: what it feeds must look again
                    todo.update(spec.downstream_task_ids)
                continue
            decision = decide(spec, ti, states, now, past_states)
            if decision.new_state is not None:
                reason = next(c.reason for c in decision.checks if c.rule == "trigger_rule")
                plan.doomed.append((ti, decision.new_state, reason))
                states[task_id][index] = decision.new_state
                if todo is not None:
                    todo.update(spec.downstream_task_ids)  # the cascade: they see a new upstream state
            elif decision.ready:
                if spec.is_mapped and ti.map_index == -1:
                    plan.to_expand.append(ti)
                else:
                    plan.ready.append(ti)
            else:
                if ti.next_try_at is not None and ti.next_try_at > now:
                    plan.next_timer = min(filter(None, (plan.next_timer, ti.next_try_at)))
                if any(c.rule == "depends_on_past" and not c.passed for c in decision.checks):
                    plan.waiting_on_past = True
    plan.outcome = run_outcome(dag, states)
    return plan


def decide(
    spec: TaskSpec,
    ti: TIRow | TaskInstance,
    states: Mapping[str, Sequence[TaskInstanceState]],
    now: datetime,
    past_states: Mapping[str, TaskInstanceState | None] | None = None,
) -> Decision:
    facts = TaskFacts(
        state=_state(ti.state),
        trigger_rule=spec.trigger_rule.value,
        upstream=upstream_counts(spec.upstream_task_ids, states),
        next_try_at=ti.next_try_at,
        depends_on_past=spec.depends_on_past,
        past_state=(past_states or {}).get(spec.task_id),
        setup=setup_facts(spec, states),
        reschedule_count=getattr(ti, "reschedule_count", 0),  # a TIRow (the tick) leaves it out: `tasks why` shows it
    )
    return evaluate(facts, now)


def run_outcome(dag: SerializedDag, states: Mapping[str, Sequence[TaskInstanceState]]) -> DagRunState | None:
    """Airflow's rule: unfinished while any instance is; then failed if a leaf failed, else success.

    Teardowns are not leaves here (a task whose only downstream are teardowns is), unless they have
    `on_failure_fail_dagrun=True`: a failed teardown does not fail the run, a failed work still does.
    """
    if any(s not in FINISHED for group in states.values() for s in group):
        return None
    if any(s in FAILED_STATES for leaf in dag.outcome_leaf_ids for s in states.get(leaf, ())):
        return DagRunState.FAILED
    return DagRunState.SUCCESS


def _state(value: str) -> TaskInstanceState:
    """The state as a TaskInstanceState; rows loaded for the scheduler already hold one (an enum call per instance per
    tick showed up in profiles)."""
    return value if type(value) is TaskInstanceState else TaskInstanceState(value)
