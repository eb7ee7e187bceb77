"""`dagrunner jobs list`: the processes that registered themselves in the metadata DB, and their heartbeats.

Schedulers, triggerers, backfills and `dags test` runs (and Celery workers) each hold a job row while they
run; another scheduler adopts the work of one whose heartbeat stopped (`scheduler_adopt_after_sec`).
"""

from __future__ import annotations

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.clock import SystemClock


@click.group()
def jobs() -> None:
    """Schedulers, triggerers, backfills and workers: who runs where, and whether they are alive."""


@jobs.command("list")
@click.option("--all", "include_all", is_flag=True, help="Also jobs that ended more than an hour ago.")
@json_option("the jobs")
@pass_cli
def list_jobs(cli: CliContext, include_all: bool, as_json: bool) -> None:
    """Running jobs and those ended in the last hour, newest first: type, host, pid, state, heartbeat age."""
    from dagrunner.persistence.views import job_views

    with cli.read_session() as session:
        rows = job_views(session, SystemClock().now(), include_all=include_all)
    if as_json:
        render.print_json([r.to_json() for r in rows])
        return
    render.table(
        "jobs",
        ["id", "type", "host", "pid", "state", "started", "last heartbeat", "age", "ended"],
        [
            (r.id, r.job_type, r.host, r.pid, r.state, r.started_at, r.latest_heartbeat,
             f"{r.heartbeat_age_s:g}s" if r.heartbeat_age_s is not None else None, r.ended_at)
            for r in rows
        ],
    )  # fmt: skip
