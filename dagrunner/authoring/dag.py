"""DAG: the graph of tasks, its schedule and run-level settings; `@dag`; the registry of DAGs a file defines.

Everything is validated while the DAG file is imported, and each error names the user's `file:line`, so
`dagrunner dags errors` can point at the exact mistake. The graph is a `networkx.DiGraph` kept up to date
as tasks and edges are added; a cycle is refused by the `>>` that would close it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any

import networkx as nx
import pendulum

from dagrunner.authoring import _context
from dagrunner.authoring._settings import get_settings
from dagrunner.authoring.arguments import ID_PATTERN, ArgChecker
from dagrunner.authoring.location import Location, user_location
from dagrunner.authoring.task_group import TaskGroup
from dagrunner.authoring.templating import build_template_env
from dagrunner.authoring.xcom_arg import NOTSET, DagParam
from dagrunner.errors import (
    CycleError,
    DuplicateTaskIdError,
    InvalidArgumentError,
    InvalidScheduleError,
    InvalidTimezoneError,
    TaskNotFoundError,
)
from dagrunner.timetables import Timetable, make_timetable, timezone_name

if TYPE_CHECKING:
    import jinja2

    from dagrunner.authoring.baseoperator import BaseOperator

_COLLECTED: list[DAG] = []

#: Airflow 2 argument names a ported DAG may still use, and what replaced them.
_RENAMED = {
    "schedule_interval": "schedule",
    "timetable": "schedule",
    "concurrency": "max_active_tasks",
}

#: Airflow 3 DAG arguments that mean nothing here: accepted, announced once in the log, then dropped.
_IGNORED = {
    "access_control": "dagrunner's roles apply to the whole deployment, not per DAG",
    "auto_register": "every DAG a file defines is registered",
    "disable_bundle_versioning": "dagrunner has no DAG bundles",
}


def collected_dags() -> list[DAG]:
    """Every DAG constructed since the last `reset_collected_dags()`, in order (the loader's view of a file)."""
    return list(_COLLECTED)


def reset_collected_dags() -> None:
    _COLLECTED.clear()


class DAG:
    """A DAG definition; `with DAG(...) as dag:` makes it the DAG new tasks belong to."""

    def __init__(
        self,
        dag_id: str,
        *,
        schedule: Any = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        catchup: bool = False,
        default_args: dict[str, Any] | None = None,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        tags: Iterable[str] | None = None,
        params: dict[str, Any] | None = None,
        description: str | None = None,
        doc_md: str | None = None,
        dagrun_timeout: timedelta | float | None = None,
        is_paused_upon_creation: bool | None = None,
        on_success_callback: Callable[..., Any] | list[Callable[..., Any]] | None = None,
        on_failure_callback: Callable[..., Any] | list[Callable[..., Any]] | None = None,
        render_template_as_native_obj: bool = False,
        template_searchpath: str | Iterable[str] | None = None,
        user_defined_macros: dict[str, Any] | None = None,
        user_defined_filters: dict[str, Callable[..., Any]] | None = None,
        template_undefined: type[jinja2.Undefined] | None = None,
        jinja_environment_kwargs: dict[str, Any] | None = None,
        dag_display_name: str | None = None,
        owner_links: dict[str, str] | None = None,
        **unknown: Any,
    ) -> None:
        self.defined_at: Location = user_location()
        check = ArgChecker(f"DAG {dag_id!r}", self.defined_at)
        unknown = check.ignore(unknown, _IGNORED)
        if unknown:
            _reject_unknown(check, unknown)
        self.dag_id: str = check.string(
            "dag_id", dag_id, pattern=ID_PATTERN, what="1-250 characters: letters, digits, _ . or -"
        )
        self.default_args: dict[str, Any] = check.mapping("default_args", default_args)
        settings = get_settings()
        default_tz = _default_timezone(settings.default_timezone)
        # Airflow takes the DAG's dates from default_args when they are not given directly.
        if start_date is None:
            start_date = self.default_args.get("start_date")
        if end_date is None:
            end_date = self.default_args.get("end_date")
        self.start_date = _as_datetime(check, "start_date", start_date, default_tz)
        self.end_date = _as_datetime(check, "end_date", end_date, default_tz)
        if self.start_date and self.end_date and self.end_date < self.start_date:
            check.fail("end_date", end_date, f"a datetime at or after start_date ({self.start_date.isoformat()})")
        self.timezone: str = _timezone_of(check, self.start_date, settings.default_timezone)
        self.schedule = schedule
        self.timetable: Timetable = _build_timetable(
            check, schedule, self.timezone, settings.create_cron_data_intervals
        )
        self.catchup = check.boolean("catchup", catchup)
        self.max_active_runs = check.integer("max_active_runs", max_active_runs, minimum=1)
        self.max_active_tasks = check.integer("max_active_tasks", max_active_tasks, minimum=1)
        self.tags: list[str] = check.string_list("tags", tags)
        self.params: dict[str, Any] = check.params("params", params)
        self.description = check.optional_string("description", description)
        self.doc_md = check.optional_string("doc_md", doc_md)
        self.dagrun_timeout = check.optional_duration("dagrun_timeout", dagrun_timeout, positive=True)
        if is_paused_upon_creation is not None:
            check.boolean("is_paused_upon_creation", is_paused_upon_creation)
        self.is_paused_upon_creation = is_paused_upon_creation
        self.on_success_callback = check.callbacks("on_success_callback", on_success_callback)
        self.on_failure_callback = check.callbacks("on_failure_callback", on_failure_callback)
        self.render_template_as_native_obj = check.boolean(
            "render_template_as_native_obj", render_template_as_native_obj
        )
        if isinstance(template_searchpath, str):
            template_searchpath = [template_searchpath]
        self.template_searchpath: list[str] = check.string_list("template_searchpath", template_searchpath)
        self.user_defined_macros: dict[str, Any] = check.mapping("user_defined_macros", user_defined_macros)
        self.user_defined_filters: dict[str, Callable[..., Any]] = check.mapping(
            "user_defined_filters", user_defined_filters
        )
        for name, function in self.user_defined_filters.items():
            check.callable_(f"user_defined_filters[{name!r}]", function)
        if template_undefined is not None and not (
            isinstance(template_undefined, type) and issubclass(template_undefined, _jinja_undefined())
        ):
            check.fail("template_undefined", template_undefined, "a jinja2.Undefined class (e.g. jinja2.Undefined)")
        self.template_undefined = template_undefined
        self.jinja_environment_kwargs: dict[str, Any] = check.mapping(
            "jinja_environment_kwargs", jinja_environment_kwargs
        )
        self._dag_display_name = check.optional_string("dag_display_name", dag_display_name)
        #: Owner name -> a link (https:// or mailto:), as Airflow shows beside the owner; stored, not checked.
        self.owner_links: dict[str, str] = check.mapping("owner_links", owner_links)
        #: (upstream task id, downstream task id) -> edge info ({"label": ...}), set by `Label`.
        self.edge_info: dict[tuple[str, str], dict[str, Any]] = {}

        #: The file that defined the DAG (for `@dag`, where the function was called); the loader may
        #: overwrite it with the path it imported, which is the same file under its canonical name.
        self.fileloc: str = self.defined_at.filename
        self.fileloc_line: int = self.defined_at.lineno
        self.graph: nx.DiGraph = nx.DiGraph()
        self.task_dict: dict[str, BaseOperator] = {}
        self.task_group_dict: dict[str, TaskGroup] = {}
        self.task_group: TaskGroup = TaskGroup.create_root(self)
        self._template_env: jinja2.Environment | None = None
        _COLLECTED.append(self)

    # --- context ------------------------------------------------------------------------------------

    def __enter__(self) -> DAG:
        _context.push_dag(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _context.pop_dag(self)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    @property
    def dag_display_name(self) -> str:
        """The name people see: `dag_display_name` when given, else the dag_id (Airflow's rule)."""
        return self._dag_display_name or self.dag_id

    @property
    def owner(self) -> str:
        """The owners of the DAG's tasks, comma-separated, as Airflow computes `DAG.owner`."""
        return ", ".join(sorted({task.owner for task in self.tasks}))

    def set_edge_info(self, upstream_task_id: str, downstream_task_id: str, info: dict[str, Any]) -> None:
        """Attach `info` (e.g. {"label": "no rows"}) to an edge; `Label` calls this."""
        self.edge_info[(upstream_task_id, downstream_task_id)] = dict(info)

    def get_edge_info(self, upstream_task_id: str, downstream_task_id: str) -> dict[str, Any]:
        """The info attached to an edge ({} when none)."""
        return dict(self.edge_info.get((upstream_task_id, downstream_task_id), {}))

    # --- tasks and groups ---------------------------------------------------------------------------

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> BaseOperator:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFoundError(
                f"DAG {self.dag_id!r} has no task {task_id!r}; its tasks: {', '.join(self.task_dict) or '(none)'}"
            ) from None

    def has_node_id(self, node_id: str) -> bool:
        """True when a task or a group already uses `node_id` (they share one namespace)."""
        return node_id in self.task_dict or node_id in self.task_group_dict

    def node_ids(self) -> list[str]:
        return [*self.task_dict, *self.task_group_dict]

    def add_task(self, task: BaseOperator) -> None:
        """Register a constructed task (BaseOperator does this; users never need to)."""
        task_id = task.task_id
        if task_id in self.task_dict:
            first = self.task_dict[task_id]
            raise DuplicateTaskIdError(
                f"DAG {self.dag_id!r}: task_id {task_id!r} is defined twice: first at {first.defined_at}, "
                f"again at {task.defined_at}; give one of them a different task_id"
            )
        if task_id in self.task_group_dict:
            group = self.task_group_dict[task_id]
            raise DuplicateTaskIdError(
                f"DAG {self.dag_id!r}: task_id {task_id!r} at {task.defined_at} is already the id of the "
                f"TaskGroup defined at {group.defined_at}; rename one of them"
            )
        self.task_dict[task_id] = task
        self.graph.add_node(task_id)
        task.task_group.children[task_id] = task

    def add_task_group(self, group: TaskGroup) -> None:
        group_id = group.group_id
        assert group_id is not None, "the root group is not registered"
        if self.has_node_id(group_id):
            first = self.task_group_dict.get(group_id) or self.task_dict[group_id]
            raise DuplicateTaskIdError(
                f"DAG {self.dag_id!r}: group_id {group_id!r} is defined twice: first at {first.defined_at}, "
                f"again at {group.defined_at}; give one of them a different id"
            )
        self.task_group_dict[group_id] = group

    def add_edge(self, upstream: BaseOperator, downstream: BaseOperator, where: Location) -> None:
        """Add `upstream >> downstream`, refusing edges across DAGs and edges that close a cycle."""
        up, down = upstream.task_id, downstream.task_id
        if upstream.dag is not self or downstream.dag is not self:
            raise InvalidArgumentError(
                f"at {where}: cannot set {up!r} (DAG {upstream.dag.dag_id!r}) >> {down!r} "
                f"(DAG {downstream.dag.dag_id!r}); tasks of different DAGs cannot depend on each other"
            )
        if self.graph.has_edge(up, down):
            return
        # A cycle needs a path down -> up; there is none unless `down` has descendants and `up` ancestors.
        closes_cycle = up == down or (
            self.graph.out_degree(down) > 0 and self.graph.in_degree(up) > 0 and nx.has_path(self.graph, down, up)
        )
        if closes_cycle:
            path = [down] if up == down else nx.shortest_path(self.graph, down, up)
            raise CycleError(
                f"DAG {self.dag_id!r}: {up} >> {down} at {where} would create a cycle: {' -> '.join([*path, down])}"
            )
        self.graph.add_edge(up, down)

    # --- graph views --------------------------------------------------------------------------------

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks with no upstream, in definition order."""
        return [t for tid, t in self.task_dict.items() if self.graph.in_degree(tid) == 0]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks with no downstream, in definition order."""
        return [t for tid, t in self.task_dict.items() if self.graph.out_degree(tid) == 0]

    def topological_order(self) -> list[BaseOperator]:
        """Every task after all its upstream tasks; ties broken by definition order (stable output)."""
        order = {task_id: i for i, task_id in enumerate(self.task_dict)}
        ids = nx.lexicographical_topological_sort(self.graph, key=order.__getitem__)
        return [self.task_dict[task_id] for task_id in ids]

    # --- run-time helpers ---------------------------------------------------------------------------

    def param(self, name: str, default: Any = NOTSET) -> DagParam:
        """A reference to `params[name]` of a run (what `@dag` passes for each function parameter)."""
        return DagParam(name, default)

    def get_template_env(self) -> jinja2.Environment:
        """The Jinja environment templated fields of this DAG render with (built once)."""
        if self._template_env is None:
            self._template_env = build_template_env(
                native=self.render_template_as_native_obj,
                searchpath=[*self.template_searchpath, os.path.dirname(os.path.abspath(self.fileloc))],
                macros=self.user_defined_macros,
                filters=self.user_defined_filters,
                undefined=self.template_undefined,
                options=self.jinja_environment_kwargs,
            )
        return self._template_env


def _jinja_undefined() -> type:
    import jinja2

    return jinja2.Undefined


def _reject_unknown(check: ArgChecker, unknown: dict[str, Any]) -> None:
    for name in unknown:
        if name in _RENAMED:
            raise InvalidArgumentError(
                f"{check.subject} at {check.where}: {name}= is the Airflow 2 spelling; use {_RENAMED[name]}= instead"
            )
    check.unknown(unknown, inspect.signature(DAG.__init__).parameters.keys() - {"self", "unknown"} | set(_IGNORED))


def _default_timezone(name: str) -> pendulum.Timezone | pendulum.FixedTimezone:
    try:
        return pendulum.timezone(name)
    except Exception as exc:  # pendulum raises several types for a bad name
        raise InvalidTimezoneError(
            f"the default_timezone setting {name!r} is not a known timezone (e.g. UTC, Europe/Amsterdam)"
        ) from exc


def _as_datetime(
    check: ArgChecker, arg: str, value: Any, default_tz: pendulum.Timezone | pendulum.FixedTimezone
) -> pendulum.DateTime | None:
    """An aware pendulum DateTime; a naive datetime is read as wall time in the default timezone."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        check.fail(arg, value, "a datetime (e.g. pendulum.datetime(2026, 1, 1, tz='UTC')) or None")
    if value.tzinfo is None or value.utcoffset() is None:
        return pendulum.instance(value.replace(tzinfo=None), tz=default_tz)
    return pendulum.instance(value)


def _timezone_of(check: ArgChecker, start_date: datetime | None, default: str) -> str:
    """The DAG's timezone: the IANA name of start_date's zone, else the default_timezone setting."""
    if start_date is None:
        return default
    try:
        return timezone_name(start_date.tzinfo)
    except InvalidTimezoneError as exc:
        raise InvalidTimezoneError(f"{check.subject} at {check.where}: start_date: {exc}") from None


def _build_timetable(check: ArgChecker, schedule: Any, timezone: str, data_intervals: bool) -> Timetable:
    try:
        return make_timetable(schedule, timezone=timezone, create_cron_data_intervals=data_intervals)
    except (InvalidScheduleError, InvalidTimezoneError) as exc:
        raise type(exc)(f"{check.subject} at {check.where}: {exc}") from exc


def dag(dag_id: str | Callable[..., Any] | None = None, /, **dag_kwargs: Any) -> Any:
    """`@dag` / `@dag(schedule=..., ...)`: calling the decorated function builds and returns the DAG.

    As in Airflow, the dag_id defaults to the function name, the docstring becomes `doc_md`, and each
    function parameter becomes a DAG param (its default, or the value passed in the call); inside, the
    function receives `DagParam` references that resolve to the run's params at run time.
    """
    if callable(dag_id):
        return _dag_decorator(None, dag_kwargs)(dag_id)
    return _dag_decorator(dag_id, dag_kwargs)


def _dag_decorator(dag_id: str | None, dag_kwargs: dict[str, Any]) -> Callable[[Callable[..., Any]], Any]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., DAG]:
        signature = inspect.signature(fn)

        @wraps(fn)
        def build(*args: Any, **kwargs: Any) -> DAG:
            try:
                bound = signature.bind_partial(*args, **kwargs)
            except TypeError as exc:
                raise InvalidArgumentError(
                    f"@dag function {fn.__name__!r} called at {user_location()}: {exc}"
                ) from None
            bound.apply_defaults()
            params = dict(dag_kwargs.get("params") or {})
            for name, parameter in signature.parameters.items():
                if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                    continue
                if name in bound.arguments:
                    params[name] = bound.arguments[name]
                    bound.arguments[name] = DagParam(name, bound.arguments[name])
                else:
                    bound.arguments[name] = DagParam(name)
            options = {key: value for key, value in dag_kwargs.items() if key != "dag_id"}
            options["params"] = params
            if options.get("doc_md") is None and fn.__doc__:
                options["doc_md"] = inspect.cleandoc(fn.__doc__)
            the_dag = DAG(dag_kwargs.get("dag_id") or dag_id or fn.__name__, **options)
            with the_dag:
                fn(*bound.args, **bound.kwargs)
            return the_dag

        return build

    return decorate
