"""TaskFlow: `@task` functions that become tasks when called inside a DAG, wired by the data they pass.

Calling a decorated function does not run it: it creates a task whose arguments are the call's arguments
(XComArgs among them become upstream edges) and returns an `XComArg` for its result. Ids follow Airflow:
the function name, then `fn__1`, `fn__2` for later calls in the same DAG and group. `multiple_outputs` is
inferred from a dict/TypedDict return annotation, as in Airflow.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from dagrunner.authoring import _context
from dagrunner.authoring.arguments import ArgChecker
from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.context_keys import KNOWN_CONTEXT_KEYS
from dagrunner.authoring.init_params import init_params
from dagrunner.authoring.location import user_location
from dagrunner.authoring.mapped import EXPAND_KWARGS, check_expand_kwargs_value, check_expand_values, declare_mapped
from dagrunner.authoring.operators.bash import BashCommandError, BashOperator
from dagrunner.authoring.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    call_with_context,
    check_callable_args,
)
from dagrunner.authoring.operators.python_virtualenv import ExternalPythonOperator, PythonVirtualenvOperator
from dagrunner.authoring.sensors.decorated import DecoratedSensorOperator
from dagrunner.authoring.templating import render_shell_command
from dagrunner.authoring.xcom_arg import XComArg
from dagrunner.errors import InvalidArgumentError

__all__ = ["XComArg", "infer_multiple_outputs", "task", "unique_task_id"]

#: Arguments the decorator sets itself; giving them in @task(...) would be a mistake.
_DECORATOR_OWNED = frozenset({"python_callable", "op_args", "op_kwargs", "bash_command", "templates_dict"})


class PythonDecoratedOperator(PythonOperator):
    """The task behind `@task`: a PythonOperator that may push a dict result as one XCom per key."""

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple_outputs = self._arg_check.boolean("multiple_outputs", multiple_outputs)


class PythonVirtualenvDecoratedOperator(PythonVirtualenvOperator):
    """The task behind `@task.virtualenv`: the function's source runs in a cached venv."""

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple_outputs = self._arg_check.boolean("multiple_outputs", multiple_outputs)


class ExternalPythonDecoratedOperator(ExternalPythonOperator):
    """The task behind `@task.external_python(python=...)`: the function's source runs in that interpreter."""

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple_outputs = self._arg_check.boolean("multiple_outputs", multiple_outputs)


class BranchPythonDecoratedOperator(BranchPythonOperator):
    """The task behind `@task.branch`.

    Every `@task` variant is built with `multiple_outputs`; a branch returns task ids, never keys to split.
    """

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:  # noqa: ARG002 - see docstring
        super().__init__(**kwargs)


class ShortCircuitDecoratedOperator(ShortCircuitOperator):
    """The task behind `@task.short_circuit`.

    Every `@task` variant is built with `multiple_outputs`; a short-circuit returns one truth value, never keys.
    """

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:  # noqa: ARG002 - see docstring
        super().__init__(**kwargs)


class BashDecoratedOperator(BashOperator):
    """The task behind `@task.bash`: the function returns the command, rendered then run like BashOperator's."""

    template_fields = ("op_args", "op_kwargs", "env", "cwd")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: list[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        multiple_outputs: bool = False,  # noqa: ARG002 - passed to every @task variant; a command's output is one XCom
        bash_command: str = "<the command the @task.bash function returns>",
        **kwargs: Any,
    ) -> None:
        super().__init__(bash_command=bash_command, **kwargs)
        self.python_callable, self.op_args, self.op_kwargs, _ = check_callable_args(
            self._arg_check, python_callable, op_args, op_kwargs, None
        )

    def execute(self, context: Mapping[str, Any]) -> str:
        command = call_with_context(self.python_callable, self.op_args, self.op_kwargs, None, context)
        if not isinstance(command, str) or not command.strip():
            raise BashCommandError(
                f"task {self.task_id!r}: the @task.bash function returned {command!r}; it must return "
                "a non-empty bash command string"
            )
        self.bash_command = render_shell_command(
            command, context, self.dag.get_template_env(), what=f"task {self.task_id!r} bash command"
        )
        return self.run_command(self.bash_command)


def infer_multiple_outputs(function: Callable[..., Any]) -> bool:
    """True when the return annotation is a Mapping type (dict, dict[str, int], a TypedDict...)."""
    if "return" not in getattr(function, "__annotations__", {}):
        return False
    try:
        returns = typing.get_type_hints(function).get("return")
    except Exception:  # an unresolvable forward reference: do not guess
        return False
    origin = typing.get_origin(returns) or returns
    return isinstance(origin, type) and issubclass(origin, Mapping)


def unique_task_id(label: str, operator_kwargs: Mapping[str, Any]) -> str:
    """`label`, or `label__N` with the next free N when the DAG (in this group) already uses it."""
    dag = operator_kwargs.get("dag") or _context.current_dag()
    if dag is None:
        return label  # constructing the task will explain that it needs a DAG
    group = operator_kwargs.get("task_group") or _context.current_task_group(dag)
    if not dag.has_node_id(group.child_id(label)):
        return label
    core = re.sub(r"__\d+$", "", label)
    pattern = re.compile(re.escape(group.child_id(core)) + r"__(\d+)$")
    taken = [int(m.group(1)) for node_id in dag.node_ids() if (m := pattern.match(node_id))]
    return f"{core}__{max(taken, default=0) + 1}"


class TaskFunction:
    """What `@task` returns: call it (inside a DAG) to create a task; `.expand()` to map it."""

    def __init__(
        self,
        function: Callable[..., Any],
        operator_class: type[BaseOperator],
        operator_kwargs: dict[str, Any],
        multiple_outputs: bool | None,
        marker: Callable[[BaseOperator], None] | None = None,
    ) -> None:
        where = user_location()
        check = ArgChecker(f"@task {getattr(function, '__name__', function)!r}", where)
        check.callable_("python_callable", function)
        owned = operator_kwargs.keys() & _DECORATOR_OWNED
        if owned:
            check.fail(sorted(owned)[0], operator_kwargs[sorted(owned)[0]], "to be left out: @task sets it")
        accepted = init_params(operator_class).accepted - _DECORATOR_OWNED - {"multiple_outputs"}
        if operator_kwargs.keys() - accepted:
            check.unknown(operator_kwargs.keys() - accepted, accepted)
        self.function = function
        self.operator_class = operator_class
        self.operator_kwargs = operator_kwargs
        self.multiple_outputs = (
            infer_multiple_outputs(function)
            if multiple_outputs is None
            else check.boolean("multiple_outputs", multiple_outputs)
        )
        self.signature = inspect.signature(function)
        #: Applied to every task this function creates (`@setup` / `@teardown` mark them).
        self.marker = marker
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        self._check_call(args, kwargs, partial=False)
        operator_class: Any = self.operator_class  # a decorated-operator class: takes python_callable etc.
        task = operator_class(
            task_id=unique_task_id(self._label(), self.operator_kwargs),
            python_callable=self.function,
            op_args=list(args),
            op_kwargs=kwargs,
            multiple_outputs=self.multiple_outputs,
            **{k: v for k, v in self.operator_kwargs.items() if k != "task_id"},
        )
        if self.marker is not None:
            self.marker(task)
        return XComArg(task)

    def override(self, **operator_kwargs: Any) -> TaskFunction:
        """The same function with other task arguments: `extract.override(task_id="e2", retries=5)()`."""
        merged = {**self.operator_kwargs, **operator_kwargs}
        return TaskFunction(self.function, self.operator_class, merged, self.multiple_outputs, self.marker)

    def with_marker(self, marker: Callable[[BaseOperator], None]) -> TaskFunction:
        """The same function, marking every task it creates with `marker` too (`@setup`, `@teardown`)."""
        previous = self.marker

        def both(task: BaseOperator) -> None:
            if previous is not None:
                previous(task)
            marker(task)

        return TaskFunction(self.function, self.operator_class, self.operator_kwargs, self.multiple_outputs, both)

    def partial(self, **kwargs: Any) -> _TaskFunctionPartial:
        """Fix some function arguments for every mapped instance: `fn.partial(x=1).expand(y=[1, 2])`."""
        return _TaskFunctionPartial(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        """Map the function over lists: one task instance per value (per tuple of values for several)."""
        return _TaskFunctionPartial(self, {}).expand(**mapped)

    def expand_kwargs(self, kwargs: list[Mapping[str, Any]] | XComArg) -> XComArg:
        """Map the function over dicts of arguments: one task instance per dict (Airflow's `expand_kwargs`)."""
        return _TaskFunctionPartial(self, {}).expand_kwargs(kwargs)

    def _label(self) -> str:
        return str(self.operator_kwargs.get("task_id") or self.function.__name__)

    def _check_call(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, partial: bool) -> None:
        """Bind like a real call would, treating context-key parameters (ds, ti...) as optional."""
        where = user_location()
        name = self.function.__name__
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(f"@task {name!r} called at {where}: {exc}") from None
        if partial:
            return
        missing = [
            p.name
            for p in self.signature.parameters.values()
            if p.name not in bound.arguments
            and p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in KNOWN_CONTEXT_KEYS
        ]
        if missing:
            raise InvalidArgumentError(f"@task {name!r} called at {where}: missing argument(s) {', '.join(missing)}")


class _TaskFunctionPartial:
    """`fn.partial(...)`: function arguments shared by every mapped instance, waiting for `.expand()`."""

    def __init__(self, task_function: TaskFunction, kwargs: dict[str, Any]) -> None:
        task_function._check_call((), kwargs, partial=True)
        self.task_function = task_function
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> XComArg:
        tf = self.task_function
        check = ArgChecker(f"@task {tf.function.__name__!r}", user_location())
        for name in mapped.keys() & self.kwargs.keys():
            check.fail(f"expand({name}=...)", mapped[name], "an argument not already given to partial()")
        takes_any = any(p.kind is p.VAR_KEYWORD for p in tf.signature.parameters.values())
        named = {n for n, p in tf.signature.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not takes_any and mapped.keys() - named:
            check.unknown(mapped.keys() - named, named)
        expand_input = check_expand_values(check, mapped)
        tf._check_call((), {**self.kwargs, **mapped}, partial=False)
        return self._declare(expand_input, by_kwargs=False)

    def expand_kwargs(self, kwargs: list[Mapping[str, Any]] | XComArg) -> XComArg:
        """One instance per dict of function arguments; literal dicts are checked against the signature now,
        an upstream task's dicts when each instance runs."""
        tf = self.task_function
        check = ArgChecker(f"@task {tf.function.__name__!r}", user_location())
        takes_any = any(p.kind is p.VAR_KEYWORD for p in tf.signature.parameters.values())
        named = {n for n, p in tf.signature.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        accepted = None if takes_any else named - self.kwargs.keys()
        value = check_expand_kwargs_value(check, kwargs, accepted, operator_args=False)
        for element in value if isinstance(value, list) else ():
            tf._check_call((), {**self.kwargs, **element}, partial=False)
        return self._declare({EXPAND_KWARGS: value}, by_kwargs=True)

    def _declare(self, expand_input: dict[str, list[Any] | XComArg], *, by_kwargs: bool) -> XComArg:
        tf = self.task_function
        kwargs = {
            **{k: v for k, v in tf.operator_kwargs.items() if k != "task_id"},
            "task_id": unique_task_id(tf._label(), tf.operator_kwargs),
            "python_callable": tf.function,
            "op_args": [],
            "op_kwargs": dict(self.kwargs),
            "multiple_outputs": tf.multiple_outputs,
        }
        mapped_task = declare_mapped(tf.operator_class, kwargs, expand_input, "op_kwargs", by_kwargs=by_kwargs)
        if tf.marker is not None:
            tf.marker(mapped_task)
        return XComArg(mapped_task)


class _TaskDecorator:
    """`@task`, `@task(...)`, and the flavours `@task.branch`, `@task.short_circuit`, `@task.bash`, `@task.sensor`,
    `@task.virtualenv`, `@task.external_python`."""

    def __init__(self, operator_class: type[BaseOperator]) -> None:
        self.operator_class = operator_class

    def __call__(
        self,
        python_callable: Callable[..., Any] | None = None,
        *,
        multiple_outputs: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        def decorate(function: Callable[..., Any]) -> TaskFunction:
            return TaskFunction(function, self.operator_class, kwargs, multiple_outputs)

        return decorate(python_callable) if python_callable is not None else decorate


class _TaskNamespace(_TaskDecorator):
    def __init__(self) -> None:
        super().__init__(PythonDecoratedOperator)
        self.python = _TaskDecorator(PythonDecoratedOperator)
        self.branch = _TaskDecorator(BranchPythonDecoratedOperator)
        self.short_circuit = _TaskDecorator(ShortCircuitDecoratedOperator)
        self.bash = _TaskDecorator(BashDecoratedOperator)
        self.sensor = _TaskDecorator(DecoratedSensorOperator)
        self.virtualenv = _TaskDecorator(PythonVirtualenvDecoratedOperator)
        self.external_python = _TaskDecorator(ExternalPythonDecoratedOperator)


task = _TaskNamespace()
