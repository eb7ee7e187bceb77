"""`dagrunner tasks ...`: the tasks of a DAG."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import click
import networkx as nx
from rich.tree import Tree

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.loading.serialization import SerializedDag


@click.group()
def tasks() -> None:
    """List, inspect, clear and mark the tasks of a DAG; answer the ones waiting for a person."""


@tasks.command("list")
@click.argument("dag_id")
@click.option("--tree", is_flag=True, help="Show the dependency tree from each root task.")
@json_option("a list of tasks")
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


def _live_dag(cli: CliContext, fileloc: str, dag_id: str) -> object:
    """Import the DAG file in this process: `tasks test` and `tasks render` run the user's code here."""
    from dagrunner.execution.dag_cache import DagCache

    cache = DagCache(
        dags_folder=cli.settings.dags_folder,
        plugins_folder=cli.settings.plugins_folder,
        import_timeout_s=cli.settings.dagbag_import_timeout,
    )
    return cache.get_dag(fileloc, dag_id)


@tasks.command("states")
@click.argument("dag_id")
@click.argument("run_id")
@json_option('{"task_id": "state", ...} (mapped: task_id[i])')
@pass_cli
def states(cli: CliContext, dag_id: str, run_id: str, as_json: bool) -> None:
    """The state of every task instance of one run."""
    from dagrunner.persistence.views import run_task_instances, task_states_json

    with cli.read_session() as session:
        tis = run_task_instances(session, dag_id, run_id)
    if as_json:
        render.print_json(task_states_json(tis))
        return
    render.table(
        f"{dag_id} {run_id}",
        ["task", "state", "tries", "started", "ended", "host"],
        [(ti.label, ti.state, ti.try_number, ti.start_date, ti.end_date, ti.hostname) for ti in tis],
    )


@tasks.command("logs")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id")
@click.option("--try", "try_number", type=click.IntRange(min=1), help="Which try (default: the latest).")
@click.option("--map-index", type=int, default=-1, show_default=True, help="Which mapped instance.")
@pass_cli
def logs(cli: CliContext, dag_id: str, task_id: str, run_id: str, try_number: int | None, map_index: int) -> None:
    """Print the log of one try of a task instance."""
    from dagrunner.errors import NotFoundError
    from dagrunner.persistence.views import latest_try

    with cli.read_session() as session:
        attempt = latest_try(session, dag_id, run_id, task_id, map_index, try_number)
    if attempt is None:
        dag = cli.dagbag.get_dag(dag_id)  # an unknown DAG (or task) says so, naming the known ones
        dag.task(task_id)
        which = f"try {try_number}" if try_number else "any try"
        raise NotFoundError(
            f"no {which} of {dag_id}.{task_id} in run {run_id}; `dagrunner tasks states {dag_id} {run_id}` "
            "shows what ran"
        )
    from dagrunner.execution.base import TaskKey
    from dagrunner.execution.logs import read_log

    key = TaskKey(dag_id, run_id, task_id, map_index)
    try:
        text = read_log(cli.settings.logs_folder, key, attempt.try_number)
    except NotFoundError:
        import socket

        if not attempt.hostname or attempt.hostname == socket.gethostname():
            raise
        from dagrunner.execution.celery.logserver import fetch_log  # a Celery worker on another host ran it

        text = fetch_log(attempt.hostname, cli.settings.worker_log_server_port, key, attempt.try_number)
    render.console.print(f"[dim]--- try {attempt.try_number}: {attempt.log_path}[/]", markup=True)
    click.echo(text, nl=not text.endswith("\n"))


@tasks.command("clear")
@click.argument("dag_id")
@click.option("-t", "--task-regex", help="Only tasks whose id matches this regular expression.")
@click.option("-s", "--start-date", metavar="DATE", help="Only runs with logical date on or after DATE.")
@click.option("-e", "--end-date", metavar="DATE", help="Only runs with logical date on or before DATE.")
@click.option("--only-failed", is_flag=True, help="Only failed and upstream_failed instances.")
@click.option("--downstream", is_flag=True, help="Also clear everything downstream of the matched tasks.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def clear(
    cli: CliContext,
    dag_id: str,
    task_regex: str | None,
    start_date: str | None,
    end_date: str | None,
    only_failed: bool,
    downstream: bool,
    yes: bool,
) -> None:
    """Clear task instances so the scheduler runs them again (audited). Queued/running ones are left alone.

    A cleared ExternalTaskMarker also clears the external task it names, and what is downstream of it."""
    from datetime import datetime

    from dagrunner.cli.params import parse_date, parse_regex
    from dagrunner.persistence.views import instance_label
    from dagrunner.scheduling.external_clear import follow_markers
    from dagrunner.scheduling.operations import clear as clear_tis
    from dagrunner.scheduling.operations import select_for_clear

    if task_regex is not None:
        parse_regex(task_regex, "-t/--task-regex")
    dag = cli.dagbag.get_dag(dag_id)
    start = parse_date(start_date, dag.timezone, "--start-date") if start_date else None
    end = parse_date(end_date, dag.timezone, "--end-date") if end_date else None
    with cli.session() as session:
        chosen = select_for_clear(
            session, dag, task_regex=task_regex, start=start, end=end, only_failed=only_failed, downstream=downstream
        )
        if not chosen:
            render.info("nothing to clear")
            return
        batches = [(dag, chosen), *follow_markers(session, dag, chosen, cli.dagbag.get_dag)]
        everything = [(d.dag_id, ti) for d, tis in batches for ti in tis]
        if not yes:
            for owner, ti in everything[:50]:
                where = "" if owner == dag_id else f"{owner} "
                render.info(f"  {where}{ti.run_id} {instance_label(ti.task_id, ti.map_index)} ({ti.state.value})")
            if len(everything) > 50:
                render.info(f"  ... and {len(everything) - 50} more")
            click.confirm(f"Clear these {len(everything)} task instance(s)?", abort=True)
        now = datetime.now(UTC)
        results = [clear_tis(session, d, tis, actor=cli.actor, now=now) for d, tis in batches]
    cleared = sum(len(r.cleared) for r in results)
    requeued = sum(len(r.runs_requeued) for r in results)
    render.info(f"cleared {cleared} task instance(s); {requeued} run(s) queued again")
    for result in results:
        for ti in result.left_running:
            render.info(
                f"  left alone (still {ti.state.value}): {ti.run_id} {instance_label(ti.task_id, ti.map_index)}"
            )


@tasks.command("why")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id")
@click.option("--map-index", type=int, default=-1, show_default=True)
@json_option("the state and the checks")
@pass_cli
def why(cli: CliContext, dag_id: str, task_id: str, run_id: str, map_index: int, as_json: bool) -> None:
    """Why a task instance is (not) running: each readiness rule, passed or blocked, with its reason."""
    from datetime import datetime

    from dagrunner.scheduling.operations import explain_instance

    dag = cli.dagbag.get_dag(dag_id)  # the task may be gone from it: explain_instance says so
    with cli.read_session() as session:
        why = explain_instance(session, dag, run_id, task_id, map_index, datetime.now(UTC))
    if as_json:
        render.print_json({"state": why.state.value, "checks": [c.__dict__ for c in why.checks]})
        return
    render.info(f"{dag_id}.{task_id} in {run_id} is {why.state.value}")
    render.table(
        None, ["rule", "", "reason"], [(c.rule, "passed" if c.passed else "BLOCKED", c.reason) for c in why.checks]
    )


@tasks.command("render")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date", required=False)
@click.option("--map-index", "map_index", type=click.IntRange(min=0), default=None,
              help="Which instance of a mapped task to render (default: every instance).")  # fmt: skip
@pass_cli
def render_cmd(cli: CliContext, dag_id: str, task_id: str, logical_date: str | None, map_index: int | None) -> None:
    """Show a task's templated fields rendered for LOGICAL_DATE (default: now), without running it.

    A mapped task is rendered once per instance; its XCom inputs come from the stored run at that date.
    """
    from datetime import datetime

    from dagrunner.cli.params import parse_date
    from dagrunner.execution.task_test import mapped_count, render_task

    dag = cli.dagbag.get_dag(dag_id)
    dag.task(task_id)
    when = parse_date(logical_date, dag.timezone, "LOGICAL_DATE") if logical_date else datetime.now(UTC)
    live: Any = _live_dag(cli, dag.fileloc, dag_id)
    if not live.get_task(task_id).is_mapped:
        if map_index is not None:
            raise click.UsageError(f"task {task_id!r} is not mapped: --map-index applies to mapped tasks only")
        indexes = [-1]
    else:
        indexes = [map_index] if map_index is not None else list(range(mapped_count(cli.settings, live, task_id, when)))
    for index in indexes:
        if index >= 0:
            render.console.rule(f"{task_id}, map_index {index}")
        for field, value in render_task(cli.settings, live, task_id, when, map_index=index).items():
            render.console.print(f"[bold]# {field}[/]", markup=True)
            click.echo(value if isinstance(value, str) else repr(value))


@tasks.command("test")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date", required=False)
@pass_cli
def test_cmd(cli: CliContext, dag_id: str, task_id: str, logical_date: str | None) -> None:
    """Run one task in this process and print its log; no run or state in the database changes."""
    from datetime import datetime

    from dagrunner.cli.params import parse_date
    from dagrunner.execution.task_test import test_task

    dag = cli.dagbag.get_dag(dag_id)
    dag.task(task_id)
    when = parse_date(logical_date, dag.timezone, "LOGICAL_DATE") if logical_date else datetime.now(UTC)
    live = _live_dag(cli, dag.fileloc, dag_id)
    state, log_text = test_task(cli.settings, live, task_id, when)
    click.echo(log_text, nl=not log_text.endswith("\n"))
    render.info(f"{dag_id}.{task_id}: {state}")
    if state not in ("success", "skipped"):
        raise click.exceptions.Exit(1)
