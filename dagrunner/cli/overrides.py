"""`dagrunner tasks set-state` and `dagrunner runs set-state`: Airflow's mark success / failed, audited.

The rules are `scheduling.overrides`; these commands parse, show the plan, ask, apply, and render.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option

_REASON = click.option("--reason", required=True, help="Why, for the audit log (required).")
_AS = click.option("--as", "as_name", metavar="NAME", help="Who asked for it, when not you (recorded beside you).")
_YES = click.option("--yes", is_flag=True, help="Do not list the changes and ask for confirmation.")


def _actor(cli: CliContext, as_name: str | None) -> str:
    return f"{as_name} (via {cli.actor})" if as_name else cli.actor


def _confirm(lines: list[str], question: str) -> None:
    for line in lines[:50]:
        render.info(f"  {line}")
    if len(lines) > 50:
        render.info(f"  ... and {len(lines) - 50} more")
    click.confirm(question, abort=True)


@click.command("set-state")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id")
@click.argument("state", type=click.Choice(["success", "failed", "skipped"]))
@_REASON
@click.option("--downstream", is_flag=True, help="Also every task below it in the run (transitively).")
@click.option("--upstream", is_flag=True, help="Also every task above it in the run (transitively).")
@click.option("--map-index", type=int, help="Only this mapped instance (default: every instance of the task).")
@_AS
@_YES
@json_option("what changed")
@pass_cli
def set_task_state(
    cli: CliContext, dag_id: str, task_id: str, run_id: str, state: str, reason: str, downstream: bool,
    upstream: bool, map_index: int | None, as_name: str | None, yes: bool, as_json: bool,
) -> None:  # fmt: skip
    """Mark a task instance success, failed or skipped (Airflow's mark success/failed), audited with your
    name and --reason. A running try of it is stopped; marking success or skipped lets the failed
    instances below it run again, and a finished run is decided again."""
    from dagrunner.scheduling.overrides import apply_task_state, plan_task_state

    dag = cli.dagbag.get_dag(dag_id)
    with cli.session() as session:
        plan = plan_task_state(session, dag, run_id, task_id, state, map_index=map_index, downstream=downstream,
                               upstream=upstream)  # fmt: skip
        if not yes:
            _confirm(plan.lines(), f"Mark {len(plan.moves)} task instance(s) {state}?")
        apply_task_state(session, dag, plan, reason=reason, actor=_actor(cli, as_name), now=datetime.now(UTC))
    _report(plan.lines(), plan.to_json(), as_json)


@click.command("set-state")
@click.argument("dag_id")
@click.argument("run_id")
@click.argument("state", type=click.Choice(["success", "failed"]))
@_REASON
@_AS
@_YES
@json_option("what changed")
@pass_cli
def set_run_state(
    cli: CliContext, dag_id: str, run_id: str, state: str, reason: str, as_name: str | None, yes: bool, as_json: bool
) -> None:
    """Mark a run success or failed (Airflow's mark run success/failed), audited with --reason. success:
    every instance not success/skipped/removed becomes success; failed: running instances fail (their
    tries are stopped), other unfinished ones are skipped."""
    from dagrunner.scheduling.overrides import apply_run_state, plan_run_state

    with cli.session() as session:
        plan = plan_run_state(session, dag_id, run_id, state)
        if not yes:
            _confirm(plan.lines(), f"Mark run {run_id} {state}?")
        apply_run_state(session, plan, reason=reason, actor=_actor(cli, as_name), now=datetime.now(UTC))
    _report(plan.lines(), plan.to_json(), as_json)


def _report(lines: list[str], data: dict[str, object], as_json: bool) -> None:
    if as_json:
        render.print_json(data)
        return
    for line in lines:
        render.info(line)


def register(tasks: click.Group, runs: click.Group) -> None:
    """Attach the two commands to their groups (`tasks set-state`, `runs set-state`)."""
    tasks.add_command(set_task_state)
    runs.add_command(set_run_state)
