"""PythonOperator and its branching relatives, plus `determine_kwargs` (context keys by parameter name).

A callable receives `op_args` positionally, `op_kwargs` by name, and any run-context value it names as a
parameter (`def load(ds, ti): ...`), or the whole context when it takes `**kwargs` — Airflow's rule, so
callables port unchanged. The branching operators only *decide*; skipping the unchosen tasks is the
scheduler's job, guided by `branches_to_skip` / `tasks_to_skip`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from dagrunner.authoring.arguments import ArgChecker
from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.skipping import branch_skip_ids, normalize_branch_choice, short_circuit_skip_ids
from dagrunner.errors import InvalidArgumentError

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def determine_kwargs(
    python_callable: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The keyword arguments for `python_callable(*args, **result)`.

    `kwargs` (op_kwargs) are always passed and win over context keys of the same name; context keys are
    passed when the callable names them, or all of them when it takes `**kwargs`. A parameter already
    filled by position is never passed again. An op_kwarg the callable cannot take is an error.
    """
    name = getattr(python_callable, "__name__", repr(python_callable))
    try:
        params = list(inspect.signature(python_callable).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature: pass what was given explicitly
        return dict(kwargs)
    by_position = {p.name for p in params[: len(args)] if p.kind is not p.VAR_POSITIONAL}
    twice = by_position & kwargs.keys()
    if twice:
        raise InvalidArgumentError(
            f"{name}: {', '.join(sorted(twice))} given both by position (op_args) and by name (op_kwargs)"
        )
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    named = {p.name for p in params if p.kind in _NAMED} - by_position
    if not takes_any:
        unknown = kwargs.keys() - named
        if unknown:
            raise InvalidArgumentError(
                f"{name} takes no parameter(s) {', '.join(sorted(unknown))} (given in op_kwargs); "
                f"its parameters: {', '.join(p.name for p in params) or '(none)'}"
            )
    available = {**context, **kwargs}
    if takes_any:
        return {k: v for k, v in available.items() if k not in by_position}
    return {k: v for k, v in available.items() if k in named}


def check_callable_args(
    check: ArgChecker,
    python_callable: Any,
    op_args: Any,
    op_kwargs: Any,
    templates_dict: Any,
) -> tuple[Callable[..., Any], list[Any], dict[str, Any], dict[str, Any] | None]:
    """Validate the arguments every callable-running operator (and PythonSensor) shares."""
    python_callable = check.callable_("python_callable", python_callable)
    if op_args is not None and not isinstance(op_args, list | tuple):
        check.fail("op_args", op_args, "a list (or tuple) of positional arguments, or None")
    templates = None if templates_dict is None else check.mapping("templates_dict", templates_dict)
    return python_callable, list(op_args or []), check.mapping("op_kwargs", op_kwargs), templates


def call_with_context(
    python_callable: Callable[..., Any],
    op_args: Sequence[Any],
    op_kwargs: Mapping[str, Any],
    templates_dict: Mapping[str, Any] | None,
    context: Mapping[str, Any],
) -> Any:
    """Call the callable as Airflow does: `templates_dict` joins the context it may ask for."""
    full_context = {**context, "templates_dict": templates_dict}
    return python_callable(*op_args, **determine_kwargs(python_callable, op_args, op_kwargs, full_context))


class PythonOperator(BaseOperator):
    """Calls `python_callable(*op_args, **op_kwargs, **<context keys it asks for>)`; returns its result."""

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.python_callable, self.op_args, self.op_kwargs, self.templates_dict = check_callable_args(
            self._arg_check, python_callable, op_args, op_kwargs, templates_dict
        )

    def execute(self, context: Mapping[str, Any]) -> Any:
        return self.execute_callable(context)

    def execute_callable(self, context: Mapping[str, Any]) -> Any:
        return call_with_context(self.python_callable, self.op_args, self.op_kwargs, self.templates_dict, context)


class BranchMixin:
    """For operators whose result names the downstream tasks to follow (the rest are skipped)."""

    is_branch = True
    task_id: str
    dag: Any

    def branches_to_skip(self, chosen: object) -> set[str]:
        """Direct downstream task ids not chosen (a group id chooses the group's roots)."""
        ids = normalize_branch_choice(self.task_id, chosen)
        groups = self.dag.task_group_dict
        roots = {gid: [t.task_id for t in group.roots] for gid, group in groups.items()}
        return branch_skip_ids(self.dag.graph, self.task_id, ids, roots)


class BranchPythonOperator(BranchMixin, PythonOperator):
    """The callable returns a task_id, a list of task_ids, or None; execute returns them as a list."""

    def execute(self, context: Mapping[str, Any]) -> list[str]:
        chosen = normalize_branch_choice(self.task_id, self.execute_callable(context))
        self.branches_to_skip(chosen)  # validates the choice against the graph
        return chosen


class ShortCircuitOperator(PythonOperator):
    """Continue only when the callable's result is truthy; otherwise skip downstream work.

    With `ignore_downstream_trigger_rules=True` (the default) every descendant is skipped; with False only
    the direct downstream tasks are, and the trigger rules of the tasks beyond decide what happens next.
    """

    is_short_circuit = True

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = self._arg_check.boolean(
            "ignore_downstream_trigger_rules", ignore_downstream_trigger_rules
        )

    def execute(self, context: Mapping[str, Any]) -> bool:
        return bool(self.execute_callable(context))

    def tasks_to_skip(self, condition: bool) -> set[str]:
        """The task ids to skip given the decision `execute` returned."""
        return short_circuit_skip_ids(
            self.dag.graph,
            self.task_id,
            condition=condition,
            ignore_downstream_trigger_rules=self.ignore_downstream_trigger_rules,
        )
