"""Where each task of a DAG goes in a drawing: its layer and its place in the layer.

The UI draws the graph from these numbers alone, so they must be the same on every poll: a layer is the
task's longest-path depth from the roots (every edge points to a later layer), and the place inside a layer
follows the average place of the task's upstream tasks, ties broken by the order the DAG file defines the
tasks in. That keeps a chain of tasks in one row and puts children near their parents, without any state
carried between requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagrunner.loading.serialization import SerializedDag


@dataclass(frozen=True)
class Layout:
    #: Task ids by layer, then by place inside the layer (an upstream-first order).
    order: tuple[str, ...]
    layer: dict[str, int]
    position: dict[str, int]
    #: task id -> its index in `order`.
    rank: dict[str, int]


def layout(dag: SerializedDag) -> Layout:
    defined = {spec.task_id: i for i, spec in enumerate(dag.tasks)}
    layer: dict[str, int] = {}
    for task_id in dag.topological_order:
        ups = list(dag.graph.predecessors(task_id))
        layer[task_id] = max((layer[u] + 1 for u in ups), default=0)
    layers: dict[int, list[str]] = {}
    for task_id in sorted(layer, key=defined.__getitem__):
        layers.setdefault(layer[task_id], []).append(task_id)
    position: dict[str, int] = {}
    for depth in sorted(layers):
        members = layers[depth]
        if depth > 0:
            members.sort(key=lambda t: (_barycenter(dag, t, position), defined[t]))
        for place, task_id in enumerate(members):
            position[task_id] = place
    order = tuple(task_id for depth in sorted(layers) for task_id in layers[depth])
    return Layout(order, layer, position, {task_id: i for i, task_id in enumerate(order)})


def _barycenter(dag: SerializedDag, task_id: str, position: dict[str, int]) -> float:
    ups = [position[u] for u in dag.graph.predecessors(task_id) if u in position]
    return sum(ups) / len(ups) if ups else 0.0
