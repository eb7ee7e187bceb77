"""`dagrunner events dead-letters list|show|replay|discard` on a real project (SQLite, the parsed DAG files)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import text
from watcher_helpers import Names

from dagrunner.clock import utcnow
from dagrunner.persistence import dead_letters
from dagrunner.persistence.engine import make_engine, session_scope


@pytest.fixture
def names() -> Iterator[Names]:
    n = Names()
    yield n
    n.cleanup()


def _letter(db: str, names: Names, payload: bytes, reason: str) -> int:
    engine = make_engine(db)
    try:
        with session_scope(engine) as s:
            letter = dead_letters.Letter(f"redis_{names.suffix}", names.asset, "redis://127.0.0.1:6379/0",
                                         f"stream {names.stream}", "1-0", payload, {"field": "data"}, reason, 1)  # fmt: skip
            return dead_letters.add(s, letter, actor="test", when=utcnow())
    finally:
        engine.dispose()


def test_list_show_replay_discard(project: Path, run_cli: Callable[..., Result], names: Names) -> None:
    names.dag_file(project / "dags")
    assert run_cli("dags", "list").exit_code == 0  # parses the folder (and creates the database)
    db = f"sqlite:///{project / '.dagrunner' / 'dagrunner.db'}"
    good = _letter(db, names, b'{"order_id": 5}', "recording failed 5 times (event_max_attempts); last error: x")
    bad = _letter(db, names, b"\xff\x00binary", "message is not UTF-8 text")
    gone = _letter(db, names, b"{}", "rejected by validate")

    listed = json.loads(run_cli("events", "dead-letters", "list", "--json").output)
    assert [r["id"] for r in listed] == [gone, bad, good] and listed[1]["bytes"] == 8
    shown = json.loads(run_cli("events", "dead-letters", "show", str(bad), "--json").output)
    assert shown["encoding"] == "base64" and shown["headers"] == {"field": "data"}

    replayed = run_cli("events", "dead-letters", "replay", str(good))
    assert replayed.exit_code == 0 and "replayed: asset event" in replayed.output, replayed.output
    failed = run_cli("events", "dead-letters", "replay", str(bad))
    assert failed.exit_code == 1 and "not UTF-8" in failed.output
    discarded = run_cli("events", "dead-letters", "discard", str(gone), "--reason", "test data")
    assert discarded.exit_code == 0

    remaining = json.loads(run_cli("events", "dead-letters", "list", "--json").output)
    assert [(r["id"], r["attempts"]) for r in remaining] == [(bad, 2)]
    everything = {
        r["id"]: r["status"] for r in json.loads(run_cli("events", "dead-letters", "list", "--all", "--json").output)
    }
    assert everything == {good: "replayed", bad: "dead", gone: "discarded"}
    again = run_cli("events", "dead-letters", "discard", str(gone))
    assert again.exit_code == 1 and "discarded already" in again.output
    engine = make_engine(db)
    with session_scope(engine, readonly=True) as s:
        audit = [
            e for (e,) in s.execute(text("SELECT event FROM audit_log WHERE event LIKE 'dead_letter.%' ORDER BY id"))
        ]
        runs = s.execute(text("SELECT count(*) FROM dag_run WHERE dag_id = :d"), {"d": names.dag_id}).scalar_one()
    engine.dispose()
    assert audit == ["dead_letter.created"] * 3 + [
        "dead_letter.replayed",
        "dead_letter.replayed",
        "dead_letter.discarded",
    ]
    assert runs == 1  # the replayed message triggered the DAG
