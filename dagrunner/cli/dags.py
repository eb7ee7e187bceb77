"""`dagrunner dags ...`: what the DAG folder defines, its import errors, schedules, pausing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.cli.params import parse_date
from dagrunner.loading.serialization import SerializedDag
from dagrunner.timetables import DagRunInfo


@click.group()
def dags() -> None:
    """List, inspect, pause and preview DAGs."""


@dags.command("list")
@json_option("a list of DAGs")
@pass_cli
def list_dags(cli: CliContext, as_json: bool) -> None:
    """Every DAG the folder defines: id, file, schedule, next run (the one the scheduler creates next, after
    the runs that exist), paused, tags."""
    from dagrunner.persistence.views import paused_dags
    from dagrunner.scheduling.dagruns import next_run_after

    bag = cli.dagbag
    now = datetime.now(UTC)
    with cli.read_session() as session:
        paused = paused_dags(session)
        next_runs = next_run_after(session, bag.dags, now)
    rows = []
    for dag_id, dag in sorted(bag.dags.items()):
        nxt = next_runs.get(dag_id)
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
        [(r["dag_id"], r["file"], r["schedule"], r["next_run"], r["paused"], r["tags"]) for r in rows],
    )
    if bag.failures:
        render.err_console.print(
            f"{len({p for p, _ in bag.failures})} file(s) failed to import: see `dagrunner dags errors`"
        )


@dags.command("errors")
@click.option("-v", "--verbose", "verbose", is_flag=True,
              help="Also show each failure's traceback and what files printed while they were imported.")  # fmt: skip
@json_option('a list of import errors (with "output": what the import printed)')
@pass_cli
def errors(cli: CliContext, verbose: bool, as_json: bool) -> None:
    """Files that failed to import, with the line and the reason. Exits 1 when there are any."""
    bag = cli.dagbag
    failures = bag.failures
    rows = [
        {"file": path, "line": f.line, "kind": f.kind, "error": f.message, "output": bag.files[path].output}
        for path, f in failures
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
    if (verbose or cli.verbose) and not as_json:
        _print_import_details(cli, failures)
    if rows:
        raise click.exceptions.Exit(1)


def _print_import_details(cli: CliContext, failures: list[tuple[str, Any]]) -> None:
    """Each failure's traceback, then the output of every file that printed at import (failed or not):
    a DAG file's `print()` is often the clue its author left for exactly this moment."""
    for path, failure in failures:
        if failure.traceback:
            render.console.rule(f"{_relative(cli, path)}: traceback")
            click.echo(failure.traceback.rstrip("\n"))
    for path, parsed in sorted(cli.dagbag.files.items()):
        if parsed.output:
            render.console.rule(f"{_relative(cli, path)}: printed at import (last 64 KB)")
            click.echo(parsed.output.rstrip("\n"))


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
        changed = set_paused(session, dag_id, paused, actor=cli.actor, when=datetime.now(UTC))
    word = "paused" if paused else "unpaused"
    render.info(f"{dag_id} {word}" if changed else f"{dag_id} was already {word}")


@dags.command("next-runs")
@click.argument("dag_id")
@click.option("-n", "--num", "limit", type=click.IntRange(min=1), help="How many runs (default 10 without --to).")
@click.option("--from", "from_", metavar="DATE",
              help="Start at the first run whose logical date is at or after DATE (default: the first run to come).")  # fmt: skip
@click.option("--to", "to", metavar="DATE", help="Stop once a run's run_after is later than this.")
@json_option("a list of the runs to come")
@pass_cli
def next_runs(
    cli: CliContext, dag_id: str, limit: int | None, from_: str | None, to: str | None, as_json: bool
) -> None:
    """Preview the runs the schedule gives, oldest first: from now (runs whose run_after is still to come)
    unless --from says where to start.

    Dates are read in the DAG's timezone. Rows whose day has a DST switch are flagged.
    """
    from dagrunner.timetables import is_dst_affected

    dag = cli.dagbag.get_dag(dag_id)
    until = parse_date(to, dag.timezone, "--to") if to else None
    if limit is None and until is None:
        limit = 10
    if from_:
        after, later_than = parse_date(from_, dag.timezone, "--from"), None
    else:
        now = datetime.now(UTC)
        after, later_than = _latest_due(dag, now), now
    runs: list[DagRunInfo] = []
    for info in dag.timetable.iter_runs(start_date=dag.start_date, end_date=dag.end_date, after=after, until=until):
        if limit is not None and len(runs) >= limit:
            break
        if later_than is None or info.run_after > later_than:
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


def _latest_due(dag: SerializedDag, now: datetime) -> datetime:
    """Where a preview from `now` starts walking the schedule: the logical date of the latest run due by now
    (a data-interval run due later starts before now), else now; the walk then keeps runs due after now."""
    if dag.start_date is None or not dag.timetable.can_be_scheduled:
        return now
    info = dag.timetable.next_dagrun_info(
        last=None, start_date=dag.start_date, end_date=dag.end_date, catchup=False, now=now
    )
    return min(info.logical_date, now) if info else now


def _run_json(info: DagRunInfo) -> dict[str, str]:
    """A run the timetable would create (not a recorded run: that is `RunView.to_json`)."""
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


@dags.command("trigger")
@click.argument("dag_id")
@click.option("--conf", help="Run configuration, a JSON object: --conf '{\"full\": true}'.")
@click.option("--logical-date", metavar="DATE", help="The run's logical date (default: now), in the DAG's timezone.")
@click.option("--run-id", help="Run id (default manual__<logical date>); letters, digits and _.~:+- only.")
@json_option("the created run")
@pass_cli
def trigger(
    cli: CliContext, dag_id: str, conf: str | None, logical_date: str | None, run_id: str | None, as_json: bool
) -> None:
    """Create a manual run of DAG_ID for the scheduler to run (a paused DAG's run waits for unpause)."""
    from dagrunner.cli.params import parse_conf
    from dagrunner.persistence.views import RunView, is_paused
    from dagrunner.scheduling.operations import trigger_run

    dag = cli.dagbag.get_dag(dag_id)
    run_conf = parse_conf(conf)
    when = parse_date(logical_date, dag.timezone, "--logical-date") if logical_date else None
    now = datetime.now(UTC)
    with cli.session() as session:
        run = trigger_run(session, dag, actor=cli.actor, now=now, conf=run_conf, logical_date=when, run_id=run_id)
        created = RunView.of(run)
        paused = is_paused(session, dag_id)
    if as_json:
        render.print_json(created.to_json())
    else:
        render.info(f"created run {created.run_id} of {dag_id} (logical date {created.logical_date.isoformat()})")
        if paused:
            render.info(f"{dag_id} is paused: the run starts when you `dagrunner dags unpause {dag_id}`")


@dags.command("test")
@click.argument("dag_id")
@click.argument("logical_date", required=False)
@click.option("--conf", help="Run configuration, a JSON object.")
@click.option("--executor", type=click.Choice(["inline", "local"]), default="inline", show_default=True,
              help="inline runs tasks in this process (easy to debug); local uses worker processes.")  # fmt: skip
@json_option('the run with "tasks": {task: state}')
@pass_cli
def test(
    cli: CliContext, dag_id: str, logical_date: str | None, conf: str | None, executor: str, as_json: bool
) -> None:
    """Run one whole run of DAG_ID in the foreground and show each task's state. Exit 1 if it failed.

    The run is recorded in the database like any other (run type manual), so its logs, states and audit
    trail can be inspected afterwards. A running scheduler leaves it alone.
    """
    from dagrunner.cli.params import parse_conf
    from dagrunner.cli.testing import run_dag_test

    cli.override(executor=executor)
    dag = cli.dagbag.get_dag(dag_id)
    when = parse_date(logical_date, dag.timezone, "LOGICAL_DATE") if logical_date else None
    result = run_dag_test(cli, dag, logical_date=when, conf=parse_conf(conf), quiet=as_json)
    if as_json:
        render.print_json(result.to_json())
    else:
        render.info(f"{dag_id} {result.run.run_id}: {result.run.state}")
        render.table(None, ["task", "state"], [(ti.label, ti.state) for ti in result.tasks])
    if result.run.state != "success":
        raise click.exceptions.Exit(1)


@dags.command("check-airflow")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--rewrite", is_flag=True,
              help="Print FILE with its Airflow import lines replaced by dagrunner's (nothing else changed).")  # fmt: skip
@json_option('a list of the Airflow names ({"line", "airflow", "found", "dagrunner", "import"})')
def check_airflow(file: str, rewrite: bool, as_json: bool) -> None:
    """Report which Airflow imports and names in FILE dagrunner has, and the import line to use for each.

    FILE is read, never imported. Exit 1 when some name has no dagrunner equivalent yet (with --rewrite:
    the error names them, and nothing is printed).
    """
    from pathlib import Path

    from dagrunner.cli.airflow_check import check_source, rewrite_imports

    source = Path(file).read_text(encoding="utf-8")
    if rewrite:
        click.echo(rewrite_imports(source, file), nl=False)
        return
    findings = check_source(source, file)
    missing = [f for f in findings if not f.found]
    if as_json:
        render.print_json([f.to_json() for f in findings])
    else:
        rows = [(f.line, f.airflow, f.import_line() or (f.target_name or "") if f.found else "no equivalent yet")
                for f in findings]  # fmt: skip
        render.table(None, ["line", "airflow", "dagrunner"], rows)
        if not findings:
            render.info(f"{file}: no Airflow imports")
        else:
            render.info(f"{len(findings) - len(missing)} of {len(findings)} Airflow names have a dagrunner equivalent")
    if missing:
        raise click.exceptions.Exit(1)
