"""`dagrunner events outbox`: how far each event sink (and the listener plugins) is behind, and why."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option


@click.command("outbox")
@json_option("each sink's lag and last error")
@pass_cli
def outbox(cli: CliContext, as_json: bool) -> None:
    """Each event sink's lag: pending events, the oldest one's age, last delivery, last error, next retry.

    Sinks are set in dagrunner.toml ([events.sinks.NAME]); `@listeners` is the listener plugins. Pending
    counts every row after the sink's progress (its filters may skip some of them).
    """
    from dagrunner.persistence.outbox import LISTENERS, outbox_size, sink_lags

    configured = [spec.name for spec in cli.settings.event_sinks]
    with cli.read_session() as session:
        lags = sink_lags(session, configured)
        size, oldest = outbox_size(session)
    now = datetime.now(UTC)
    rows = [{**lag.to_json(now), "configured": lag.name in configured or lag.name == LISTENERS} for lag in lags]
    if as_json:
        render.print_json({"outbox_rows": size, "oldest_row_at": oldest.isoformat() if oldest else None,
                           "sinks": rows})  # fmt: skip
        return
    render.table(
        "event sinks",
        ["sink", "pending", "oldest pending", "last delivered", "delivered", "last error", "next retry"],
        [
            (
                r["sink"] + ("" if r["configured"] else " (not configured)"), r["pending"],
                None if r["oldest_pending_age_s"] is None else f"{r['oldest_pending_age_s']:.1f}s ago",
                r["last_delivered_at"], r["delivered"], r["last_error"], r["next_retry_at"],
            )
            for r in rows
        ],
    )  # fmt: skip
    if not rows:
        render.info(f"no event sinks configured; {size} event(s) in the outbox (pruned by the relay)")
