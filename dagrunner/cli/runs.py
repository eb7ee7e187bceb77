"""`dagrunner runs ...`: DAG runs recorded in the metadata DB."""

from __future__ import annotations

import click
from sqlalchemy import select

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.persistence.models import DagRun
from dagrunner.states import DagRunState


@click.group()
def runs() -> None:
    """Inspect DAG runs."""


@runs.command("list")
@click.argument("dag_id", required=False)
@click.option("--state", type=click.Choice([s.value for s in DagRunState]), help="Only runs in this state.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest runs first, at most this many."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_cli
def list_runs(cli: CliContext, dag_id: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """Runs of DAG_ID (or of every DAG), newest logical date first."""
    query = select(DagRun).order_by(DagRun.logical_date.desc(), DagRun.id.desc()).limit(limit)
    if dag_id:
        query = query.where(DagRun.dag_id == dag_id)
    if state:
        query = query.where(DagRun.state == DagRunState(state))
    with cli.read_session() as session:
        rows = [
            {
                "dag_id": r.dag_id,
                "run_id": r.run_id,
                "run_type": r.run_type.value,
                "state": r.state.value,
                "logical_date": r.logical_date.isoformat(),
                "start_date": r.start_date.isoformat() if r.start_date else None,
                "end_date": r.end_date.isoformat() if r.end_date else None,
                "duration_s": (r.end_date - r.start_date).total_seconds() if r.start_date and r.end_date else None,
            }
            for r in session.scalars(query)
        ]
    if as_json:
        render.print_json(rows)
        return
    render.table(
        "DAG runs",
        ["dag_id", "run_id", "type", "state", "logical_date", "started", "duration"],
        [
            (
                r["dag_id"],
                r["run_id"],
                r["run_type"],
                r["state"],
                r["logical_date"],
                r["start_date"],
                f"{r['duration_s']:.2f}s" if r["duration_s"] is not None else None,
            )  # fmt: skip
            for r in rows
        ],
    )
