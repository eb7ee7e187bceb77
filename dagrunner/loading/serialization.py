"""The serialized DAG: a frozen, typed, JSON-able read model of a DAG's structure and arguments.

The loader builds it in the child process that imported the DAG file (`serialize_dag`) and stores the
JSON; the scheduler reads it back (`SerializedDag.from_dict`) and plans, decides readiness and computes
priorities without ever importing user code. Only what the scheduler needs is here — callables become
`has_*_callback` flags, a mapped task's literal lists become their lengths.

Values that are not JSON: DAG and task `params` are checked when they are defined (an InvalidArgumentError
with the user's file:line) and checked again here in case they were changed afterwards. We raise rather
than fall back to `repr()`, because a param silently turned into a string would change its type in every
run. Datetimes are the one exception: they are stored as ISO strings, as Airflow does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx
import pendulum

from dagrunner.authoring import setup_teardown
from dagrunner.authoring.arguments import json_problem, to_json_value
from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.compensation import check_compensations
from dagrunner.authoring.dag import DAG
from dagrunner.authoring.params import form_schema, param_values
from dagrunner.authoring.priority import effective_priorities
from dagrunner.authoring.skipping import branch_skip_ids, normalize_branch_choice, short_circuit_skip_ids
from dagrunner.authoring.task_group import TaskGroup
from dagrunner.authoring.trigger_rule import TriggerRule, WeightRule
from dagrunner.authoring.xcom_arg import XComArg
from dagrunner.errors import InvalidArgumentError, LoadingError, TaskNotFoundError

if TYPE_CHECKING:
    from dagrunner.timetables import Timetable
    from dagrunner.timetables.assets import BaseAsset

FORMAT_VERSION = 1


@dataclass(frozen=True)
class MappedArgSpec:
    """One `.expand()` argument: a literal list (only its length matters) or an upstream task's XCom."""

    kind: Literal["literal", "xcom"]
    length: int | None = None
    task_id: str | None = None
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "literal":
            return {"kind": "literal", "length": self.length}
        return {"kind": "xcom", "task_id": self.task_id, "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MappedArgSpec:
        return cls(kind=data["kind"], length=data.get("length"), task_id=data.get("task_id"), key=data.get("key"))


@dataclass(frozen=True)
class TaskSpec:
    """Everything the scheduler knows about one task. Durations are seconds."""

    task_id: str
    operator: str
    module: str
    upstream_task_ids: tuple[str, ...]
    downstream_task_ids: tuple[str, ...]
    trigger_rule: TriggerRule
    retries: int
    retry_delay: float
    retry_exponential_backoff: float  # the base; 0 = off (1 also means a fixed delay)
    max_retry_delay: float | None
    execution_timeout: float | None
    depends_on_past: bool
    pool: str
    pool_slots: int
    priority_weight: int
    weight_rule: WeightRule
    priority: int  # effective weight from weight_rule
    queue: str
    template_fields: tuple[str, ...]
    task_group_id: str | None
    is_mapped: bool
    expand_input: Mapping[str, MappedArgSpec] | None
    is_branch: bool
    is_short_circuit: bool
    ignore_downstream_trigger_rules: bool
    multiple_outputs: bool
    do_xcom_push: bool
    has_on_success_callback: bool
    has_on_failure_callback: bool
    has_on_retry_callback: bool
    has_on_execute_callback: bool
    doc_md: str | None
    params: Mapping[str, Any]
    is_sensor: bool
    sensor_mode: str | None
    poke_interval: float | None
    sensor_timeout: float | None
    soft_fail: bool
    defined_at: str
    # Setup/teardown (authoring/setup_teardown.py); defaults so DAGs serialized before them still load.
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False
    #: The setups this task depends on: a teardown's own (directly upstream), another task's relevant ones.
    setup_task_ids: tuple[str, ...] = ()
    #: Saga compensation: the task that undoes this one, and the step this one undoes (an undo task gets an
    #: instance only when its run fails). Defaulted, so DAGs serialized before them still load.
    compensated_by: str | None = None
    compensates: str | None = None
    #: Assets (#12): the serialized Asset / AssetAlias dicts this task updates on success, and reads.
    outlets: tuple[Mapping[str, Any], ...] = ()
    inlets: tuple[Mapping[str, Any], ...] = ()
    #: An ExternalTaskMarker's target, templates unrendered: {"external_dag_id", "external_task_id",
    #: "logical_date", "recursion_depth"} (`tasks clear` follows it into the other DAG).
    external_marker: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        if self.expand_input is not None:
            data["expand_input"] = {name: spec.to_dict() for name, spec in self.expand_input.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSpec:
        values = _take(data, cls, f"task {data.get('task_id')!r}")
        for name in (
            "upstream_task_ids",
            "downstream_task_ids",
            "template_fields",
            "setup_task_ids",
            "outlets",
            "inlets",
        ):
            if name in values:
                values[name] = tuple(values[name])
        values["trigger_rule"] = TriggerRule(values["trigger_rule"])
        values["weight_rule"] = WeightRule(values["weight_rule"])
        if values["expand_input"] is not None:
            values["expand_input"] = {n: MappedArgSpec.from_dict(s) for n, s in values["expand_input"].items()}
        return cls(**values)


@dataclass(frozen=True)
class TaskGroupSpec:
    """A group and its children in definition order: task ids (str) and nested groups."""

    group_id: str | None
    tooltip: str
    children: tuple[str | TaskGroupSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "tooltip": self.tooltip,
            "children": [c if isinstance(c, str) else c.to_dict() for c in self.children],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskGroupSpec:
        children = tuple(c if isinstance(c, str) else cls.from_dict(c) for c in data["children"])
        return cls(group_id=data["group_id"], tooltip=data["tooltip"], children=children)

    def iter_groups(self) -> Iterator[TaskGroupSpec]:
        """This group and every group nested in it, depth first."""
        yield self
        for child in self.children:
            if isinstance(child, TaskGroupSpec):
                yield from child.iter_groups()

    def task_ids(self) -> list[str]:
        """Every task id in this group and its subgroups, in definition order."""
        ids: list[str] = []
        for child in self.children:
            ids.extend([child] if isinstance(child, str) else child.task_ids())
        return ids


@dataclass(frozen=True)
class SerializedDag:
    """A DAG as the scheduler sees it. Durations are seconds; dates are aware datetimes in `timezone`."""

    dag_id: str
    fileloc: str
    fileloc_line: int
    timetable_data: Mapping[str, Any]  # "timetable" in the dict form
    timetable_description: str
    timezone: str
    start_date: datetime | None
    end_date: datetime | None
    catchup: bool
    max_active_runs: int
    max_active_tasks: int
    dagrun_timeout: float | None
    tags: tuple[str, ...]
    params: Mapping[str, Any]
    description: str | None
    doc_md: str | None
    is_paused_upon_creation: bool | None
    has_on_success_callback: bool
    has_on_failure_callback: bool
    tasks: tuple[TaskSpec, ...]
    task_groups: TaskGroupSpec
    #: name -> the JSON Schema of each DAG param (`Param.schema()`, a plain value's is {"default": value}):
    #: the trigger form, and what a trigger's conf is checked against. Defaulted: DAGs stored before it load.
    param_schemas: Mapping[str, Any] = field(default_factory=dict)

    # --- conversions --------------------------------------------------------------------------------

    @classmethod
    def from_dag(cls, dag: DAG) -> SerializedDag:
        setup_teardown.check_dag(dag)
        if dag.timetable.kind == "custom":
            _require_custom_timetable(dag.timetable.serialize()["class"])
        setups_of = _setup_task_ids(dag)
        check_compensations(dag)
        weights = {t.task_id: t.priority_weight for t in dag.tasks}
        priorities = effective_priorities(dag.graph, weights, {t.task_id: t.weight_rule for t in dag.tasks})
        return cls(
            dag_id=dag.dag_id,
            fileloc=dag.fileloc,
            fileloc_line=dag.fileloc_line,
            timetable_data=dag.timetable.serialize(),
            timetable_description=dag.timetable.description,
            timezone=dag.timezone,
            start_date=dag.start_date,
            end_date=dag.end_date,
            catchup=dag.catchup,
            max_active_runs=dag.max_active_runs,
            max_active_tasks=dag.max_active_tasks,
            dagrun_timeout=_seconds(dag.dagrun_timeout),
            tags=tuple(dag.tags),
            params=_json_params(dag.params, f"DAG {dag.dag_id!r}"),
            description=dag.description,
            doc_md=dag.doc_md,
            is_paused_upon_creation=dag.is_paused_upon_creation,
            has_on_success_callback=bool(dag.on_success_callback),
            has_on_failure_callback=bool(dag.on_failure_callback),
            tasks=tuple(_task_spec(task, priorities[task.task_id], setups_of) for task in dag.tasks),
            task_groups=_group_spec(dag.task_group),
            param_schemas=to_json_value(form_schema(dag.params)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, keys in a fixed order (so equal DAGs give byte-equal JSON)."""
        data: dict[str, Any] = {"format_version": FORMAT_VERSION}
        for f in fields(self):
            key = "timetable" if f.name == "timetable_data" else f.name
            data[key] = _plain(getattr(self, f.name))
        data["tasks"] = [spec.to_dict() for spec in self.tasks]
        data["task_groups"] = self.task_groups.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SerializedDag:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise LoadingError(
                f"serialized DAG {data.get('dag_id')!r} has format version {version!r}, this dagrunner reads "
                f"{FORMAT_VERSION}; re-parse the DAG files (restart the scheduler or run `dagrunner dags list`)"
            )
        renamed = {("timetable_data" if key == "timetable" else key): value for key, value in data.items()}
        values = _take(renamed, cls, f"DAG {data.get('dag_id')!r}")
        zone = values["timezone"]
        for name in ("start_date", "end_date"):
            if values[name] is not None:
                values[name] = pendulum.instance(datetime.fromisoformat(values[name])).in_timezone(zone)
        values["tags"] = tuple(values["tags"])
        values["tasks"] = tuple(TaskSpec.from_dict(t) for t in values["tasks"])
        values["task_groups"] = TaskGroupSpec.from_dict(values["task_groups"])
        values["param_schemas"] = dict(values.get("param_schemas") or {})
        return cls(**values)

    # --- read views (computed once) -----------------------------------------------------------------

    @cached_property
    def task_dict(self) -> dict[str, TaskSpec]:
        return {spec.task_id: spec for spec in self.tasks}

    def task(self, task_id: str) -> TaskSpec:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFoundError(f"DAG {self.dag_id!r} has no task {task_id!r}") from None

    @cached_property
    def graph(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(spec.task_id for spec in self.tasks)
        graph.add_edges_from((up, spec.task_id) for spec in self.tasks for up in spec.upstream_task_ids)
        return graph

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        """Task ids upstream-first: the scheduler walks a run in this order so decisions cascade."""
        return tuple(nx.topological_sort(self.graph))

    @cached_property
    def compensation_task_ids(self) -> frozenset[str]:
        """The undo tasks (`compensate_with`): they get instances only when a run fails for good."""
        return frozenset(spec.task_id for spec in self.tasks if spec.compensates is not None)

    @property
    def run_tasks(self) -> tuple[TaskSpec, ...]:
        """The tasks a new run gets an instance of: every task but the undo tasks."""
        ids = self.compensation_task_ids
        return tuple(spec for spec in self.tasks if spec.task_id not in ids) if ids else self.tasks

    @property
    def roots(self) -> tuple[TaskSpec, ...]:
        return tuple(spec for spec in self.tasks if not spec.upstream_task_ids)

    @property
    def leaves(self) -> tuple[TaskSpec, ...]:
        return tuple(spec for spec in self.tasks if not spec.downstream_task_ids)

    @cached_property
    def outcome_leaf_ids(self) -> frozenset[str]:
        """The tasks whose states decide the run: the leaves, teardowns not counted (Airflow's rule)."""
        teardowns = {t.task_id for t in self.tasks if t.is_teardown}
        failing = {t.task_id for t in self.tasks if t.is_teardown and t.on_failure_fail_dagrun}
        return frozenset(setup_teardown.outcome_leaves(self.graph, teardowns, failing))

    @cached_property
    def timetable(self) -> Timetable:
        from dagrunner.timetables import deserialize_timetable

        if self.timetable_data.get("type") == "custom":  # written as in Airflow: its class comes from a plugin
            _require_custom_timetable(str(self.timetable_data.get("class")))
        return deserialize_timetable(dict(self.timetable_data))

    @property
    def asset_condition(self) -> BaseAsset | None:
        """The asset condition the DAG is scheduled on, or None when its schedule is not about assets."""
        from dagrunner.timetables.assets import AssetTriggeredTimetable

        timetable = self.timetable
        return timetable.condition if isinstance(timetable, AssetTriggeredTimetable) else None

    @cached_property
    def group_roots(self) -> dict[str, list[str]]:
        """Group id -> its roots (tasks with no upstream inside the group), for branch choices."""
        roots: dict[str, list[str]] = {}
        for group in self.task_groups.iter_groups():
            if group.group_id is not None:
                members = set(group.task_ids())
                roots[group.group_id] = [
                    t for t in group.task_ids() if not set(self.task(t).upstream_task_ids) & members
                ]
        return roots

    def branches_to_skip(self, task_id: str, chosen: object) -> set[str]:
        """Same rule as BranchPythonOperator.branches_to_skip, from the serialized graph."""
        ids = normalize_branch_choice(task_id, chosen)
        return branch_skip_ids(self.graph, task_id, ids, self.group_roots)

    def tasks_to_skip(self, task_id: str, condition: bool) -> set[str]:
        """Same rule as ShortCircuitOperator.tasks_to_skip, from the serialized graph."""
        spec = self.task(task_id)
        return short_circuit_skip_ids(
            self.graph,
            task_id,
            condition=condition,
            ignore_downstream_trigger_rules=spec.ignore_downstream_trigger_rules,
        )


def declared_assets(data: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(how, serialized asset or alias) for every asset and alias a serialized DAG dict names: how is
    "consumer" (its schedule), "producer:<task_id>" (an outlet) or "reader:<task_id>" (an inlet)."""

    def walk(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        if node.get("type") in ("any", "all"):
            for child in node.get("objects", []):
                yield from walk(child)
        else:
            yield node

    condition = (data.get("timetable") or {}).get("condition")
    if condition:
        for node in walk(condition):
            yield "consumer", node
    for spec in data.get("tasks", []):
        for node in spec.get("outlets", ()):
            yield f"producer:{spec['task_id']}", node
        for node in spec.get("inlets", ()):
            yield f"reader:{spec['task_id']}", node


def serialize_dag(dag: DAG) -> dict[str, Any]:
    """The JSON-able dict the loader stores for `dag`."""
    return SerializedDag.from_dag(dag).to_dict()


# --- building specs from live objects -----------------------------------------------------------------


def _task_spec(task: BaseOperator, priority: int, setups_of: Mapping[str, tuple[str, ...]]) -> TaskSpec:
    mapped = task.is_mapped
    klass: type[BaseOperator] = task.operator_class if mapped else type(task)  # type: ignore[attr-defined]

    def shared(name: str, default: Any = None) -> Any:
        """An argument of the concrete operator (for a mapped task: what every instance shares)."""
        return task.partial_value(name) if mapped else getattr(task, name, default)  # type: ignore[attr-defined]

    graph = task.dag.graph
    return TaskSpec(
        task_id=task.task_id,
        operator=klass.__name__,
        module=klass.__module__,
        upstream_task_ids=tuple(sorted(graph.predecessors(task.task_id))),
        downstream_task_ids=tuple(sorted(graph.successors(task.task_id))),
        trigger_rule=task.trigger_rule,
        retries=task.retries,
        retry_delay=task.retry_delay.total_seconds(),
        retry_exponential_backoff=task.retry_exponential_backoff,
        max_retry_delay=_seconds(task.max_retry_delay),
        execution_timeout=_seconds(task.execution_timeout),
        depends_on_past=task.depends_on_past,
        pool=task.pool,
        pool_slots=task.pool_slots,
        priority_weight=task.priority_weight,
        weight_rule=task.weight_rule,
        priority=priority,
        queue=task.queue,
        template_fields=tuple(klass.template_fields),
        task_group_id=task.task_group.group_id,
        is_mapped=mapped,
        expand_input=_expand_spec(task.expand_input) if mapped else None,  # type: ignore[attr-defined]
        is_branch=klass.is_branch,
        is_short_circuit=klass.is_short_circuit,
        ignore_downstream_trigger_rules=bool(klass.is_short_circuit and shared("ignore_downstream_trigger_rules")),
        multiple_outputs=bool(shared("multiple_outputs", False)),
        do_xcom_push=task.do_xcom_push,
        has_on_success_callback=bool(task.on_success_callback),
        has_on_failure_callback=bool(task.on_failure_callback),
        has_on_retry_callback=bool(task.on_retry_callback),
        has_on_execute_callback=bool(task.on_execute_callback),
        doc_md=task.doc_md,
        params=_json_params(task.params, f"task {task.task_id!r} of DAG {task.dag.dag_id!r}"),
        is_sensor=klass.is_sensor,
        sensor_mode=shared("mode") if klass.is_sensor else None,
        poke_interval=_seconds(shared("poke_interval")) if klass.is_sensor else None,
        sensor_timeout=_seconds(shared("timeout")) if klass.is_sensor else None,
        soft_fail=bool(shared("soft_fail", False)) if klass.is_sensor else False,
        defined_at=str(task.defined_at),
        is_setup=task.is_setup,
        is_teardown=task.is_teardown,
        on_failure_fail_dagrun=task.on_failure_fail_dagrun,
        setup_task_ids=setups_of.get(task.task_id, ()),
        compensated_by=task.compensated_by,
        compensates=task.compensates,
        outlets=tuple(asset.serialize() for asset in shared("outlets") or ()),
        inlets=tuple(asset.serialize() for asset in shared("inlets") or ()),
        external_marker=_external_marker(task),
    )


def _require_custom_timetable(path: str) -> None:
    """A custom timetable must be registered by a plugin (Airflow's rule): the scheduler rebuilds it by name."""
    from dagrunner.authoring._settings import get_settings
    from dagrunner.loading.plugins import require_timetable

    require_timetable(path, get_settings().plugins_folder)


def _external_marker(task: BaseOperator) -> dict[str, Any] | None:
    """An ExternalTaskMarker's target (its `marker_target()`), None for every other task."""
    target = getattr(task, "marker_target", None)
    return target() if callable(target) and not task.is_mapped else None


def _setup_task_ids(dag: DAG) -> dict[str, tuple[str, ...]]:
    """Task id -> the setups it depends on: a teardown's own, another task's relevant ones (none: absent)."""
    setups = {t.task_id for t in dag.tasks if t.is_setup}
    if not setups:
        return {}
    teardowns = {t.task_id for t in dag.tasks if t.is_teardown}
    found: dict[str, tuple[str, ...]] = {}
    for task_id in dag.task_dict:
        if task_id in teardowns:
            ids = setup_teardown.direct_setups(dag.graph, setups, task_id)
        else:
            ids = setup_teardown.relevant_setups(dag.graph, setups, teardowns, task_id)
        if ids:
            found[task_id] = tuple(ids)
    return found


def _expand_spec(expand_input: Mapping[str, Sequence[Any] | XComArg]) -> dict[str, MappedArgSpec]:
    specs: dict[str, MappedArgSpec] = {}
    for name, value in expand_input.items():
        if isinstance(value, XComArg):
            specs[name] = MappedArgSpec("xcom", task_id=value.operator.task_id, key=value.key)
        else:
            specs[name] = MappedArgSpec("literal", length=len(value))
    return specs


def _group_spec(group: TaskGroup) -> TaskGroupSpec:
    children = tuple(
        _group_spec(child) if isinstance(child, TaskGroup) else child.task_id for child in group.children.values()
    )
    return TaskGroupSpec(group_id=group.group_id, tooltip=group.tooltip, children=children)


# --- value helpers ----------------------------------------------------------------------------------


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _json_params(params: Mapping[str, Any], owner: str) -> dict[str, Any]:
    params = param_values(params)  # a Param's default (its schema is in `param_schemas`)
    for key, value in params.items():
        problem = json_problem(value)
        if problem is not None:
            raise InvalidArgumentError(
                f"{owner}: params[{key!r}]={value!r} cannot be serialized ({problem}); use JSON values "
                "(str, int, float, bool, None, lists, dicts with str keys) or datetimes"
            )
    converted: dict[str, Any] = to_json_value(dict(params))
    return converted


def _plain(value: Any) -> Any:
    """A field value in its JSON form."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, TriggerRule | WeightRule):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _take(data: Mapping[str, Any], cls: type, owner: str) -> dict[str, Any]:
    """The constructor arguments of dataclass `cls` from `data`; a missing key is a clear error, unless the
    field has a default (a field added later, which older stored DAGs lack)."""
    names = [f.name for f in fields(cls)]
    optional = {f.name for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}
    missing = [name for name in names if name not in data and name not in optional]
    if missing:
        raise LoadingError(f"serialized {owner} lacks {', '.join(missing)}; re-parse the DAG files")
    return {name: data[name] for name in names if name in data}
