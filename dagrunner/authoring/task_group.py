"""TaskGroup: a named box of tasks that prefixes their ids and can be wired as one node.

A group is only a naming and wiring aid: the scheduler sees plain tasks with ids like `outer.inner.load`
and plain edges. `group >> task` wires the group's *current* leaves (tasks with no downstream inside the
group) and `task >> group` its current roots, exactly as in Airflow, so wire a group after filling it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from dagrunner.authoring import _context
from dagrunner.authoring.arguments import GROUP_ID_PATTERN, ArgChecker
from dagrunner.authoring.dependencies import DependencyMixin
from dagrunner.authoring.location import Location, user_location
from dagrunner.errors import InvalidArgumentError

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator
    from dagrunner.authoring.dag import DAG

P = ParamSpec("P")
R = TypeVar("R")


class TaskGroup(DependencyMixin):
    """`with TaskGroup("extract") as g:` — tasks defined inside get ids `extract.<task_id>`."""

    def __init__(
        self,
        group_id: str,
        prefix_group_id: bool = True,
        tooltip: str = "",
        default_args: dict[str, Any] | None = None,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        add_suffix_on_collision: bool = False,
    ) -> None:
        self.defined_at: Location = user_location()
        check = ArgChecker(f"TaskGroup {group_id!r}", self.defined_at)
        label = check.string("group_id", group_id, pattern=GROUP_ID_PATTERN, what="letters, digits, _ or -")
        dag = dag or (parent_group.dag if parent_group else None) or _context.current_dag()
        if dag is None:
            raise InvalidArgumentError(
                f"TaskGroup {group_id!r} at {self.defined_at} is not in a DAG: create it inside "
                "`with DAG(...)` or a @dag function, or pass dag="
            )
        parent = parent_group or _context.current_task_group(dag)
        if parent.dag is not dag:
            check.fail("parent_group", parent_group, f"a TaskGroup of DAG {dag.dag_id!r}")
        self.dag: DAG = dag
        self.parent_group: TaskGroup | None = parent
        self.prefix_group_id = check.boolean("prefix_group_id", prefix_group_id)
        self.tooltip = check.optional_string("tooltip", tooltip) or ""
        # A child group's default_args override its parent's, which override the DAG's (applied by the task).
        self.default_args: dict[str, Any] = {
            **parent.default_args,
            **check.mapping("default_args", default_args),
        }
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        if add_suffix_on_collision:
            label = _unique_label(label, parent, dag)
        self.label = label
        self.group_id: str | None = parent.child_id(label)
        dag.add_task_group(self)
        parent.children[self.group_id] = self

    @classmethod
    def create_root(cls, dag: DAG) -> TaskGroup:
        """The nameless group every DAG has; tasks outside any `with TaskGroup` belong to it."""
        root = cls.__new__(cls)
        root.defined_at = dag.defined_at
        root.dag = dag
        root.parent_group = None
        root.prefix_group_id = True
        root.tooltip = ""
        root.default_args = {}
        root.children = {}
        root.label = ""
        root.group_id = None
        return root

    # --- ids and members ------------------------------------------------------------------------

    @property
    def is_root(self) -> bool:
        return self.group_id is None

    def child_id(self, label: str) -> str:
        """The full id of a child called `label` (Airflow: no prefix when prefix_group_id is False)."""
        if self.prefix_group_id and self.group_id:
            return f"{self.group_id}.{label}"
        return label

    def iter_tasks(self) -> Iterator[BaseOperator]:
        """Every task in this group and its subgroups, in definition order."""
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child.iter_tasks()
            else:
                yield child

    def iter_groups(self) -> Iterator[TaskGroup]:
        """Every group nested in this one (not itself), depth first."""
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield child
                yield from child.iter_groups()

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks of the group with no upstream inside the group."""
        members = {task.task_id for task in self.iter_tasks()}
        return [t for t in self.iter_tasks() if not (t.upstream_task_ids & members)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks of the group with no downstream inside the group; a teardown there stands aside for the
        work above it (Airflow's rule: `group >> next` waits for the work, not for the cleanup)."""
        members = {task.task_id for task in self.iter_tasks()}
        found: dict[str, BaseOperator] = {}
        for task in self.iter_tasks():
            if not (task.downstream_task_ids & members):
                for leaf in [task] if not task.is_teardown else _work_above(task, members):
                    found.setdefault(leaf.task_id, leaf)
        return list(found.values())

    # --- wiring and context -------------------------------------------------------------------------

    def _edge_sources(self) -> list[BaseOperator]:
        return self.leaves

    def _edge_targets(self) -> list[BaseOperator]:
        return self.roots

    def __enter__(self) -> TaskGroup:
        _context.push_task_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _context.pop_task_group(self)

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"


def _work_above(teardown: BaseOperator, members: set[str]) -> list[BaseOperator]:
    """The work in the group just above `teardown`: its upstream tasks (through other teardowns) that are not
    its setups and have no other downstream in the group besides teardowns."""
    found = []
    for up in teardown.upstream_list:
        if up.task_id not in members or up.is_setup:
            continue
        if up.is_teardown:
            found += _work_above(up, members)
        elif all(d.is_teardown for d in up.downstream_list if d.task_id in members):
            found.append(up)
    return found


def _unique_label(label: str, parent: TaskGroup, dag: DAG) -> str:
    """`label`, or `label__N` with the next free N, when a group with that id exists (decorator reuse)."""
    if not dag.has_node_id(parent.child_id(label)):
        return label
    core = re.sub(r"__\d+$", "", label)
    pattern = re.compile(re.escape(parent.child_id(core)) + r"__(\d+)$")
    taken = [int(m.group(1)) for node_id in dag.node_ids() if (m := pattern.match(node_id))]
    return f"{core}__{max(taken, default=0) + 1}"


def task_group(python_callable: Callable[P, R] | None = None, **group_kwargs: Any) -> Any:
    """`@task_group` / `@task_group(group_id=..., default_args=...)`: calling the function builds a group.

    The group id defaults to the function name (suffixed `__1`, `__2` on reuse) and the tooltip to its
    docstring. Like Airflow, the call returns what the function returned (e.g. its last XComArg) when that
    is not None, else the group itself, so `start >> my_group() >> end` works either way.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, Any]:
        @wraps(fn)
        def build(*args: P.args, **kwargs: P.kwargs) -> Any:
            options = {"group_id": fn.__name__, **group_kwargs}
            if not options.get("tooltip") and fn.__doc__:
                options["tooltip"] = fn.__doc__.strip()
            with TaskGroup(add_suffix_on_collision=True, **options) as group:
                result = fn(*args, **kwargs)
            return group if result is None else result

        return build

    return decorate(python_callable) if python_callable is not None else decorate
