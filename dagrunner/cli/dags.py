"""`dagrunner dags ...`: what the DAG folder defines, its import errors, schedules, pausing."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.params import parse_date
from dagrunner.loading.serialization import SerializedDag


@click.group()
def dags() -> None:
    """List, inspect, pause and preview DAGs."""


@dags.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@pass_cli
def list_dags(cli: CliContext, as_json: bool) -> None:
    """Every DAG the folder defines: id, file, schedule, next run, paused, tags."""
    from dagrunner.persistence.queries import dag_rows

    bag = cli.dagbag
    now = datetime.now(timezone.utc)
    with cli.session() as session:
        paused = {row.dag_id: row.is_paused for row in dag_rows(session)}
    rows = []
    for dag_id, dag in sorted(bag.dags.items()):
        nxt = next_run_after(dag, now)
        rows.append(
            {
                "dag_id": dag_id,
                "file": _relative(cli, dag.fileloc),
                "schedule": dag.timetable_description,
                "next_run": nxt.isoformat() if nxt else None,
                "paused": bool(paused.get(dag_id, False)),
                "tags": list(dag.tags),
            }
        )
    if as_json:
        render.print_json(rows)
        return
    render.table(
        f"DAGs in {cli.settings.dags_folder}",
        ["dag_id", "file", "schedule", "next run", "paused", "tags"],
        [
            (r["dag_id"], r["file"], r["schedule"], r["next_run"], r["paused"], r["tags"])
            for r in rows
        ],
    )
    if bag.failures:
        render.err_console.print(
            f"{len({p for p, _ in bag.failures})} file(s) failed to import: see `dagrunner dags errors`"
        )


def next_run_after(dag: SerializedDag, now: datetime) -> datetime | None:
    """When the scheduler would next create a run of this DAG (its `run_after`), ignoring existing runs."""
    info = dag.timetable.next_dagrun_info(
        last=None, start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup, now=now
    )
    return info.run_after if info else None


@dags.command("errors")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@pass_cli
def errors(cli: CliContext, as_json: bool) -> None:
    """Files that failed to import, with the line and the reason. Exits 1 when there are any."""
    failures = cli.dagbag.failures
    rows = [
        {"file": path, "line": f.line, "kind": f.kind, "error": f.message} for path, f in failures
    ]
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.info("No import errors.")
    else:
        render.table(
            "Import errors",
            ["file", "line", "kind", "error"],
            [(_relative(cli, r["file"]), r["line"], r["kind"], r["error"]) for r in rows],
        )
    if rows:
        raise click.exceptions.Exit(1)


@dags.command("show")
@click.argument("dag_id")
@click.option("--dot", is_flag=True, help="Print the graph in Graphviz DOT instead of drawing it.")
@pass_cli
def show(cli: CliContext, dag_id: str, dot: bool) -> None:
    """Draw a DAG's task graph in the terminal, layer by layer (or print Graphviz DOT)."""
    from dagrunner.cli.graph import draw_layers, to_dot

    dag = cli.dagbag.get_dag(dag_id)
    if dot:
        click.echo(to_dot(dag))
    else:
        render.console.print(draw_layers(dag))


@dags.command("pause")
@click.argument("dag_id")
@pass_cli
def pause(cli: CliContext, dag_id: str) -> None:
    """Stop the scheduler from creating new runs of DAG_ID (running ones finish)."""
    _set_paused(cli, dag_id, True)


@dags.command("unpause")
@click.argument("dag_id")
@pass_cli
def unpause(cli: CliContext, dag_id: str) -> None:
    """Let the scheduler create runs of DAG_ID again."""
    _set_paused(cli, dag_id, False)


def _set_paused(cli: CliContext, dag_id: str, paused: bool) -> None:
    from dagrunner.persistence.audit import set_paused

    cli.dagbag.get_dag(dag_id)  # a clear error for an unknown id
    with cli.session() as session:
        changed = set_paused(session, dag_id, paused, actor=cli.actor)
    word = "paused" if paused else "unpaused"
    render.info(f"{dag_id} {word}" if changed else f"{dag_id} was already {word}")


@dags.command("next-runs")
@click.argument("dag_id")
@click.option("-n", "--num", "limit", type=click.IntRange(min=1), help="How many runs (default 10 without --to).")
@click.option("--from", "from_", metavar="DATE", help="Start here instead of the DAG's start_date.")
@click.option("--to", "to", metavar="DATE", help="Stop once a run's run_after is later than this.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs.")
@pass_cli
def next_runs(
    cli: CliContext, dag_id: str, limit: int | None, from_: str | None, to: str | None, as_json: bool
) -> None:
    """Preview the runs the scheduler would create with catchup, oldest first.

    Dates are read in the DAG's timezone. Rows whose day has a DST switch are flagged.
    """
    from dagrunner.timetables import is_dst_affected

    dag = cli.dagbag.get_dag(dag_id)
    after = parse_date(from_, dag.timezone, "--from") if from_ else None
    if after is None and dag.start_date is None:
        after = datetime.now(timezone.utc)  # no start_date: preview from now
    until = parse_date(to, dag.timezone, "--to") if to else None
    if limit is None and until is None:
        limit = 10
    runs = []
    for info in dag.timetable.iter_runs(start_date=dag.start_date, end_date=dag.end_date, after=after, until=until):
        if limit is not None and len(runs) >= limit:
            break
        runs.append(info)
    if as_json:
        render.print_json([_run_json(info) for info in runs])
        return
    tz = dag.timezone
    rows = []
    previous_offset = None
    for info in runs:
        offset = _offset(info.run_after, tz)
        if is_dst_affected(info, tz):
            note = "DST switch on this day"
        elif previous_offset is not None and offset != previous_offset:
            note = f"DST: UTC offset now {offset}"
        else:
            note = ""
        previous_offset = offset
        rows.append(
            (
                info.logical_date.isoformat(),
                _local(info.data_interval_start, tz),
                _local(info.data_interval_end, tz),
                _local(info.run_after, tz),
                note,
            )
        )
    render.table(
        f"Next runs of {dag_id} ({dag.timetable_description})",
        ["logical_date (UTC)", f"interval start ({tz})", f"interval end ({tz})", f"run_after ({tz})", "note"],
        rows,
    )
    if not runs:
        render.info("No runs in that range.")


def _run_json(info: Any) -> dict[str, str]:
    from dagrunner.timetables import make_run_id

    return {
        "run_id": make_run_id("scheduled", info.run_after),
        "logical_date": info.logical_date.isoformat(),
        "data_interval_start": info.data_interval_start.isoformat(),
        "data_interval_end": info.data_interval_end.isoformat(),
        "run_after": info.run_after.isoformat(),
    }


def _local(value: datetime, tz: str) -> str:
    import pendulum

    return pendulum.instance(value).in_timezone(tz).isoformat()


def _offset(value: datetime, tz: str) -> str:
    import pendulum

    return pendulum.instance(value).in_timezone(tz).strftime("%z")


def _relative(cli: CliContext, path: str) -> str:
    from pathlib import Path

    try:
        return str(Path(path).relative_to(cli.settings.dags_folder))
    except ValueError:
        return path
