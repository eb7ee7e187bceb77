"""`dagrunner assets list|events|emit`: the assets DAGs declare, their events, and sending one by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.cli.params import BadValue


@click.group("assets")
def assets() -> None:
    """Assets: data DAGs produce (outlets) and are scheduled on; their events; emit one by hand."""


@assets.command("list")
@json_option("the assets")
@pass_cli
def list_assets(cli: CliContext, as_json: bool) -> None:
    """Every asset and alias the DAG files declare: who consumes and produces it, watchers, last event."""
    from dagrunner.persistence.assets import list_assets as read

    cli.dagbag  # noqa: B018 - parses the DAG files, which registers their assets
    with cli.session() as session:
        views = read(session)
    if as_json:
        render.print_json([v.to_json() for v in views])
        return
    render.table(
        "Assets",
        ["name", "uri", "group", "consumers", "producers", "watchers", "events", "last event"],
        [
            (v.name if v.kind == "asset" else f"alias {v.name}", v.uri, v.group, ", ".join(v.consumers),
             ", ".join(v.producers), ", ".join(w["name"] for w in v.watchers), v.events, render.fmt_time(v.last_event))
            for v in views
        ],
    )  # fmt: skip


@assets.command("events")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many, newest first.")
@json_option("the events")
@pass_cli
def events(cli: CliContext, name: str | None, limit: int, as_json: bool) -> None:
    """The newest asset events (of NAME, an asset name or URI, when given)."""
    from dagrunner.persistence.assets import list_events

    with cli.session() as session:
        rows = list_events(session, name, limit=limit)
    if as_json:
        render.print_json([r.to_json() for r in rows])
        return
    render.table(
        "Asset events",
        ["id", "asset", "time", "extra", "source", "runs"],
        [(r.id, r.asset, render.fmt_time(r.timestamp), json.dumps(r.extra), _source(r.source), r.triggered_runs)
         for r in rows],
    )  # fmt: skip


@assets.command("emit")
@click.argument("name")
@click.option("--extra", help="The event's extra, a JSON object: --extra '{\"rows\": 42}'.")
@json_option("the event and the runs it created")
@pass_cli
def emit(cli: CliContext, name: str, extra: str | None, as_json: bool) -> None:
    """Record an event of asset NAME (name or URI) now, and create the asset-triggered runs it causes."""
    from dagrunner.execution.asset_events import record_asset_event

    data = _extra(extra)
    cli.dagbag  # noqa: B018 - parses the DAG files, which registers their assets
    with cli.session() as session:
        done = record_asset_event(
            session, name, extra=data, source={"kind": "cli"}, actor=cli.actor, when=datetime.now(UTC)
        )
    assert done is not None  # no dedupe key: always recorded
    if as_json:
        runs = [{"dag_id": d, "run_id": r} for d, r in done.created_runs]
        render.print_json({"id": done.id, "asset": done.asset, "created_runs": runs})
        return
    render.info(f"recorded event {done.id} of asset {done.asset}")
    for dag_id, run_id in done.created_runs:
        render.info(f"created run {run_id} of {dag_id}")
    if not done.created_runs:
        render.info("no run created (no consuming DAG's condition holds yet, or they are paused)")


def _extra(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise BadValue(
            "--extra", f"{value!r} is not JSON ({exc}); give an object: --extra '{{\"rows\": 42}}'"
        ) from None
    if not isinstance(data, dict):
        raise BadValue("--extra", f"{value!r} is not a JSON object; give one: --extra '{{\"rows\": 42}}'")
    return data


def _source(source: dict[str, Any]) -> str:
    if source.get("kind") == "task":
        return f"{source.get('dag_id')}.{source.get('task_id')} ({source.get('run_id')})"
    if source.get("kind") == "watcher":
        return f"watcher {source.get('watcher')}"
    return str(source.get("kind", ""))
