"""Edges between tasks: `>>` / `<<`, `set_upstream` / `set_downstream`, `chain`, `chain_linear`,
`cross_downstream` (and edge labels, `authoring/edges.py`, which stand between two operands).

Tasks, XComArgs and TaskGroups can all stand on either side of `>>`, alone or in lists. Each of them
says which tasks an edge *leaves from* when it is upstream (a group: its leaves) and which tasks an edge
*lands on* when it is downstream (a group: its roots); `connect` does the rest, so the wiring rules live
in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from dagrunner.authoring.location import Location, user_location
from dagrunner.errors import InvalidArgumentError

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator


class DependencyMixin:
    """Anything that can take part in `a >> b`: a task, an XComArg or a TaskGroup."""

    def _edge_sources(self) -> list[BaseOperator]:
        """The tasks an edge leaves from when `self` is upstream."""
        raise NotImplementedError

    def _edge_targets(self) -> list[BaseOperator]:
        """The tasks an edge lands on when `self` is downstream."""
        raise NotImplementedError

    def set_downstream(self, other: Operand) -> None:
        connect(self, other)

    def set_upstream(self, other: Operand) -> None:
        connect(other, self)

    def __rshift__(self, other: Any) -> Any:
        """`self >> other`: returns `other` so chains read left to right."""
        connect(self, other)
        return other

    def __lshift__(self, other: Any) -> Any:
        """`self << other`: `other` runs first; returns `other`."""
        connect(other, self)
        return other

    def __rrshift__(self, other: Any) -> Any:
        """`[a, b] >> self` (a list has no `>>` of its own)."""
        connect(other, self)
        return self

    def __rlshift__(self, other: Any) -> Any:
        """`[a, b] << self`."""
        connect(self, other)
        return self


Operand: TypeAlias = DependencyMixin | Sequence[DependencyMixin]


def operand_nodes(operand: Any, where: Location) -> list[DependencyMixin]:
    if isinstance(operand, DependencyMixin):
        return [operand]
    if isinstance(operand, list | tuple | set | frozenset) and all(
        isinstance(item, DependencyMixin) for item in operand
    ):
        return list(operand)
    raise InvalidArgumentError(
        f"at {where}: cannot set a dependency on {operand!r} ({type(operand).__name__}); "
        "expected a task, an XComArg, a TaskGroup, or a list of them"
    )


def connect(upstream: Any, downstream: Any) -> None:
    """Add an edge from every source of `upstream` to every target of `downstream`; an edge label
    (`authoring/edges.py`) on either side remembers the other side and connects across itself."""
    from dagrunner.authoring.edges import EdgeModifier

    if isinstance(downstream, EdgeModifier):
        downstream.add_upstream(upstream)
    elif isinstance(upstream, EdgeModifier):
        upstream.add_downstream(downstream)
    else:
        connect_labelled(upstream, downstream, None)


def connect_labelled(upstream: Any, downstream: Any, label: str | None) -> None:
    """`connect` for two plain operands, recording `label` on each edge when it is not None."""
    where = user_location()
    sources = [task for node in operand_nodes(upstream, where) for task in node._edge_sources()]
    targets = [task for node in operand_nodes(downstream, where) for task in node._edge_targets()]
    for source in sources:
        for target in targets:
            source.dag.add_edge(source, target, where)
            if label is not None:
                source.dag.set_edge_info(source.task_id, target.task_id, {"label": label})


def chain(*tasks: Operand) -> None:
    """`chain(a, [b, c], d)` = `a >> [b, c] >> d`; two adjacent lists are wired pairwise (Airflow's rule).

    Pairwise means `chain([a, b], [c, d])` gives `a >> c` and `b >> d`, so both lists must have the same
    length; use `cross_downstream` to wire every task of one list to every task of the other.
    """
    where = user_location()
    for up, down in zip(tasks, tasks[1:], strict=False):
        if isinstance(up, DependencyMixin) or isinstance(down, DependencyMixin):
            connect(up, down)
            continue
        ups, downs = operand_nodes(up, where), operand_nodes(down, where)
        if len(ups) != len(downs):
            raise InvalidArgumentError(
                f"chain() at {where}: adjacent lists must have the same length to be wired pairwise, "
                f"got {len(ups)} and {len(downs)}; use cross_downstream() to connect every pair"
            )
        for up_node, down_node in zip(ups, downs, strict=True):
            connect(up_node, down_node)


def cross_downstream(from_tasks: Sequence[DependencyMixin], to_tasks: Operand) -> None:
    """Make every task in `to_tasks` downstream of every task in `from_tasks`."""
    for task in operand_nodes(from_tasks, user_location()):
        connect(task, to_tasks)


def chain_linear(*elements: Operand) -> None:
    """`chain_linear(a, [b, c], [d, e, f], g)`: every task of each element upstream of every task of the
    next (Airflow's `chain_linear`; `chain` would wire two adjacent lists pairwise instead).

    As in Airflow, labels are refused here, and a call that sets no edge at all (fewer than two elements,
    usually a list passed without `*`) is an error rather than a silent no-op.
    """
    from dagrunner.authoring.edges import EdgeModifier

    where = user_location()
    if not elements:
        raise InvalidArgumentError(f"chain_linear() at {where}: no tasks given; nothing to do")
    previous: list[DependencyMixin] | None = None
    wired = False
    for element in elements:
        if isinstance(element, EdgeModifier):
            raise InvalidArgumentError(f"chain_linear() at {where}: labels are not supported; use >> Label(...) >>")
        nodes = operand_nodes(element, where)
        if previous is not None:
            for node in previous:
                connect(node, nodes)
                wired = True
        previous = nodes
    if not wired:
        raise InvalidArgumentError(
            f"chain_linear() at {where}: no dependencies were set; did you pass one list instead of "
            "chain_linear(*tasks)?"
        )
