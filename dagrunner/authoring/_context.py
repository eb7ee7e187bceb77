"""The "current DAG" and "current TaskGroup" of `with DAG(...)` / `with TaskGroup(...)` blocks.

Context variables rather than module globals, so two threads (or asyncio tasks) defining DAGs at the same
time each see their own stack. Stacks, because blocks nest: a DAG defined inside another DAG's block
becomes current until its own block ends, and a group is current only for tasks of its own DAG.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from dagrunner.errors import AuthoringError

if TYPE_CHECKING:
    from dagrunner.authoring.dag import DAG
    from dagrunner.authoring.task_group import TaskGroup

_DAGS: ContextVar[tuple[DAG, ...]] = ContextVar("dagrunner_dag_stack", default=())
_GROUPS: ContextVar[tuple[TaskGroup, ...]] = ContextVar("dagrunner_task_group_stack", default=())


def current_dag() -> DAG | None:
    stack = _DAGS.get()
    return stack[-1] if stack else None


def push_dag(dag: DAG) -> None:
    _DAGS.set((*_DAGS.get(), dag))


def pop_dag(dag: DAG) -> None:
    stack = _DAGS.get()
    if not stack or stack[-1] is not dag:
        raise AuthoringError(f"DAG {dag.dag_id!r} left its `with` block out of order")
    _DAGS.set(stack[:-1])


def current_task_group(dag: DAG) -> TaskGroup:
    """The innermost open group of `dag`, else the DAG's root group."""
    for group in reversed(_GROUPS.get()):
        if group.dag is dag:
            return group
    return dag.task_group


def push_task_group(group: TaskGroup) -> None:
    _GROUPS.set((*_GROUPS.get(), group))


def pop_task_group(group: TaskGroup) -> None:
    stack = _GROUPS.get()
    if not stack or stack[-1] is not group:
        raise AuthoringError(f"TaskGroup {group.group_id!r} left its `with` block out of order")
    _GROUPS.set(stack[:-1])
