"""Database outages under a real `dagrunner scheduler`: connections cut on PostgreSQL, an external
exclusive lock on SQLite. The scheduler and its workers retry through them; every task body runs once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from integration.procs import env_for, project
from polling import wait_until
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from chaos.ledger import LEDGER_SNIPPET, check_against_db, read
from dagrunner.persistence.engine import make_engine, session_scope, sqlite_path

pytestmark = pytest.mark.slow

TASKS = 20

DAG_FILE = (
    LEDGER_SNIPPET
    + f"""
import time
import pendulum
from dagrunner import DAG, task

with DAG("outages", schedule="@once", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task(retries=2, retry_delay=0.2)
    def work(n, ti=None, run_id=None):
        note("start", ti, run_id)
        time.sleep(0.2)
        note("end", ti, run_id)

    previous = None
    for n in range({TASKS}):
        current = work.override(task_id=f"t{{n:02d}}")(n)
        if n % 4 and previous is not None:
            previous >> current
        previous = current
"""
)


def _start_scheduler(root: Path, db_url: str, ledger: Path, **settings: str) -> subprocess.Popen[str]:
    env = env_for(root, db_url) | {"DAGRUNNER_LEDGER": str(ledger), "DAGRUNNER_PARALLELISM": "4"}
    env |= {f"DAGRUNNER_{name.upper()}": value for name, value in settings.items()}
    out = (root / "scheduler.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "dagrunner", "scheduler"], cwd=root, env=env, stdout=out,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _run_state(db_url: str) -> str | None:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            row = s.execute(text("SELECT state FROM dag_run WHERE dag_id = 'outages'")).first()
            return None if row is None else str(row[0])
    except Exception:  # noqa: BLE001 - the schema may not exist yet
        return None
    finally:
        engine.dispose()


def _body_count(ledger: Path) -> int:
    return len([e for e in read(ledger) if e.event == "end"])


def _stop(proc: subprocess.Popen[str], root: Path) -> str:
    assert proc.poll() is None, "the scheduler died:\n" + (root / "scheduler.log").read_text()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return (root / "scheduler.log").read_text()


def _finish_and_check(proc: subprocess.Popen[str], root: Path, db_url: str, ledger: Path) -> str:
    log_path = root / "scheduler.log"
    wait_until(lambda: _run_state(db_url) in ("success", "failed") or proc.poll() is not None,
               what="the run to finish", timeout=120)  # fmt: skip
    assert proc.poll() is None, "the scheduler died:\n" + log_path.read_text()
    assert _run_state(db_url) == "success", log_path.read_text()
    assert check_against_db(db_url, ledger) == []
    starts = [e for e in read(ledger) if e.event == "start"]
    assert len(starts) == TASKS, "a try was burned or a body ran twice"
    assert {e.try_number for e in starts} == {1}
    return _stop(proc, root)


@pytest.mark.postgres
def test_scheduler_survives_repeated_connection_cuts_on_postgres(tmp_path: Path, pg_url: str) -> None:
    root = project(tmp_path, examples=False)
    (root / "dags" / "outages.py").write_text(DAG_FILE)
    ledger = root / "ledger"
    proc = _start_scheduler(root, pg_url, ledger)
    killer = create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        wait_until(lambda: _body_count(ledger) >= 1, what="the first task body", timeout=60)
        cuts = 0
        with killer.connect() as conn:
            for _ in range(10):
                cuts += conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )).scalar_one()  # fmt: skip
                time.sleep(0.5)
        assert cuts >= 10, "the cuts hit no connection"
        output = _finish_and_check(proc, root, pg_url, ledger)
    finally:
        if proc.poll() is None:
            proc.kill()
        killer.dispose()
    assert "cannot be reached" in output  # a worker or the scheduler met the cuts (and went on)
    with killer.connect() as conn:
        reconnected = conn.execute(text("SELECT count(*) FROM audit_log WHERE event = 'scheduler.db_reconnected'"))
        count = reconnected.scalar_one()
    # The scheduler's pooled connections are pinged before use, so a cut may never fail one of its ticks;
    # when one did (its own line says so), the recovery is audited, unless it stopped during the outage.
    if "no new work is queued until it works again" in output:
        assert count >= 1 or "could not record the shutdown" in output, output[-2000:]


def test_scheduler_waits_out_an_external_exclusive_lock_on_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    """A lock held longer than the busy timeout: the scheduler and its workers wait, burn no try."""
    root = project(tmp_path, examples=False)
    (root / "dags" / "outages.py").write_text(DAG_FILE)
    ledger = root / "ledger"
    proc = _start_scheduler(root, sqlite_url, ledger, sqlite_busy_timeout="0.3")
    try:
        wait_until(lambda: _body_count(ledger) >= 2, what="the first task bodies", timeout=60)
        path = sqlite_path(sqlite_url)
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        threading.Event().wait(3.0)  # real time: the other processes must hit their busy timeout
        holder.execute("COMMIT")
        holder.close()
        output = _finish_and_check(proc, root, sqlite_url, ledger)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "is locked by another process" in output


@pytest.mark.postgres
def test_a_database_that_refuses_writes_pauses_scheduling_and_burns_no_try(tmp_path: Path, pg_url: str) -> None:
    """Item 11: the database turns read-only mid-run (as a failed-over replica would). The scheduler says
    the database refuses writes and queues nothing; workers do not fail their tries; when writes work
    again the run finishes with every task at its first try."""
    root = project(tmp_path, examples=False)
    (root / "dags" / "outages.py").write_text(DAG_FILE)
    ledger = root / "ledger"
    proc = _start_scheduler(root, pg_url, ledger)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    database = admin.url.database

    @event.listens_for(admin, "connect")
    def _read_write(dbapi_conn: Any, _record: Any) -> None:  # the test's own connections always may write
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")

    def reconnect_everyone() -> None:  # settings of a database apply to connections made after them
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ))  # fmt: skip

    try:
        wait_until(lambda: _body_count(ledger) >= 2, what="the first task bodies", timeout=60)
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'))
        reconnect_everyone()
        wait_until(lambda: "refuses writes" in (root / "scheduler.log").read_text(),
                   what="the scheduler to say the database refuses writes", timeout=60)  # fmt: skip
        done_while_read_only = _body_count(ledger)
        time.sleep(2.0)  # real time: the scheduler and workers keep meeting the refusal meanwhile
        assert _body_count(ledger) <= done_while_read_only + 4  # at most the bodies already running end
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" RESET default_transaction_read_only'))
        reconnect_everyone()
        _finish_and_check(proc, root, pg_url, ledger)  # every task once, all at try 1
    finally:
        if proc.poll() is None:
            proc.kill()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" RESET default_transaction_read_only'))
        admin.dispose()
