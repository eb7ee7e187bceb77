"""Dynamic task mapping, declaration side: `.partial(...).expand(...)` for classic operators and @task.

A mapped task is one node in the graph (`MappedOperator`) standing for N task instances, N known only at
run time (the length of a literal list, or of an upstream task's returned list). Here we only declare and
validate it and describe it for serialization; the scheduler expands it into `map_index` instances and the
runner builds one concrete operator per index with `unmap()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from dagrunner.authoring.arguments import ArgChecker
from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.init_params import init_params
from dagrunner.authoring.location import Location
from dagrunner.authoring.xcom_arg import XComArg

#: Where mapped values go when a concrete operator is built: its constructor, or a @task's op_kwargs.
ExpandTarget = Literal["init", "op_kwargs"]

_BASE_ARGS = init_params(BaseOperator).accepted

#: The one `.expand()` input of an `.expand_kwargs(...)` task: each element is a dict of arguments for one
#: instance. Stored under this name so the scheduler counts it and the runner indexes it like any input.
EXPAND_KWARGS = "expand_kwargs"


def check_expand_kwargs_value(
    check: ArgChecker, value: Any, accepted: set[str] | None, *, operator_args: bool
) -> list[Any] | XComArg:
    """`expand_kwargs(...)` takes a list of dicts (each instance's arguments) or an upstream task's output.

    Literal dicts are checked now: string keys, each an argument the task takes (`accepted`; None means any).
    `operator_args`: the keys are operator arguments (not a @task function's), so scheduling arguments such
    as `retries` are refused, as in `.expand()`.
    """
    if isinstance(value, XComArg):
        return value
    if not isinstance(value, list | tuple):
        check.fail("expand_kwargs", value, "a list of dicts (one per instance) or an upstream task's output (XComArg)")
    for element in value:
        check_kwargs_element(check, element, accepted, operator_args=operator_args)
    return list(value)


def check_kwargs_element(
    check: ArgChecker, element: Any, accepted: set[str] | None, *, operator_args: bool
) -> dict[str, Any]:
    """One element of an expand_kwargs input: a dict of argument name -> value for one instance."""
    if not isinstance(element, Mapping) or not all(isinstance(k, str) for k in element):
        check.fail("expand_kwargs", element, "each element to be a dict of argument name -> value")
    if accepted is not None and element.keys() - accepted:
        check.unknown(element.keys() - accepted, accepted)
    for name in element.keys() & _BASE_ARGS if operator_args else ():
        check.fail(
            f"expand_kwargs(... {name!r} ...)",
            element[name],
            "operator-specific arguments only; scheduling arguments apply to every instance and go in partial()",
        )
    return dict(element)


def check_expand_values(check: ArgChecker, mapped: Mapping[str, Any]) -> dict[str, list[Any] | XComArg]:
    """Each mapped value must be a literal list/tuple or an XComArg (a list produced at run time)."""
    if not mapped:
        check.fail("expand", {}, "at least one keyword argument to map over")
    result: dict[str, list[Any] | XComArg] = {}
    for name, value in mapped.items():
        if isinstance(value, XComArg):
            result[name] = value
        elif isinstance(value, list | tuple):
            result[name] = list(value)
        else:
            check.fail(
                f"expand({name}=...)",
                value,
                "a list or tuple of values, or an upstream task's output (XComArg)",
            )
    return result


class OperatorPartial:
    """What `SomeOperator.partial(...)` returns: the arguments shared by every mapped instance."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any], where: Location) -> None:
        self.operator_class = operator_class
        self.where = where
        self.check = ArgChecker(f"{operator_class.__name__}.partial(task_id={kwargs.get('task_id')!r})", where)
        if "task_id" not in kwargs:
            self.check.missing(["task_id"])
        unknown = kwargs.keys() - init_params(operator_class).accepted
        if unknown:
            self.check.unknown(unknown, init_params(operator_class).accepted)
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> MappedOperator:
        """Declare the mapped task; each name must be an argument of the operator not given to partial()."""
        accepted = init_params(self.operator_class).accepted
        for name in mapped:
            if name in self.kwargs:
                self.check.fail(f"expand({name}=...)", mapped[name], "an argument not already given to partial()")
            if name in _BASE_ARGS:
                self.check.fail(
                    f"expand({name}=...)",
                    mapped[name],
                    "an operator-specific argument; scheduling arguments such as "
                    f"{name} apply to every mapped instance and go in partial()",
                )
            if name not in accepted:
                self.check.unknown([name], accepted - _BASE_ARGS)
        expand_input = check_expand_values(self.check, mapped)
        return declare_mapped(self.operator_class, self.kwargs, expand_input, "init")

    def expand_kwargs(self, kwargs: list[Mapping[str, Any]] | XComArg) -> MappedOperator:
        """Declare the mapped task with one dict of arguments per instance (Airflow's `expand_kwargs`):
        `BashOperator.partial(task_id="t").expand_kwargs([{"bash_command": "echo 1", "env": {...}}, ...])`."""
        accepted = set(init_params(self.operator_class).accepted) - self.kwargs.keys()
        value = check_expand_kwargs_value(self.check, kwargs, accepted, operator_args=True)
        return declare_mapped(self.operator_class, self.kwargs, {EXPAND_KWARGS: value}, "init", by_kwargs=True)


def declare_mapped(
    operator_class: type[BaseOperator],
    kwargs: Mapping[str, Any],
    expand_input: dict[str, list[Any] | XComArg],
    expand_target: ExpandTarget,
    *,
    by_kwargs: bool = False,
) -> MappedOperator:
    """Create the MappedOperator node: BaseOperator arguments go to it, the rest are kept for unmap()."""
    base = {k: v for k, v in kwargs.items() if k in _BASE_ARGS}
    specific = {k: v for k, v in kwargs.items() if k not in _BASE_ARGS}
    return MappedOperator(
        operator_class=operator_class,
        partial_kwargs=specific,
        expand_input=expand_input,
        expand_target=expand_target,
        by_kwargs=by_kwargs,
        **base,
    )


class MappedOperator(BaseOperator):
    """One graph node standing for N instances of `operator_class`, one per mapped value (or tuple of)."""

    is_mapped = True

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: dict[str, list[Any] | XComArg],
        expand_target: ExpandTarget = "init",
        by_kwargs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        #: Declared with `expand_kwargs(...)`: the one input's elements are whole dicts of arguments.
        self.by_kwargs = by_kwargs
        self.operator_class = operator_class
        self.expand_input = expand_input
        self.expand_target: ExpandTarget = expand_target
        self.base_kwargs = {k: v for k, v in kwargs.items() if k not in ("dag", "task_group")}
        self.partial_kwargs = dict(partial_kwargs)
        # default_args also fill the operator's own arguments (e.g. cwd for a BashOperator).
        defaults = {**self.dag.default_args, **self.task_group.default_args}
        own = init_params(operator_class).accepted - _BASE_ARGS - expand_input.keys()
        for name in own & defaults.keys():
            self.partial_kwargs.setdefault(name, defaults[name])
        # Catch a bad partial() argument now, with the user's file:line, when a first value is known.
        literals = list(expand_input.values())
        if literals and all(isinstance(v, list) and v for v in literals):
            self.unmap({name: values[0] for name, values in expand_input.items()})  # type: ignore[index]

    @property
    def template_fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.operator_class.template_fields)

    @property
    def operator_name(self) -> str:
        return self.operator_class.__name__

    def partial_value(self, name: str) -> Any:
        """An argument every instance shares: given to partial(), from default_args, or the class default."""
        if name in self.partial_kwargs:
            return self.partial_kwargs[name]
        if name in self.base_kwargs:
            return self.base_kwargs[name]
        return init_params(self.operator_class).defaults.get(name)

    def unmap(self, values: Mapping[str, Any]) -> BaseOperator:
        """The concrete operator for one map index (not added to the DAG); `values` maps name -> one value."""
        kwargs = {**self.base_kwargs, **self.partial_kwargs}
        if self.by_kwargs:
            check = ArgChecker(f"mapped task {self.task_id!r}", self.defined_at)
            by_init = self.expand_target == "init"
            accepted = set(init_params(self.operator_class).accepted) - self.partial_kwargs.keys() if by_init else None
            values = check_kwargs_element(check, values[EXPAND_KWARGS], accepted, operator_args=by_init)
        if self.expand_target == "op_kwargs":
            kwargs["op_kwargs"] = {**(kwargs.get("op_kwargs") or {}), **values}
        else:
            kwargs.update(values)
        kwargs.update(dag=self.dag, task_group=self.task_group)
        return self.operator_class._construct((), kwargs, where=self.defined_at, register=False)

    def execute(self, context: Mapping[str, Any]) -> Any:
        raise NotImplementedError(f"mapped task {self.task_id!r} runs as unmap(values) copies, one per map index")

    def render_template_fields(self, context: Mapping[str, Any], jinja_env: Any = None, *, pull: Any = None) -> None:
        raise NotImplementedError(f"mapped task {self.task_id!r}: render the unmap(values) copy instead")

    def _xcom_inputs(self) -> Iterator[Any]:
        yield from self.partial_kwargs.values()
        yield from self.expand_input.values()
