"""`dagrunner pools ...`: pools (slots shared by every task that names one) and their circuit breakers."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.cli.params import BadValue


@click.group()
def pools() -> None:
    """List, create, change and delete pools; close a pool's circuit breaker."""


@pools.command("list")
@json_option("a list of pools")
@pass_cli
def list_pools(cli: CliContext, as_json: bool) -> None:
    """Every pool: slots, slots in use, waiting instances, and its circuit breaker."""
    from dagrunner.persistence.views import pool_views

    with cli.read_session() as session:
        rows = pool_views(session)
    if as_json:
        render.print_json([r.to_json() for r in rows])
        return
    render.table(
        "pools",
        ["pool", "slots", "used", "queued", "scheduled", "breaker", "failures", "open until"],
        [
            (
                r.name, r.slots, r.used, r.queued, r.scheduled,
                r.breaker_state if r.threshold is not None else None,
                f"{r.consecutive_failures}/{r.threshold}" if r.threshold is not None else None, r.open_until,
            )
            for r in rows
        ],
    )  # fmt: skip


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    from dagrunner.settings import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise BadValue("--breaker-cooldown", str(exc)) from None


@pools.command("set")
@click.argument("name")
@click.option("--slots", type=int, help="How many slots (at least 1). Needed to create a pool.")
@click.option("--description", help="What the pool stands for (a downstream service, say).")
@click.option("--breaker-failures", type=int, help="Open the circuit after this many consecutive failed tries.")
@click.option("--breaker-cooldown", callback=_duration, help="How long an open circuit holds tries: 30s, 5m, 1h.")
@click.option("--no-breaker", is_flag=True, help="Remove the pool's circuit breaker.")
@json_option("the change")
@pass_cli
def set_pool(
    cli: CliContext, name: str, slots: int | None, description: str | None, breaker_failures: int | None,
    breaker_cooldown: float | None, no_breaker: bool, as_json: bool,
) -> None:  # fmt: skip
    """Create pool NAME, or change the values given (audited). Values not given stay as they are."""
    from dagrunner.scheduling.pools import set_pool as set_pool_in_db
    from dagrunner.settings import PoolSpec

    spec = PoolSpec(name, slots, description, breaker_failures, breaker_cooldown)
    with cli.session() as session:
        change = set_pool_in_db(session, spec, no_breaker=no_breaker, actor=cli.actor, now=datetime.now(UTC))
    if as_json:
        render.print_json({"pool": change.name, "created": change.created,
                           "changed": {k: {"old": old, "new": new} for k, (old, new) in change.changed.items()}})  # fmt: skip
        return
    render.info(change.describe())


@pools.command("delete")
@click.argument("name")
@pass_cli
def delete_pool(cli: CliContext, name: str) -> None:
    """Delete pool NAME (not default_pool, and not while a try of it is queued or running)."""
    from dagrunner.scheduling.pools import delete_pool as delete_pool_in_db

    with cli.session() as session:
        delete_pool_in_db(session, name, actor=cli.actor, now=datetime.now(UTC))
    render.info(f"pool {name} deleted")


@pools.command("reset")
@click.argument("name")
@click.option("--reason", default="closed by hand (pools reset)", show_default=True, help="Why, for the audit log.")
@pass_cli
def reset(cli: CliContext, name: str, reason: str) -> None:
    """Close pool NAME's circuit breaker now and start its failure count again (audited)."""
    from dagrunner.scheduling.pools import reset_breaker

    with cli.session() as session:
        before = reset_breaker(session, name, reason=reason, actor=cli.actor, now=datetime.now(UTC))
    if before.state.value == "closed":
        render.info(f"pool {name}: circuit already closed; failure count reset (was {before.consecutive_failures})")
        return
    render.info(
        f"pool {name}: circuit closed (was {before.state.value}, {before.consecutive_failures} consecutive failures)"
    )
