"""What the execution layer uses of a user's task and its DAG, stated as Protocols.

`authoring.BaseOperator` (and every operator built on it) satisfies `RunnableTask`, and `authoring.DAG`
satisfies `RunnableDag`, without knowing these exist: authoring never imports the execution layer. What a
task offers beyond this (its template rendering internals) the execution layer does
not touch, except where it asks with `getattr` for what only some operators have (`op_kwargs`,
`do_xcom_push`, `multiple_outputs`) and through the narrower protocols below, after the flag that
promises them (`is_mapped`, `is_branch`, `is_short_circuit`).

Members are read-only properties: an operator's plain attribute (or class variable) of a narrower type
satisfies them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeGuard

#: A callback a task lists (on_success_callback, ...): called with the try's context.
Callback = Callable[..., Any]


class RunnableDag(Protocol):
    """The DAG a task belongs to, as a try sees it."""

    @property
    def dag_id(self) -> str: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def task_dict(self) -> Mapping[str, RunnableTask]: ...


class RunnableTask(Protocol):
    """A task as a try runs it: templates rendered, `execute` called, callbacks run, upstream XComs read."""

    @property
    def task_id(self) -> str: ...

    @property
    def dag(self) -> RunnableDag: ...

    @property
    def retries(self) -> int: ...

    @property
    def retry_delay(self) -> timedelta: ...

    @property
    def retry_exponential_backoff(self) -> float: ...

    @property
    def max_retry_delay(self) -> timedelta | None: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def upstream_task_ids(self) -> Iterable[str]: ...

    @property
    def template_fields(self) -> Sequence[str]: ...

    @property
    def is_mapped(self) -> bool: ...

    @property
    def is_branch(self) -> bool: ...

    @property
    def is_short_circuit(self) -> bool: ...

    @property
    def on_execute_callback(self) -> Sequence[Callback]: ...

    @property
    def on_success_callback(self) -> Sequence[Callback]: ...

    @property
    def on_failure_callback(self) -> Sequence[Callback]: ...

    @property
    def on_retry_callback(self) -> Sequence[Callback]: ...

    @property
    def on_skipped_callback(self) -> Sequence[Callback]: ...

    def prepare_for_execution(self) -> RunnableTask:
        """A copy of the task to run one try with (templates render into it, not into the DAG's task)."""
        ...

    def render_template_fields(self, context: Mapping[str, Any], *, pull: Callable[[str, str], Any] | None) -> None:
        """Render the templated fields in place against the try's context."""
        ...

    def execute(self, context: Mapping[str, Any]) -> Any:
        """Run the task; the return value becomes its `return_value` XCom."""
        ...

    def on_kill(self) -> None:
        """Clean up after an execution_timeout (stop what the task started)."""
        ...


class MappedTask(RunnableTask, Protocol):
    """A task with `.expand()` inputs (`is_mapped`): one try per element, each unmapped first."""

    @property
    def expand_input(self) -> Mapping[str, Any]: ...

    @property
    def expand_target(self) -> Literal["init", "op_kwargs"]: ...

    def unmap(self, values: Mapping[str, Any]) -> RunnableTask:
        """The concrete task for one map index, given its element of each `.expand()` input."""
        ...


class BranchingTask(RunnableTask, Protocol):
    """A branch operator (`is_branch`): its return value names the paths to follow."""

    def branches_to_skip(self, chosen: object) -> Iterable[str]: ...


class ShortCircuitingTask(RunnableTask, Protocol):
    """A short-circuit operator (`is_short_circuit`): a false return value skips what follows it."""

    def tasks_to_skip(self, condition: bool) -> Iterable[str]: ...


def is_mapped(task: RunnableTask) -> TypeGuard[MappedTask]:
    return task.is_mapped


def is_branch(task: RunnableTask) -> TypeGuard[BranchingTask]:
    return task.is_branch


def is_short_circuit(task: RunnableTask) -> TypeGuard[ShortCircuitingTask]:
    return task.is_short_circuit
