"""Drawing a DAG's task graph: layered text for the terminal, Graphviz DOT for everything else.

Both show edge labels (`a >> Label("no rows") >> b`) and task groups: the text drawing puts a label after
the downstream task it names and lists the groups below the layers; DOT draws each group as a cluster.
"""

from __future__ import annotations

import networkx as nx
from rich.text import Text

from dagrunner.loading.serialization import SerializedDag, TaskGroupSpec


def draw_layers(dag: SerializedDag) -> Text:
    """One block per topological layer: each task with an arrow to its downstream tasks.

    Layers read top to bottom in the order the scheduler can run them; tasks in one layer can run in
    parallel. This stays readable for wide DAGs where box-and-line drawings fall apart.
    """
    graph = dag.graph
    labels = _labels(dag)
    out = Text()
    out.append(f"{dag.dag_id}", style="bold")
    if dag.dag_display_name:
        out.append(f" ({dag.dag_display_name})")
    out.append(f"  {len(graph)} tasks, {graph.number_of_edges()} edges, {dag.timetable_description}\n")
    for depth, layer in enumerate(nx.topological_generations(graph), start=1):
        out.append(f"layer {depth}\n", style="dim")
        for task_id in sorted(layer):
            out.append(f"  {task_id}", style="cyan")
            downstream = sorted(graph.successors(task_id))
            if downstream:
                out.append(" ──▶ ")
                for i, down in enumerate(downstream):
                    out.append(", " if i else "")
                    out.append(down)
                    if (task_id, down) in labels:
                        out.append(f" [{labels[(task_id, down)]}]", style="yellow")
            out.append("\n")
    groups = [g for g in dag.task_groups.iter_groups() if g.group_id is not None]
    if groups:
        out.append("task groups\n", style="dim")
        _draw_group_tree(dag.task_groups, out, depth=0)
    return out


def _draw_group_tree(group: TaskGroupSpec, out: Text, *, depth: int) -> None:
    for child in group.children:
        if isinstance(child, TaskGroupSpec):
            tasks = [c for c in child.children if isinstance(c, str)]
            out.append("  " * (depth + 1) + f"[{child.group_id}]", style="magenta")
            out.append(f" {', '.join(tasks)}\n" if tasks else "\n")
            _draw_group_tree(child, out, depth=depth + 1)


def to_dot(dag: SerializedDag) -> str:
    lines = [f"digraph {_quote(dag.dag_id)} {{", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    order = list(nx.topological_sort(dag.graph))
    lines += _dot_group(dag.task_groups, set(order), indent=1)
    labels = _labels(dag)
    for upstream, downstream in sorted(dag.graph.edges):
        label = labels.get((upstream, downstream))
        attrs = f" [label={_quote(label)}]" if label is not None else ""
        lines.append(f"  {_quote(upstream)} -> {_quote(downstream)}{attrs};")
    lines.append("}")
    return "\n".join(lines)


def _dot_group(group: TaskGroupSpec, tasks: set[str], *, indent: int) -> list[str]:
    """The nodes of `group`: its tasks, and each subgroup as a `cluster_` subgraph labelled with its id."""
    pad = "  " * indent
    lines: list[str] = []
    for child in group.children:
        if isinstance(child, str):
            if child in tasks:
                lines.append(f"{pad}{_quote(child)};")
        else:
            lines.append(f"{pad}subgraph {_quote('cluster_' + str(child.group_id))} {{")
            lines.append(f"{pad}  label={_quote(str(child.group_id))};")
            lines += _dot_group(child, tasks, indent=indent + 1)
            lines.append(f"{pad}}}")
    return lines


def _labels(dag: SerializedDag) -> dict[tuple[str, str], str]:
    return {(up, down): label for up, down, label in dag.edge_labels}


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
