"""`dagrunner backfill`: re-process a date range in the foreground with live progress; resumable."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.cli.params import parse_conf, parse_date
from dagrunner.cli.scheduler import executor_option, parallelism_option

if TYPE_CHECKING:
    from dagrunner.loading.serialization import SerializedDag
    from dagrunner.persistence.views import RunView
    from dagrunner.scheduling.backfill import PlanRow

REFRESH_S = 0.25


@click.command()
@click.argument("dag_id")
@click.option(
    "-s",
    "--start-date",
    "start_date",
    required=True,
    metavar="DATE",
    help="First logical date (inclusive); a date or ISO datetime in the DAG's timezone.",
)
@click.option("-e", "--end-date", "end_date", required=True, metavar="DATE", help="Last logical date (inclusive).")
# The choices are scheduling.backfill.REPROCESS_BEHAVIOURS, spelled out so `--help` does not load scheduling.
@click.option(
    "--reprocess-behavior",
    type=click.Choice(["none", "failed", "completed"]),
    default="none",
    show_default=True,
    help="Dates that already have a run: leave them (none), re-run failed ones, "
    "or re-run every finished one. Queued or running runs are never touched.",
)
@click.option(
    "--max-active-runs", type=click.IntRange(min=1), help="Runs at once (default: the DAG's max_active_runs)."
)
@click.option("--run-backwards", is_flag=True, help="Newest date first (refused with depends_on_past).")
@click.option("--conf", help="Run configuration for every run, a JSON object.")
@click.option("--dry-run", is_flag=True, help="Print the plan (date, action, existing state) and change nothing.")
@json_option("the plan (with --dry-run) or a summary with every run")
@executor_option
@parallelism_option
@click.option(
    "--grace",
    "grace_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds running tries get to finish after Ctrl-C.",
)
@click.option("--yes", is_flag=True, help="Do not ask before re-running existing runs.")
@pass_cli
def backfill(
    cli: CliContext, dag_id: str, start_date: str, end_date: str, reprocess_behavior: str,
    max_active_runs: int | None, run_backwards: bool, conf: str | None, dry_run: bool, as_json: bool,
    executor: str | None, parallelism: int | None, grace_s: float, yes: bool,
) -> None:  # fmt: skip
    """Create (or re-run) the runs of DAG_ID for every logical date in [START, END] and run them here.

    Runs execute in this process's executor, oldest first, within --max-active-runs and depends_on_past.
    A running `dagrunner scheduler` never executes them. Ctrl-C stops starting new tries, gives running
    ones --grace seconds and records where it stopped; the same command again resumes: no run is created
    twice and tasks that succeeded are not run again. Exit code 1 if any run failed.
    """
    from dagrunner.persistence.views import runs_by_id
    from dagrunner.scheduling import backfill as bf

    cli.override(executor=executor, parallelism=parallelism)
    dag = cli.dagbag.get_dag(dag_id)
    start = parse_date(start_date, dag.timezone, "--start-date")
    end = parse_date(end_date, dag.timezone, "--end-date")
    if start > end:
        raise click.BadParameter(f"{start_date} is after {end_date}", param_hint="--start-date")
    bf.check_request(dag, run_backwards=run_backwards)
    run_conf = parse_conf(conf)
    reprocess = bf.as_reprocess(reprocess_behavior)
    with cli.read_session() as session:
        resuming = bf.find_resumable(session, dag_id, start, end, reprocess)
        rows = bf.plan(session, dag, start, end, reprocess=reprocess, run_backwards=run_backwards, resuming=resuming)
    if dry_run:
        _show_plan(rows, as_json, resuming_id=resuming.id if resuming else None)
        return
    todo = [r for r in rows if r.action in ("create", "rerun", "resume")]
    if not todo:
        _say(as_json, f"nothing to do: all {len(rows)} date(s) already have runs (see --reprocess-behavior)",
             {"state": "nothing_to_do", "dates": len(rows), "runs": []})  # fmt: skip
        return
    reruns = sum(r.action == "rerun" for r in rows)
    if reruns and not yes:
        click.confirm(f"Re-run {reruns} existing run(s) of {dag_id}?", abort=True)
    now = datetime.now(UTC)
    with cli.session() as session:
        record, run_ids = bf.start_backfill(
            session, dag, rows, start=start, end=end, reprocess=reprocess, max_active_runs=max_active_runs,
            run_backwards=run_backwards, conf=run_conf, actor=cli.actor, now=now, resuming=resuming,
        )  # fmt: skip
        backfill_id = record.id
    if resuming and not as_json:
        render.info(f"resuming backfill {backfill_id} of {dag_id}")
    interrupted = _execute(cli, dag, backfill_id, run_ids, max_active_runs, run_backwards, grace_s, as_json)
    with cli.session() as session:
        state = bf.finish_backfill(session, backfill_id, actor=cli.actor, now=datetime.now(UTC),
                                   interrupted=interrupted)  # fmt: skip
    with cli.read_session() as session:
        runs = runs_by_id(session, dag_id, run_ids)
    summary = _summary(dag_id, runs, backfill_id, "interrupted" if interrupted else state)
    _report(summary, as_json, cli.actor)
    if interrupted:
        raise click.exceptions.Exit(130)
    if summary["failed"]:
        raise click.exceptions.Exit(1)


def _execute(cli: CliContext, dag: SerializedDag, backfill_id: int, run_ids: list[str], max_active_runs: int | None,
             run_backwards: bool, grace_s: float, quiet: bool) -> bool:  # fmt: skip
    """Drive the backfill's runs with a private scheduler; True when it was interrupted."""
    from dagrunner.cli.scheduler import build_scheduler
    from dagrunner.persistence.models import JobType
    from dagrunner.scheduling.backfill import owner_of
    from dagrunner.scheduling.dag_source import FixedDagSource
    from dagrunner.scheduling.loop import StopOnSignals, StopWhen, run_loop
    from dagrunner.scheduling.scheduler import SchedulerOptions

    refs = frozenset((dag.dag_id, r) for r in run_ids)
    options = SchedulerOptions(
        create_runs=False, owner=owner_of(backfill_id), only_runs=set(refs), job_type=JobType.BACKFILL,
        max_active_runs=max_active_runs or dag.max_active_runs, newest_first=run_backwards,
    )  # fmt: skip
    sched = build_scheduler(cli, dag_source=FixedDagSource({dag.dag_id: dag}), options=options, on_event=None)
    display = None if quiet else BackfillDisplay(cli, dag.dag_id, backfill_id, len(run_ids))

    def on_signal(_name: str) -> None:
        if display is not None:
            display.note("stopping: no new tries; running ones get the grace period (Ctrl-C again to kill)")

    with StopOnSignals(sched, on_signal=on_signal):
        if display is None:
            run_loop(sched, StopWhen(runs_done=refs), grace_s=grace_s)
        else:
            with display:
                run_loop(sched, StopWhen(runs_done=refs), grace_s=grace_s, on_tick=lambda _: display.refresh())
                display.refresh(force=True)
    return sched.stopping


class BackfillDisplay:
    """The live view: a bar of runs done/total, task counts, the dates in flight, elapsed and ETA."""

    def __init__(self, cli: CliContext, dag_id: str, backfill_id: int, total: int) -> None:
        self.cli = cli
        self.backfill_id = backfill_id
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=render.console,
        )  # fmt: skip
        self.bar = self.progress.add_task(f"backfill {dag_id}", total=total)
        self.status = Text("starting...")
        self.message = Text("")
        self.live = Live(Group(self.progress, self.status, self.message), console=render.console, refresh_per_second=8)
        self._next = 0.0

    def __enter__(self) -> BackfillDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def note(self, message: str) -> None:
        self.message = Text(message, style="yellow")
        self._next = 0.0
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() < self._next:
            return
        self._next = time.monotonic() + REFRESH_S
        from dagrunner.persistence.views import backfill_progress

        with self.cli.read_session() as session:
            seen = backfill_progress(session, self.backfill_id)
        self.progress.update(self.bar, completed=seen.runs_done)
        counts = ", ".join(f"{n} {state}" for state, n in sorted(seen.task_counts.items())) or "no tasks yet"
        flight = ", ".join(d.strftime("%Y-%m-%d %H:%M") for d in seen.in_flight[:6])
        more = f" (+{len(seen.in_flight) - 6})" if len(seen.in_flight) > 6 else ""
        self.status = Text(f"tasks: {counts}\nin flight: {flight or '-'}{more}")
        self.live.update(Group(self.progress, self.status, self.message))


def _show_plan(rows: list[PlanRow], as_json: bool, resuming_id: int | None) -> None:
    if as_json:
        render.print_json({"resuming_backfill": resuming_id, "plan": [r.to_json() for r in rows]})
        return
    if resuming_id is not None:
        render.info(f"would resume backfill {resuming_id}")
    render.table(
        f"Backfill plan: {len(rows)} date(s), {sum(r.action in ('create', 'rerun', 'resume') for r in rows)} to run",
        ["logical_date", "action", "existing run", "state", "why"],
        [
            (
                r.info.logical_date.isoformat(),
                r.action,
                r.run_id if r.action != "create" else None,
                r.existing_state,
                r.why,
            )
            for r in rows
        ],  # fmt: skip
    )


def _summary(dag_id: str, runs: list[RunView], backfill_id: int, state: str) -> dict[str, Any]:
    """The JSON a backfill prints when it ends::

    {"backfill_id": int, "dag_id": str, "state": "success|failed|running|interrupted",
     "runs": [RunView.to_json(), ...], "succeeded": int, "failed": int, "unfinished": int}
    """
    return {
        "backfill_id": backfill_id,
        "dag_id": dag_id,
        "state": state,
        "runs": [r.to_json() for r in runs],
        "succeeded": sum(r.state == "success" for r in runs),
        "failed": sum(r.state == "failed" for r in runs),
        "unfinished": sum(r.state in ("queued", "running") for r in runs),
    }


def _report(summary: dict[str, Any], as_json: bool, actor: str) -> None:
    if as_json:
        render.print_json(summary)
        return
    render.table(
        f"Backfill {summary['backfill_id']} of {summary['dag_id']}: {summary['state']}",
        ["logical_date", "run_id", "state", "duration"],
        [
            (
                r["logical_date"],
                r["run_id"],
                r["state"],
                render.fmt_duration(r["duration_s"]),
            )
            for r in summary["runs"]
        ],  # fmt: skip
    )
    render.info(f"{summary['succeeded']} succeeded, {summary['failed']} failed, {summary['unfinished']} unfinished")
    if summary["state"] == "interrupted":
        command = actor.split(": ", 1)[-1]
        render.info(f"interrupted; run the same command again to resume: {command}")


def _say(as_json: bool, text: str, data: dict[str, Any]) -> None:
    if as_json:
        render.print_json(data)
    else:
        render.info(text)
