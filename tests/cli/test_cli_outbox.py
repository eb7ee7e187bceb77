"""`dagrunner events outbox` shows each sink's lag and last error (the command object; the lead wires it
into the `events` group)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from dagrunner.cli.context import CliContext
from dagrunner.cli.outbox import outbox
from dagrunner.clock import SystemClock
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.schema import init_db
from dagrunner.scheduling.outbox_relay import Relay
from dagrunner.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_events_outbox_shows_lag_and_last_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: connection refused
    (tmp_path / "dagrunner.toml").write_text(
        f'[events.sinks.ops]\ntype = "webhook"\nurl = "http://127.0.0.1:{port}/hook"\ntimeout = "1s"\n'
    )
    settings = Settings.load(environ={}, home=tmp_path)
    engine = make_engine(settings.db_url)
    init_db(engine)
    with session_scope(engine) as s:
        for n in range(3):
            record_event(s, "asset.event", actor="test", when=datetime.now(UTC),
                         detail={"asset": "orders", "uri": None, "extra": {"n": n}, "event_id": n, "source": {}})  # fmt: skip
    relay = Relay(engine, settings, actor="test", clock=SystemClock())
    relay.step()
    relay.close()

    def invoke(*args: str) -> str:
        obj = CliContext(verbose=False, home=str(tmp_path), overrides={})
        result = CliRunner().invoke(outbox, list(args), obj=obj, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    report = json.loads(invoke("--json"))
    assert report["outbox_rows"] == 3
    (ops,) = report["sinks"]
    assert ops["sink"] == "ops" and ops["pending"] == 3 and ops["configured"] is True
    assert "refused" in ops["last_error"].lower() and ops["next_retry_at"] and ops["attempts"] == 1
    assert ops["oldest_pending_age_s"] >= 0 and ops["delivered"] == 0
    text = invoke()
    assert "ops" in text and "refused" in text.lower()
    engine.dispose()
