"""Drawing a DAG's task graph: layered text for the terminal, Graphviz DOT for everything else."""

from __future__ import annotations

import networkx as nx
from rich.text import Text

from dagrunner.loading.serialization import SerializedDag


def draw_layers(dag: SerializedDag) -> Text:
    """One block per topological layer: each task with an arrow to its downstream tasks.

    Layers read top to bottom in the order the scheduler can run them; tasks in one layer can run in
    parallel. This stays readable for wide DAGs where box-and-line drawings fall apart.
    """
    graph = dag.graph
    out = Text()
    out.append(f"{dag.dag_id}", style="bold")
    out.append(f"  {len(graph)} tasks, {graph.number_of_edges()} edges, {dag.timetable_description}\n")
    for depth, layer in enumerate(nx.topological_generations(graph), start=1):
        out.append(f"layer {depth}\n", style="dim")
        for task_id in sorted(layer):
            out.append(f"  {task_id}", style="cyan")
            downstream = sorted(graph.successors(task_id))
            if downstream:
                out.append(" ──▶ " + ", ".join(downstream))
            out.append("\n")
    return out


def to_dot(dag: SerializedDag) -> str:
    lines = [f"digraph {_quote(dag.dag_id)} {{", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for task_id in nx.topological_sort(dag.graph):
        lines.append(f"  {_quote(task_id)};")
    for upstream, downstream in sorted(dag.graph.edges):
        lines.append(f"  {_quote(upstream)} -> {_quote(downstream)};")
    lines.append("}")
    return "\n".join(lines)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
