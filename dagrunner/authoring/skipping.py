"""Which tasks a branch or a short-circuit skips: pure functions of the graph, shared by live and serialized DAGs.

The worker decides with the live DAG (`BranchPythonOperator.branches_to_skip`) and the scheduler can
decide the same from a `SerializedDag`; keeping the rule here, over a plain networkx graph, means the two
can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import networkx as nx

from dagrunner.errors import InvalidBranchError


def normalize_branch_choice(task_id: str, chosen: object) -> list[str]:
    """A branch callable may return a task id, a list (or tuple/set) of ids, or None (follow nothing)."""
    if chosen is None:
        return []
    if isinstance(chosen, str):
        return [chosen]
    if isinstance(chosen, list | tuple | set | frozenset) and all(isinstance(c, str) for c in chosen):
        return sorted(chosen) if isinstance(chosen, set | frozenset) else list(chosen)
    raise InvalidBranchError(
        f"branch task {task_id!r} returned {chosen!r}; it must return a task_id, a list of task_ids, or None"
    )


def branch_skip_ids(
    graph: nx.DiGraph,
    task_id: str,
    chosen: Iterable[str],
    group_roots: Mapping[str, Sequence[str]],
) -> set[str]:
    """The direct downstream tasks of `task_id` that the branch did not choose.

    A chosen group id stands for the group's roots. As in Airflow, a direct downstream task that is also
    downstream of a chosen task is followed, not skipped (the `branch -> join` edge next to
    `branch -> a -> join`). Every chosen id must be a direct downstream task (or group) of the branch.
    """
    downstream = set(graph.successors(task_id))
    followed: set[str] = set()
    for choice in chosen:
        targets = list(group_roots.get(choice, [choice]))
        wrong = [t for t in targets if t not in downstream]
        if wrong or not targets:
            raise InvalidBranchError(
                f"branch task {task_id!r} chose {choice!r}, which is not directly downstream of it; "
                f"choose among: {', '.join(sorted(downstream | _groups_of(downstream, group_roots))) or '(none)'}"
            )
        for target in targets:
            followed.add(target)
            followed |= nx.descendants(graph, target)
    return downstream - followed


def short_circuit_skip_ids(
    graph: nx.DiGraph, task_id: str, *, condition: bool, ignore_downstream_trigger_rules: bool
) -> set[str]:
    """Nothing when the condition holds; else every descendant, or only the direct downstream tasks
    when downstream trigger rules should decide the rest (ignore_downstream_trigger_rules=False)."""
    if condition:
        return set()
    if ignore_downstream_trigger_rules:
        return set(nx.descendants(graph, task_id))
    return set(graph.successors(task_id))


def _groups_of(downstream: set[str], group_roots: Mapping[str, Sequence[str]]) -> set[str]:
    return {group for group, roots in group_roots.items() if roots and set(roots) <= downstream}
