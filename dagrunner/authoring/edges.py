"""Edge labels: `a >> Label("no rows") >> b` names the edge a -> b (Airflow's `Label` / `EdgeModifier`).

A label stands between two operands of `>>` / `<<`; it remembers both sides and, once it has both, adds
the edges and records its text on each one (`DAG.set_edge_info`). Lists, XComArgs and TaskGroups work on
either side (a group's leaves or roots get the label, one edge each). `dagrunner dags show` draws the
labels; they change nothing about how the DAG runs, as in Airflow.
"""

from __future__ import annotations

from typing import Any

from dagrunner.authoring.dependencies import DependencyMixin, connect_labelled, operand_nodes
from dagrunner.authoring.location import user_location


class EdgeModifier(DependencyMixin):
    """Information for the edges between the operands on either side of it (today: a label)."""

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._upstream: list[DependencyMixin] = []
        self._downstream: list[DependencyMixin] = []

    def add_upstream(self, operand: Any) -> None:
        """`operand >> self`: connect it to every downstream operand already known."""
        nodes = operand_nodes(operand, user_location())
        self._upstream += nodes
        for down in self._downstream:
            connect_labelled(nodes, down, self.label)

    def add_downstream(self, operand: Any) -> None:
        """`self >> operand`: connect every upstream operand already known to it."""
        nodes = operand_nodes(operand, user_location())
        self._downstream += nodes
        for up in self._upstream:
            connect_labelled(up, nodes, self.label)

    def _edge_sources(self) -> list[Any]:
        raise TypeError("an edge label only stands between two operands of >> or <<")

    _edge_targets = _edge_sources

    def __repr__(self) -> str:
        return f"Label({self.label!r})"


def Label(label: str) -> EdgeModifier:  # noqa: N802 - Airflow's name: a factory that reads like a class
    """An edge label: `a >> Label("valid") >> b`."""
    if not isinstance(label, str):
        raise TypeError(f"Label() takes a string, got {label!r}")
    return EdgeModifier(label)
