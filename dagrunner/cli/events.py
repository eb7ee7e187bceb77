"""`dagrunner events ...`: events in and out; `events dead-letters` for broker messages that could not be used."""

from __future__ import annotations

import base64
from typing import Any

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.cli.outbox import outbox
from dagrunner.clock import SystemClock


@click.group()
def events() -> None:
    """Events in and out: dead-lettered broker messages, and the outbox of published events."""


events.add_command(outbox)


@events.group("dead-letters")
def dead_letters_group() -> None:
    """Broker messages a watcher could not turn into an asset event: list, show, replay or discard them."""


def _summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status.value, "watcher": row.watcher, "asset": row.asset,
        "broker": row.broker, "source": row.source, "message_id": row.message_id, "attempts": row.attempts,
        "reason": row.reason, "bytes": len(row.payload), "created_at": row.created_at, "updated_at": row.updated_at,
        "resolved_by": row.resolved_by, "asset_event_id": row.asset_event_id,
    }  # fmt: skip


@dead_letters_group.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="Also those replayed or discarded already.")
@json_option("a list of dead letters")
@pass_cli
def list_dead_letters(cli: CliContext, include_resolved: bool, as_json: bool) -> None:
    """Dead letters waiting for a decision, newest first: watcher, asset, attempts, reason."""
    from dagrunner.persistence import dead_letters

    with cli.read_session() as session:
        rows = [_summary(r) for r in dead_letters.listing(session, include_resolved=include_resolved)]
    if as_json:
        render.print_json(rows)
        return
    render.table(
        "dead letters",
        ["id", "created", "status", "watcher", "asset", "message id", "attempts", "bytes", "reason"],
        [(r["id"], render.fmt_time(r["created_at"]), r["status"], r["watcher"], r["asset"], r["message_id"],
          r["attempts"], r["bytes"], r["reason"]) for r in rows],
    )  # fmt: skip


@dead_letters_group.command("show")
@click.argument("dead_letter_id", type=int, metavar="ID")
@json_option("the dead letter, its payload as text (or base64) and its headers")
@pass_cli
def show_dead_letter(cli: CliContext, dead_letter_id: int, as_json: bool) -> None:
    """One dead letter: where it came from, why, its headers and its raw payload."""
    from dagrunner.persistence import dead_letters

    with cli.read_session() as session:
        row = dead_letters.get(session, dead_letter_id)
        data = {**_summary(row), "headers": row.headers, **_payload(bytes(row.payload))}
    if as_json:
        render.print_json(data)
        return
    for key in ("id", "status", "watcher", "asset", "broker", "source", "message_id", "attempts", "reason",
                "created_at", "updated_at", "resolved_by", "asset_event_id", "headers", "bytes", "encoding"):  # fmt: skip
        render.info(f"{key}: {data[key]}")
    render.info("payload:")
    click.echo(data["payload"])


def _payload(payload: bytes) -> dict[str, Any]:
    try:
        return {"encoding": "utf-8", "payload": payload.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "payload": base64.b64encode(payload).decode("ascii")}


@dead_letters_group.command("replay")
@click.argument("dead_letter_id", type=int, metavar="ID")
@json_option("the outcome")
@pass_cli
def replay_dead_letter(cli: CliContext, dead_letter_id: int, as_json: bool) -> None:
    """Send a dead letter through its watcher again (decode, validate, record); audited.

    Exits 1 when it fails again: it then stays a dead letter, with one more attempt and the new reason.
    """
    from dagrunner.scheduling.watchers.replay import replay

    result = replay(cli.engine, cli.settings, dead_letter_id, actor=cli.actor, clock=SystemClock())
    if as_json:
        render.print_json({"id": result.dead_letter_id, "replayed": result.replayed, "detail": result.detail,
                           "asset_event_id": result.event_id, "created_runs": [list(r) for r in result.created_runs]})  # fmt: skip
    elif result.replayed:
        render.info(f"dead letter {dead_letter_id} replayed: {result.detail}")
    if not result.replayed:
        if not as_json:
            render.error(f"dead letter {dead_letter_id} failed again and stays: {result.detail}")
        raise click.exceptions.Exit(1)


@dead_letters_group.command("discard")
@click.argument("dead_letter_id", type=int, metavar="ID")
@click.option("--reason", help="Why (kept in the audit log).")
@json_option("the discarded dead letter")
@pass_cli
def discard_dead_letter(cli: CliContext, dead_letter_id: int, reason: str | None, as_json: bool) -> None:
    """Mark a dead letter discarded: it is never replayed, and kept for the audit."""
    from dagrunner.persistence import dead_letters

    with cli.session() as session:
        row = dead_letters.get(session, dead_letter_id, for_update=True)
        dead_letters.discard(session, row, actor=cli.actor, when=SystemClock().now(), reason=reason)
        data = _summary(row)
    if as_json:
        render.print_json(data)
    else:
        render.info(f"dead letter {dead_letter_id} discarded")
