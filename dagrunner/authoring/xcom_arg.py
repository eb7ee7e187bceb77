"""References to values that exist only at run time: XComArg (a task's output) and DagParam (a run's param).

At definition time they are placeholders: passing an XComArg into a task's arguments adds the upstream
edge, and `>>` works on it as on its task. At run time the runner replaces every placeholder, however
deeply nested in lists and dicts, with `resolve_runtime_args`, given a way to pull XComs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dagrunner.authoring.dependencies import DependencyMixin

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator

RETURN_VALUE = "return_value"


class XComArg(DependencyMixin):
    """The value a task pushed under `key` (by default its return value)."""

    def __init__(self, operator: BaseOperator, key: str = RETURN_VALUE) -> None:
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        """`result["total"]`: one key of a `multiple_outputs` task (pushed as its own XCom)."""
        if not isinstance(key, str):
            raise TypeError(f"XCom keys are strings; got {key!r} for task {self.operator.task_id!r}")
        return XComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        # Without this, Python would iterate by calling __getitem__(0), (1)... forever.
        raise TypeError(
            f"the output of task {self.operator.task_id!r} is not known until it runs, so it cannot be "
            "iterated while the DAG is defined; pass it to a task, or map over it with .expand()"
        )

    def __str__(self) -> str:
        """A Jinja expression, so `f"echo {xcom}"` in a templated field renders the value at run time."""
        return f"{{{{ ti.xcom_pull(task_ids={self.operator.task_id!r}, key={self.key!r}) }}}}"

    def __repr__(self) -> str:
        return f"XComArg(task_id={self.operator.task_id!r}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, XComArg) and other.operator is self.operator and other.key == self.key

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    def as_setup(self) -> XComArg:
        """Mark the task behind this output a setup (see BaseOperator.as_setup); returns this XComArg."""
        self.operator.as_setup()
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> XComArg:
        """Mark the task behind this output a teardown (see BaseOperator.as_teardown); returns this XComArg."""
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> XComArg:
        self.operator.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.operator.__exit__(exc_type, *exc)

    def compensate_with(self, undo: BaseOperator | XComArg) -> XComArg:
        """`charge().compensate_with(refund())`: the task behind this output is undone by `undo`; returns self."""
        from dagrunner.authoring.compensation import link

        link(self.operator, undo)
        return self

    def _edge_sources(self) -> list[BaseOperator]:
        return [self.operator]

    def _edge_targets(self) -> list[BaseOperator]:
        return [self.operator]


#: Marks "no default" (None is a valid default).
NOTSET: Any = object()


class DagParam:
    """A `@dag` function's parameter: resolves to `params[name]` of the run (conf overrides defaults)."""

    def __init__(self, name: str, default: Any = NOTSET) -> None:
        self.name = name
        self.default = default

    def resolve(self, params: Mapping[str, Any]) -> Any:
        if self.name in params:
            return params[self.name]
        if self.default is not NOTSET:
            return self.default
        raise KeyError(f"DAG param {self.name!r} has no default and the run's params do not set it")

    def __str__(self) -> str:
        return f"{{{{ params[{self.name!r}] }}}}"

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"


def iter_xcom_args(value: Any) -> Iterator[XComArg]:
    """Every XComArg inside `value` (lists, tuples, sets and dict values are searched)."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from iter_xcom_args(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_xcom_args(item)


def resolve_runtime_args(value: Any, pull: Callable[[str, str], Any], params: Mapping[str, Any]) -> Any:
    """`value` with every XComArg replaced by `pull(task_id, key)` and every DagParam by its param."""
    if isinstance(value, XComArg):
        return pull(value.operator.task_id, value.key)
    if isinstance(value, DagParam):
        return value.resolve(params)
    if isinstance(value, list | tuple | set | frozenset):
        items = [resolve_runtime_args(item, pull, params) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # namedtuples
    if isinstance(value, dict):
        return {key: resolve_runtime_args(item, pull, params) for key, item in value.items()}
    return value
