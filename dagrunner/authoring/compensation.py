"""Saga compensation, declaration side: `step.compensate_with(undo)` names the task that undoes `step`.

When a run fails for good, the scheduler runs the undo tasks of the steps that succeeded in that run, in
reverse order of completion (`scheduling/compensation.py`). Here we only record the pairing on both tasks
(`step.compensated_by`, `undo.compensates`) and refuse what cannot work, with the user's `file:line`:

- the undo task is in another DAG, or is the step itself;
- the undo task already undoes another step, or the step already has another undo task;
- a cycle through a compensation: the undo task is itself compensated, or the step is itself an undo task;
- the undo task is mapped (it gets one instance per map index of its step by itself), or has upstream or
  downstream edges (it runs when the run fails, not as part of the graph).

Edges may be added after `compensate_with`, so `check_compensations` looks at the finished DAG again when
it is serialized; either way the error is an import error of that DAG file only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagrunner.authoring.location import Location, user_location
from dagrunner.errors import CompensationError

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator
    from dagrunner.authoring.dag import DAG


def operator_of(value: Any, where: Location, what: str) -> BaseOperator:
    """The task behind a task or a TaskFlow call's XComArg; CompensationError for anything else."""
    from dagrunner.authoring.baseoperator import BaseOperator
    from dagrunner.authoring.xcom_arg import XComArg

    if isinstance(value, XComArg):
        return value.operator
    if isinstance(value, BaseOperator):
        return value
    raise CompensationError(
        f"compensate_with at {where}: {what} {value!r} is not a task; pass a task of the same DAG "
        "(an operator, or the result of calling a @task function)"
    )


def link(step: BaseOperator, undo_value: Any) -> None:
    """Record that `undo_value` (a task or XComArg) undoes `step`, refusing the cases in the module docstring."""
    where = user_location()
    undo = operator_of(undo_value, where, "the undo task")
    subject = f"{step.task_id}.compensate_with({undo.task_id})"
    if undo is step:
        raise CompensationError(f"{subject} at {where}: a task cannot compensate itself; name another task")
    if undo.dag is not step.dag:
        raise CompensationError(
            f"{subject} at {where}: {undo.task_id!r} is in DAG {undo.dag.dag_id!r}, {step.task_id!r} in DAG "
            f"{step.dag.dag_id!r}; the undo task must be a task of the same DAG"
        )
    if step.compensated_by == undo.task_id:
        return
    if step.compensated_by is not None:
        raise CompensationError(
            f"{subject} at {where}: {step.task_id!r} is already compensated by {step.compensated_by!r}; a step "
            "has one undo task (do several things in it, or give each its own step)"
        )
    if undo.compensates is not None:
        raise CompensationError(
            f"{subject} at {where}: {undo.task_id!r} already compensates {undo.compensates!r}; an undo task "
            "undoes one step, so define one undo task per step"
        )
    if undo.compensated_by is not None or step.compensates is not None:
        undone = undo if undo.compensated_by is not None else step
        other = undone.compensated_by or undone.compensates
        raise CompensationError(
            f"{subject} at {where}: a cycle through a compensation ({undone.task_id!r} is tied to {other!r} "
            "already); an undo task cannot itself be compensated or compensate its own undo task"
        )
    if undo.is_mapped:
        raise CompensationError(
            f"{subject} at {where}: the undo task {undo.task_id!r} is mapped; use a plain task, it gets one "
            "instance per map index of its step by itself (context['compensation']['map_index'])"
        )
    _refuse_edges(undo, f"{subject} at {where}")
    step.compensated_by = undo.task_id
    undo.compensates = step.task_id


def check_compensations(dag: DAG) -> None:
    """The whole DAG's compensations, once it is complete: an undo task may have gained edges since
    `compensate_with` (CompensationError naming the undo task and where it was defined)."""
    for task in dag.tasks:
        if task.compensates is not None:
            _refuse_edges(task, f"DAG {dag.dag_id!r}: {task.compensates}.compensate_with({task.task_id})")


def _refuse_edges(undo: BaseOperator, subject: str) -> None:
    ups, downs = sorted(undo.upstream_task_ids), sorted(undo.downstream_task_ids)
    if ups or downs:
        edges = [*(f"{u} >> {undo.task_id}" for u in ups), *(f"{undo.task_id} >> {d}" for d in downs)]
        raise CompensationError(
            f"{subject}: the undo task {undo.task_id!r} (defined at {undo.defined_at}) has edges "
            f"({', '.join(edges)}); an undo task runs only when the run fails, so it may have no upstream "
            "or downstream tasks: remove those edges (it gets its step's result in context['compensation'])"
        )
