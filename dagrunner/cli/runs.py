"""`dagrunner runs ...`: DAG runs recorded in the metadata DB."""

from __future__ import annotations

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.states import DagRunState


@click.group()
def runs() -> None:
    """Inspect DAG runs, and mark one success or failed by hand."""


@runs.command("list")
@click.argument("dag_id", required=False)
@click.option("--state", type=click.Choice([s.value for s in DagRunState]), help="Only runs in this state.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest runs first, at most this many."
)
@json_option("a list of runs")
@pass_cli
def list_runs(cli: CliContext, dag_id: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """Runs of DAG_ID (or of every DAG), newest logical date first."""
    from dagrunner.persistence.views import list_runs as query_runs

    with cli.read_session() as session:
        rows = query_runs(session, dag_id=dag_id, state=DagRunState(state) if state else None, limit=limit)
    if as_json:
        render.print_json([r.to_json() for r in rows])
        return
    render.table(
        "DAG runs",
        ["dag_id", "run_id", "type", "state", "logical_date", "started", "duration", "attention"],
        [
            (
                r.dag_id,
                r.run_id,
                r.run_type,
                r.state,
                r.logical_date.isoformat(),
                r.start_date,
                render.fmt_duration(r.duration_s),
                "NEEDS ATTENTION" if r.needs_attention else "",
            )
            for r in rows
        ],  # fmt: skip
    )
    for r in rows:  # say why, under the table: the reason is too long for a column
        if r.needs_attention:
            click.echo(f"{r.dag_id} {r.run_id} needs attention: {r.needs_attention_reason}")  # no rich markup
