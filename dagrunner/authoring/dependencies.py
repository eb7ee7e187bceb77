"""Edges between tasks: `>>` / `<<`, `set_upstream` / `set_downstream`, `chain`, `cross_downstream`.

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


def _nodes(operand: Any, where: Location) -> list[DependencyMixin]:
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
    """Add an edge from every source of `upstream` to every target of `downstream`."""
    where = user_location()
    sources = [task for node in _nodes(upstream, where) for task in node._edge_sources()]
    targets = [task for node in _nodes(downstream, where) for task in node._edge_targets()]
    for source in sources:
        for target in targets:
            source.dag.add_edge(source, target, where)


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
        ups, downs = _nodes(up, where), _nodes(down, where)
        if len(ups) != len(downs):
            raise InvalidArgumentError(
                f"chain() at {where}: adjacent lists must have the same length to be wired pairwise, "
                f"got {len(ups)} and {len(downs)}; use cross_downstream() to connect every pair"
            )
        for up_node, down_node in zip(ups, downs, strict=True):
            connect(up_node, down_node)


def cross_downstream(from_tasks: Sequence[DependencyMixin], to_tasks: Operand) -> None:
    """Make every task in `to_tasks` downstream of every task in `from_tasks`."""
    for task in _nodes(from_tasks, user_location()):
        connect(task, to_tasks)
