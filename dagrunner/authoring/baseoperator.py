"""BaseOperator: a task's definition — its id, retry and scheduling arguments, callbacks and `execute`.

Construction goes through `OperatorMeta.__call__`, which does what Airflow's `apply_defaults` does and a
little more, before the class's own `__init__` runs:

1. capture the user's `file:line` (errors and `dagrunner tasks list` show it);
2. find the DAG and TaskGroup (explicit `dag=` / `task_group=`, else the current `with` blocks);
3. fill arguments the call left out from `default_args` (explicit > group > DAG > the class default),
   only for arguments the operator accepts, as Airflow does, so `default_args={"owner": ...}` is harmless;
4. refuse unknown and missing arguments with one clear message;

and after `__init__`, registers the task in its DAG and adds an edge from every XComArg found in its
templated fields. Subclasses declare `template_fields` and implement `execute(context)`.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self

import networkx as nx

from dagrunner.authoring import _context, setup_teardown
from dagrunner.authoring.arguments import ID_PATTERN, ArgChecker
from dagrunner.authoring.dag import DAG
from dagrunner.authoring.dependencies import DependencyMixin
from dagrunner.authoring.init_params import init_params
from dagrunner.authoring.location import Location, user_location
from dagrunner.authoring.task_group import TaskGroup
from dagrunner.authoring.trigger_rule import TriggerRule, WeightRule
from dagrunner.authoring.xcom_arg import XComArg, iter_xcom_args
from dagrunner.errors import AuthoringError, InvalidArgumentError, InvalidScheduleError
from dagrunner.timetables.assets import Asset, AssetAlias, task_assets

if TYPE_CHECKING:
    import jinja2

    from dagrunner.authoring.mapped import OperatorPartial

#: Never taken from default_args: identity and placement are per task.
_NOT_DEFAULTABLE = frozenset({"task_id", "dag", "task_group"})

#: Airflow 3 task arguments that mean nothing here (executor- and deployment-specific): accepted, announced
#: once in the log, then dropped. An operator that declares one of these names itself gets it as usual.
_IGNORED = {
    "executor": "dagrunner runs every task with the scheduler's one executor",
    "executor_config": "dagrunner's executors take no per-task configuration",
    "run_as_user": "tasks run as the user running dagrunner",
    "resources": "dagrunner does not reserve CPU or memory per task; use pools",
    "logger_name": "task logs go to the try's log file",
    "allow_nested_operators": "dagrunner does not warn about operators run inside other operators",
}

Callback = Callable[..., Any]

log = logging.getLogger("dagrunner.authoring")
_EMAIL_ANNOUNCED: set[str] = set()


class OperatorMeta(type):
    """Routes `SomeOperator(...)` through `BaseOperator._construct` (see the module docstring)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._construct(args, kwargs, where=user_location(), register=True)  # type: ignore[attr-defined]


class BaseOperator(DependencyMixin, metaclass=OperatorMeta):
    """Base of every task. Arguments and defaults are Airflow's (DESIGN.md section 2)."""

    #: Attribute names rendered with Jinja against the run context before `execute`.
    template_fields: ClassVar[Sequence[str]] = ()
    #: A templated string ending in one of these is the name of a template file to render instead.
    template_ext: ClassVar[Sequence[str]] = ()
    is_branch: ClassVar[bool] = False
    is_short_circuit: ClassVar[bool] = False
    is_sensor: ClassVar[bool] = False
    is_mapped: ClassVar[bool] = False
    #: True when a dict return value is also pushed as one XCom per key (set by @task).
    multiple_outputs: bool = False
    #: Set by `as_setup()` / `as_teardown()` (authoring/setup_teardown.py).
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False
    #: Saga compensation (`compensate_with`): the task that undoes this one, and the step this one undoes.
    compensated_by: str | None = None
    compensates: str | None = None

    defined_at: Location
    _arg_check: ArgChecker

    @classmethod
    def _construct(
        cls, args: tuple[Any, ...], kwargs: dict[str, Any], *, where: Location, register: bool
    ) -> BaseOperator:
        """Build an instance; `register=False` builds one that is not added to its DAG (a mapped copy)."""
        task_id = kwargs.get("task_id")
        subject = f"{cls.__name__} {task_id!r}"
        dag = kwargs.get("dag") or _context.current_dag()
        if dag is None:
            raise InvalidArgumentError(
                f"{subject} at {where} is not in a DAG: define it inside `with DAG(...):` or a @dag "
                "function, or pass dag="
            )
        if not isinstance(dag, DAG):
            ArgChecker(subject, where).fail("dag", dag, "a DAG")
        group = kwargs.get("task_group") or _context.current_task_group(dag)
        if not isinstance(group, TaskGroup) or group.dag is not dag:
            ArgChecker(subject, where).fail("task_group", group, f"a TaskGroup of DAG {dag.dag_id!r}")
        check = ArgChecker(f"{subject} in DAG {dag.dag_id!r}", where)
        params = init_params(cls)
        kwargs = check.ignore(kwargs, {k: why for k, why in _IGNORED.items() if k not in params.accepted})
        unknown = kwargs.keys() - params.accepted
        if unknown:
            check.unknown(unknown, params.accepted - _NOT_DEFAULTABLE | set(_IGNORED))
        kwargs, sources = _apply_default_args(kwargs, params.accepted, dag, group)
        missing = params.required - kwargs.keys()
        if missing and not args:
            check.missing(missing)

        task = cls.__new__(cls)
        task.defined_at = where
        task._arg_check = ArgChecker(check.subject, where, sources)
        task.__init__(*args, **{**kwargs, "dag": dag, "task_group": group})  # type: ignore[misc]
        for name in () if task.is_mapped else task.template_fields:
            if not hasattr(task, name):
                raise AuthoringError(f"{cls.__name__} lists {name!r} in template_fields but sets no such attribute")
        if register:
            dag.add_task(task)
            task._add_xcom_edges()
        return task

    def __init__(
        self,
        *,
        task_id: str,
        owner: str = "airflow",
        email: str | Iterable[str] | None = None,
        email_on_retry: bool = True,
        email_on_failure: bool = True,
        retries: int = 0,
        retry_delay: timedelta | float = timedelta(seconds=300),
        retry_exponential_backoff: bool | float = False,
        max_retry_delay: timedelta | float | None = None,
        execution_timeout: timedelta | float | None = None,
        trigger_rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
        depends_on_past: bool = False,
        pool: str = "default_pool",
        pool_slots: int = 1,
        priority_weight: int = 1,
        weight_rule: WeightRule | str = WeightRule.DOWNSTREAM,
        queue: str = "default",
        do_xcom_push: bool = True,
        on_success_callback: Callback | list[Callback] | None = None,
        on_failure_callback: Callback | list[Callback] | None = None,
        on_retry_callback: Callback | list[Callback] | None = None,
        on_execute_callback: Callback | list[Callback] | None = None,
        on_skipped_callback: Callback | list[Callback] | None = None,
        doc_md: str | None = None,
        doc: str | None = None,
        doc_json: str | None = None,
        doc_yaml: str | None = None,
        doc_rst: str | None = None,
        task_display_name: str | None = None,
        params: dict[str, Any] | None = None,
        outlets: Iterable[Any] | None = None,
        inlets: Iterable[Any] | None = None,
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
    ) -> None:
        check = self._arg_check
        assert dag is not None and task_group is not None, "OperatorMeta always resolves dag and task_group"
        self.dag: DAG = dag
        self.task_group: TaskGroup = task_group
        self.label = check.string("task_id", task_id, pattern=ID_PATTERN, what="letters, digits, _ . or -")
        self.task_id: str = task_group.child_id(task_id)
        if len(self.task_id) > 250:
            check.fail("task_id", task_id, "a full id (with group prefixes) of at most 250 characters")
        self.retries = check.integer("retries", retries, minimum=0)
        self.retry_delay = check.duration("retry_delay", retry_delay)
        self.retry_exponential_backoff = _backoff_base(check, retry_exponential_backoff)
        self.max_retry_delay = check.optional_duration("max_retry_delay", max_retry_delay)
        self.execution_timeout = check.optional_duration("execution_timeout", execution_timeout, positive=True)
        self.trigger_rule = _trigger_rule(check, trigger_rule)
        self.depends_on_past = check.boolean("depends_on_past", depends_on_past)
        self.pool = check.string("pool", pool)
        self.pool_slots = check.integer("pool_slots", pool_slots, minimum=1)
        self.priority_weight = check.priority("priority_weight", priority_weight)
        self.weight_rule = WeightRule(check.choice("weight_rule", weight_rule, list(WeightRule)))
        self.queue = check.string("queue", queue)
        self.do_xcom_push = check.boolean("do_xcom_push", do_xcom_push)
        self.on_success_callback = check.callbacks("on_success_callback", on_success_callback)
        self.on_failure_callback = check.callbacks("on_failure_callback", on_failure_callback)
        self.on_retry_callback = check.callbacks("on_retry_callback", on_retry_callback)
        self.on_execute_callback = check.callbacks("on_execute_callback", on_execute_callback)
        #: Airflow 2.9+: called when the task skips itself (raises SkipTask), not when a rule skips it.
        self.on_skipped_callback = check.callbacks("on_skipped_callback", on_skipped_callback)
        self.doc_md = check.optional_string("doc_md", doc_md)
        #: Airflow's other documentation formats: stored as given, shown as plain text.
        self.doc = check.optional_string("doc", doc)
        self.doc_json = check.optional_string("doc_json", doc_json)
        self.doc_yaml = check.optional_string("doc_yaml", doc_yaml)
        self.doc_rst = check.optional_string("doc_rst", doc_rst)
        self._task_display_name = check.optional_string("task_display_name", task_display_name)
        self.owner = check.string("owner", owner)
        self.email: list[str] = _emails(check, email)
        self.email_on_retry = check.boolean("email_on_retry", email_on_retry)
        self.email_on_failure = check.boolean("email_on_failure", email_on_failure)
        if self.email and (self.email_on_retry or self.email_on_failure):
            _announce_no_email(dag, where=self.defined_at)
        self.params: dict[str, Any] = check.params("params", params)
        #: Assets (or aliases) this task updates when it succeeds, and the ones it reads (#12).
        self.outlets: list[Asset | AssetAlias] = _assets(check, "outlets", outlets)
        self.inlets: list[Asset | AssetAlias] = _assets(check, "inlets", inlets)
        self._scopes: list[set[str]] = []  # open `with self.as_teardown(...)` blocks

    # --- what subclasses implement ------------------------------------------------------------------

    def execute(self, context: Mapping[str, Any]) -> Any:
        """Do the work; the return value becomes the task's XCom (`return_value`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(self, context)")

    def on_kill(self) -> None:
        """Called when the try is killed (timeout, SIGTERM): stop any subprocess the task started."""

    # --- setup and teardown (authoring/setup_teardown.py) ----------------------------------------------

    def as_setup(self) -> Self:
        """Mark this task a setup (it creates what the work uses); returns the task."""
        setup_teardown.mark_setup(self)
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> Self:
        """Mark this task the teardown of `setups` (a task, a TaskFlow output, or a list; they become
        setups, upstream of this task); it runs once the work is done, even if the work failed. Its failure
        fails the run only with `on_failure_fail_dagrun=True`. Returns the task."""
        setup_teardown.mark_teardown(self, setups, on_failure_fail_dagrun)
        return self

    def __enter__(self) -> Self:
        """`with teardown.as_teardown(setups=setup):` puts the block's tasks between setup and teardown."""
        setup_teardown.enter_scope(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        setup_teardown.exit_scope(self, wire=exc_type is None)

    # --- graph views --------------------------------------------------------------------------------

    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self.dag.graph.predecessors(self.task_id))

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self.dag.graph.successors(self.task_id))

    @property
    def upstream_list(self) -> list[BaseOperator]:
        return [self.dag.task_dict[task_id] for task_id in self.dag.graph.predecessors(self.task_id)]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        return [self.dag.task_dict[task_id] for task_id in self.dag.graph.successors(self.task_id)]

    def get_flat_relative_ids(self, *, upstream: bool = False) -> set[str]:
        """All ancestors (upstream=True) or all descendants of this task."""
        if upstream:
            return set(nx.ancestors(self.dag.graph, self.task_id))
        return set(nx.descendants(self.dag.graph, self.task_id))

    @property
    def output(self) -> XComArg:
        """This task's return value as an XComArg (Airflow's `.output`)."""
        return XComArg(self)

    @property
    def task_display_name(self) -> str:
        """The name people see: `task_display_name` when given, else the task_id (Airflow's rule)."""
        return self._task_display_name or self.task_id

    @property
    def operator_name(self) -> str:
        return type(self).__name__

    def compensate_with(self, undo: BaseOperator | XComArg) -> BaseOperator:
        """Name the task that undoes this one when the run fails after it succeeded (a saga); returns self.

        `undo` is a task of the same DAG with no edges (`authoring/compensation.py` says what is refused).
        """
        from dagrunner.authoring.compensation import link

        link(self, undo)
        return self

    def _edge_sources(self) -> list[BaseOperator]:
        return [self]

    def _edge_targets(self) -> list[BaseOperator]:
        return [self]

    def _xcom_inputs(self) -> Iterator[Any]:
        """The argument values that may hold XComArgs (for a plain task: its templated fields)."""
        return (getattr(self, name) for name in self.template_fields)

    def _add_xcom_edges(self) -> None:
        for arg in iter_xcom_args(list(self._xcom_inputs())):
            if arg.operator is not self:
                self.dag.add_edge(arg.operator, self, self.defined_at)

    # --- run time -----------------------------------------------------------------------------------

    def prepare_for_execution(self) -> BaseOperator:
        """A shallow copy to render and run, so one try never changes the definition other tries see.

        Shallow is enough (rendering builds new values instead of mutating them) and cheap: a deep copy
        would copy the whole DAG through `self.dag`.
        """
        return copy.copy(self)

    def render_template_fields(
        self,
        context: Mapping[str, Any],
        jinja_env: jinja2.Environment | None = None,
        *,
        pull: Callable[[str, str], Any] | None = None,
    ) -> None:
        """Render every templated field in place (on a `prepare_for_execution()` copy).

        `pull(task_id, key)` fetches the XComs that XComArgs in the fields stand for.
        """
        from dagrunner.authoring.templating import render_templated_fields

        render_templated_fields(self, context, jinja_env or self.dag.get_template_env(), pull=pull)

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """`Op.partial(task_id=..., common=...).expand(mapped=[...])`: declare a mapped task."""
        from dagrunner.authoring.mapped import OperatorPartial

        return OperatorPartial(cls, kwargs, user_location())

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"


def _apply_default_args(
    kwargs: dict[str, Any], accepted: frozenset[str], dag: DAG, group: TaskGroup
) -> tuple[dict[str, Any], dict[str, str]]:
    """kwargs plus the default_args the call left out, and where each such value came from."""
    merged: dict[str, tuple[Any, str]] = {k: (v, "the DAG's default_args") for k, v in dag.default_args.items()}
    if group.default_args:
        origin = f"TaskGroup {group.group_id!r} default_args"
        merged.update({k: (v, origin) for k, v in group.default_args.items()})
    result = dict(kwargs)
    sources: dict[str, str] = {}
    for name, (value, origin) in merged.items():
        if name in accepted and name not in kwargs and name not in _NOT_DEFAULTABLE:
            result[name] = value
            sources[name] = origin
    return result, sources


def _emails(check: ArgChecker, value: Any) -> list[str]:
    """Airflow's `email`: one address, a comma- or semicolon-separated string of them, or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[,;]", value) if part.strip()]
    return check.string_list("email", value)


def _announce_no_email(dag: DAG, *, where: Location) -> None:
    """Say once per DAG that its tasks' e-mail arguments send nothing (there is no SMTP setting)."""
    if dag.dag_id in _EMAIL_ANNOUNCED:
        return
    _EMAIL_ANNOUNCED.add(dag.dag_id)
    log.warning(
        "DAG %r at %s: email= with email_on_failure/email_on_retry sends no e-mail (dagrunner has no SMTP "
        "settings); use on_failure_callback / on_retry_callback with a notifier instead",
        dag.dag_id,
        where,
    )


def _backoff_base(check: ArgChecker, value: Any) -> float:
    """Airflow's bool or a float base: True -> 2.0, False -> 0.0 (off); 0 and 1 both mean a fixed delay."""
    if isinstance(value, bool):
        return 2.0 if value else 0.0
    if not isinstance(value, int | float) or not 0 <= value < float("inf"):
        check.fail("retry_exponential_backoff", value, "True, False, or a base (a number >= 0)")
    return float(value)


def _trigger_rule(check: ArgChecker, value: Any) -> TriggerRule:
    if isinstance(value, str) and value in TriggerRule._value2member_map_:
        return TriggerRule(value)
    check.fail("trigger_rule", value, "one of " + ", ".join(TriggerRule))


def _assets(check: ArgChecker, name: str, value: Iterable[Any] | None) -> list[Asset | AssetAlias]:
    if value is not None and not isinstance(value, list | tuple):
        value = [value]  # Airflow accepts a single asset too
    try:
        return task_assets(value, name)
    except InvalidScheduleError as exc:
        check.fail(name, value, f"a list of Asset or AssetAlias objects ({exc})")
