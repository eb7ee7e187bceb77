"""`dagrunner tasks ...`: the tasks of a DAG."""

from __future__ import annotations

import click
import networkx as nx
from rich.tree import Tree

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.loading.serialization import SerializedDag


@click.group()
def tasks() -> None:
    """List and inspect the tasks of a DAG."""


@tasks.command("list")
@click.argument("dag_id")
@click.option("--tree", is_flag=True, help="Show the dependency tree from each root task.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of tasks.")
@pass_cli
def list_tasks(cli: CliContext, dag_id: str, tree: bool, as_json: bool) -> None:
    """The tasks of DAG_ID in an order they can run in (or as a tree with --tree)."""
    dag = cli.dagbag.get_dag(dag_id)
    order = list(nx.topological_sort(dag.graph))
    if as_json:
        render.print_json(
            [
                {
                    "task_id": t,
                    "operator": dag.task(t).operator,
                    "upstream": sorted(dag.graph.predecessors(t)),
                    "downstream": sorted(dag.graph.successors(t)),
                    "trigger_rule": str(dag.task(t).trigger_rule),
                }
                for t in order
            ]
        )
    elif tree:
        render.console.print(dependency_tree(dag))
    else:
        for task_id in order:
            render.console.print(task_id)


def dependency_tree(dag: SerializedDag) -> Tree:
    """Each root with its downstream below it; a task reached twice is shown once, then referenced."""
    root = Tree(f"[bold]{dag.dag_id}[/]")
    seen: set[str] = set()

    def add(branch: Tree, task_id: str) -> None:
        label = f"{task_id} [dim]({dag.task(task_id).operator})[/]"
        if task_id in seen:
            branch.add(f"{label} [dim]↑ shown above[/]")
            return
        seen.add(task_id)
        node = branch.add(label)
        for child in sorted(dag.graph.successors(task_id)):
            add(node, child)

    for task_id in sorted(n for n in dag.graph if dag.graph.in_degree(n) == 0):
        add(root, task_id)
    return root
