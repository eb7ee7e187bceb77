"""Setup and teardown tasks, with Airflow's names and rules.

A *setup* creates a resource (a cluster, a temp table), the *work* uses it, a *teardown* removes it:

    create.as_setup() >> query >> delete.as_teardown(setups=create)

- `as_setup()` marks a task; `as_teardown(setups=...)` marks a task, adds `setup >> teardown` for every
  setup named, and gives it the trigger rule `all_done_setup_success`: it runs once everything upstream is
  done, even if the work failed, as long as one of its setups succeeded (all setups skipped: skipped; none
  succeeded: upstream_failed).
- A task between a setup and its teardown (Airflow's "relevant setups") only runs when its setups
  succeeded, whatever its own trigger rule says.
- Teardowns do not decide the run's state, unless `on_failure_fail_dagrun=True`.
- Clearing a task also clears its relevant setups and their teardowns; clearing a setup also clears its
  teardowns.
- `@setup` / `@teardown` wrap TaskFlow functions; `with delete.as_teardown(setups=create): ...` puts every
  task defined in the block between the setups and the teardown.

This module holds the marking, the checks a DAG file gets at import, and the graph questions (which
setups a task works within, which tasks decide the run, what a clear pulls in) as functions of a graph
and the setup/teardown id sets, so the live DAG and the scheduler's serialized DAG answer them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

import networkx as nx

from dagrunner.authoring.location import user_location
from dagrunner.authoring.trigger_rule import TriggerRule
from dagrunner.authoring.xcom_arg import XComArg
from dagrunner.errors import SetupTeardownError

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator
    from dagrunner.authoring.dag import DAG
    from dagrunner.authoring.taskflow import TaskFunction

# --- marking ----------------------------------------------------------------------------------------


def mark_setup(task: BaseOperator) -> None:
    if task.is_teardown:
        raise SetupTeardownError(
            f"DAG {task.dag.dag_id!r}: task {task.task_id!r} (defined at {task.defined_at}) is already a "
            f"teardown and cannot also be a setup (at {user_location()}); use two tasks"
        )
    task.is_setup = True


def mark_teardown(task: BaseOperator, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> None:
    """Mark `task` a teardown of `setups` (a task, an XComArg, or a list of them; they become setups)."""
    where = user_location()
    if task.is_setup:
        raise SetupTeardownError(
            f"DAG {task.dag.dag_id!r}: task {task.task_id!r} (defined at {task.defined_at}) is already a "
            f"setup and cannot also be a teardown (at {where}); use two tasks"
        )
    setup_tasks = _as_tasks(task, setups, where)
    if on_failure_fail_dagrun is not None:
        if not isinstance(on_failure_fail_dagrun, bool):
            raise SetupTeardownError(
                f"DAG {task.dag.dag_id!r}: teardown {task.task_id!r} at {where}: "
                f"on_failure_fail_dagrun={on_failure_fail_dagrun!r} is invalid; expected True or False"
            )
        task.on_failure_fail_dagrun = on_failure_fail_dagrun
    task.is_teardown = True
    task.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
    for setup in setup_tasks:
        mark_setup(setup)
        task.dag.add_edge(setup, task, where)


def _as_tasks(teardown: BaseOperator, setups: Any, where: object) -> list[BaseOperator]:
    from dagrunner.authoring.baseoperator import BaseOperator

    if setups is None:
        return []
    items = list(setups) if isinstance(setups, list | tuple | set | frozenset) else [setups]
    tasks: list[BaseOperator] = []
    for item in items:
        task = item.operator if isinstance(item, XComArg) else item
        if not isinstance(task, BaseOperator):
            raise SetupTeardownError(
                f"DAG {teardown.dag.dag_id!r}: teardown {teardown.task_id!r} at {where}: setups={item!r} is "
                "invalid; expected a task, a TaskFlow task's output, or a list of them"
            )
        if task.dag is not teardown.dag:
            raise SetupTeardownError(
                f"DAG {teardown.dag.dag_id!r}: teardown {teardown.task_id!r} at {where}: setups= names task "
                f"{task.task_id!r} of DAG {task.dag.dag_id!r}; a setup must be a task of the same DAG"
            )
        tasks.append(task)
    return tasks


# --- decorators -------------------------------------------------------------------------------------


def setup(python_callable: Callable[..., Any]) -> TaskFunction:
    """`@setup`: a TaskFlow task marked as a setup (also on top of `@task(...)` / `@task.bash`)."""
    return _task_function(python_callable).with_marker(mark_setup)


def teardown(python_callable: Callable[..., Any] | None = None, *, on_failure_fail_dagrun: bool = False) -> Any:
    """`@teardown` / `@teardown(on_failure_fail_dagrun=True)`: a TaskFlow task marked as a teardown.

    Its setups are the setup tasks wired directly upstream of it, e.g. `delete(create())` or `create >> delete`.
    """

    def decorate(function: Callable[..., Any]) -> TaskFunction:
        def mark(task: BaseOperator) -> None:
            mark_teardown(task, on_failure_fail_dagrun=on_failure_fail_dagrun)

        return _task_function(function).with_marker(mark)

    return decorate(python_callable) if python_callable is not None else decorate


def _task_function(function: Callable[..., Any]) -> TaskFunction:
    from dagrunner.authoring.taskflow import TaskFunction, task

    return function if isinstance(function, TaskFunction) else task(function)


# --- `with teardown.as_teardown(setups=...):` ----------------------------------------------------------


def enter_scope(task: BaseOperator) -> None:
    """Remember which tasks exist, so `exit_scope` can wire the ones the block defines."""
    if not task.is_teardown:
        raise SetupTeardownError(
            f"DAG {task.dag.dag_id!r}: `with` on task {task.task_id!r} at {user_location()}: only a teardown "
            "opens a setup/teardown block; write `with teardown_task.as_teardown(setups=setup_task):`"
        )
    task._scopes.append(set(task.dag.task_dict))


def exit_scope(task: BaseOperator, *, wire: bool) -> None:
    """Wire the block's roots below the teardown's setups and its leaves above the teardown (not after an
    exception: the DAG file fails to import anyway, with that exception)."""
    before = task._scopes.pop()
    if not wire:
        return
    dag = task.dag
    inside = [t for task_id, t in dag.task_dict.items() if task_id not in before and t is not task]
    ids = {t.task_id for t in inside}
    setups = [dag.task_dict[s] for s in direct_setups(dag.graph, _setup_ids(dag), task.task_id)]
    where = user_location()
    for member in inside:
        if not member.upstream_task_ids & ids:
            for setup_task in setups:
                dag.add_edge(setup_task, member, where)
        if not member.downstream_task_ids & ids:
            dag.add_edge(member, task, where)


# --- checks at import ---------------------------------------------------------------------------------


def check_dag(dag: DAG) -> None:
    """Refuse what cannot work, naming the task: a teardown with no setup directly upstream."""
    setups = _setup_ids(dag)
    for task in dag.tasks:
        if task.is_teardown and not direct_setups(dag.graph, setups, task.task_id):
            raise SetupTeardownError(
                f"DAG {dag.dag_id!r}: teardown {task.task_id!r} (defined at {task.defined_at}) has no setup "
                "task directly upstream, so nothing says what it tears down; name it: "
                f".as_teardown(setups=create_task), or create_task >> {task.task_id}"
            )


def _setup_ids(dag: DAG) -> set[str]:
    return {t.task_id for t in dag.tasks if t.is_setup}


# --- graph questions (live and serialized DAGs alike) --------------------------------------------------


def direct_setups(graph: nx.DiGraph, setups: Collection[str], task_id: str) -> list[str]:
    """The setups wired directly upstream of `task_id`: a teardown's own setups."""
    return sorted(up for up in graph.predecessors(task_id) if up in setups)


def relevant_setups(graph: nx.DiGraph, setups: Collection[str], teardowns: Collection[str], task_id: str) -> list[str]:
    """The setups `task_id` works within (Airflow's rule): upstream setups that have no teardown, or a
    teardown downstream of the task."""
    ancestors = [a for a in nx.ancestors(graph, task_id) if a in setups]
    if not ancestors:
        return []
    below = nx.descendants(graph, task_id)
    relevant = []
    for setup_id in ancestors:
        own = _teardowns_of(graph, teardowns, setup_id)
        if not own or not own.isdisjoint(below):
            relevant.append(setup_id)
    return sorted(relevant)


def outcome_leaves(graph: nx.DiGraph, teardowns: Collection[str], failing_teardowns: Collection[str]) -> list[str]:
    """The tasks whose states decide the run: the leaves once teardowns are left out (a task whose only
    downstream are teardowns is a leaf), plus the teardowns with `on_failure_fail_dagrun`.

    Airflow counts such a teardown *instead of* the work above it, so there a failed work under a flagged
    teardown that succeeded gives a successful run; here the flag only adds a way to fail, never hides one.
    """
    leaves = [t for t in graph.nodes if t not in teardowns and all(d in teardowns for d in graph.successors(t))]
    leaves += [t for t in graph.nodes if t in failing_teardowns]
    return leaves or [t for t in graph.nodes if graph.out_degree(t) == 0]  # a DAG of teardowns only


def with_setups_and_teardowns(
    graph: nx.DiGraph, setups: Collection[str], teardowns: Collection[str], task_ids: Iterable[str]
) -> set[str]:
    """`task_ids` plus what clearing them also clears: their relevant setups and those setups' teardowns,
    and the teardowns of any setup among them."""
    result = set(task_ids)
    for task_id in list(result):
        for setup_id in relevant_setups(graph, setups, teardowns, task_id):
            result.add(setup_id)
            result |= _teardowns_of(graph, teardowns, setup_id)
        if task_id in setups:
            result |= _teardowns_of(graph, teardowns, task_id)
    return result


def _teardowns_of(graph: nx.DiGraph, teardowns: Collection[str], setup_id: str) -> set[str]:
    return {d for d in graph.successors(setup_id) if d in teardowns}
