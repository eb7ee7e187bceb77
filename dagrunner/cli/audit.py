"""`dagrunner audit`: who changed what, when, and why: read straight from the append-only audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> datetime:
    """`30m`, `12h`, `1d`, `2w`, or an ISO date/datetime (UTC unless it carries an offset)."""
    from dagrunner.cli.params import BadValue

    match = re.fullmatch(r"(\d+)([smhdw])", value.strip())
    if match:
        try:
            return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except (OverflowError, ValueError):  # before year 1, or more digits than an int takes
            raise BadValue("--since", f"{_short(value)} reaches back before year 1; use a shorter span") from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadValue("--since", f"{_short(value)}: use 30m, 12h, 1d, 2w or an ISO date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


@click.command()
@click.option("--dag", "dag_id", help="Only this DAG.")
@click.option("--run", "run_id", help="Only this run.")
@click.option("--since", help="Only newer records: 30m, 12h, 1d, 2w or an ISO date.")
@click.option(
    "--event", help="Only this event (task.state), or every event it begins with when it ends in a dot (watcher.)."
)
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many (newest).")
@json_option("a list of audit records")
@pass_cli
def audit(
    cli: CliContext,
    dag_id: str | None,
    run_id: str | None,
    since: str | None,
    event: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit trail: every state change and event, oldest first."""
    from dagrunner.persistence.views import audit_trail

    since_dt = parse_since(since) if since else None
    with cli.read_session() as session:
        rows = audit_trail(session, dag_id=dag_id, run_id=run_id, since=since_dt, limit=limit, event=event)
    if as_json:
        render.print_json([r.to_json() for r in rows])
        return
    render.table(
        "Audit log (oldest first)",
        ["when (UTC)", "actor", "event", "dag", "run", "task", "try", "change", "why"],
        [
            (
                r.ts.isoformat()[:23].replace("T", " "),
                r.actor,
                r.event,
                r.dag_id,
                r.run_id,
                r.task_label,
                r.try_number,
                f"{r.old_state or '-'} -> {r.new_state}" if r.new_state else None,
                r.reason,
            )
            for r in rows
        ],
    )
