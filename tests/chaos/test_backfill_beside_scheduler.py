"""`dagrunner backfill` beside a running scheduler over dates the scheduler also schedules (item 2).

A daily DAG with catchup and max_active_runs=4: the scheduler works through its backlog while a backfill
process takes six later dates (more than max_active_runs). Afterwards every date has exactly one run, all
succeeded, each task body ran once (the external ledger agrees with the database), and the scheduler went
on past the backfilled dates: today's scheduled run exists too.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from integration.procs import db_states, finish, project, run, scheduler_started, start
from polling import wait_until
from sqlalchemy import select

from chaos.ledger import LEDGER_SNIPPET, check_against_db, read
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import DagRun

pytestmark = pytest.mark.slow

DAG_FILE = """
import os, time
import pendulum
from dagrunner import DAG, task
os.environ["DAGRUNNER_LEDGER"] = {ledger!r}
{snippet}

@task
def step(ti=None, run_id=None):
    note("start", ti, run_id)
    time.sleep(0.3)
    note("end", ti, run_id)

with DAG("daily", schedule="@daily", start_date=pendulum.parse({start!r}), catchup=True, max_active_runs=4):
    step.override(task_id="a")() >> step.override(task_id="b")()
"""


def _runs(db_url: str) -> list[tuple[datetime, str, str]]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            rows = s.scalars(select(DagRun).order_by(DagRun.logical_date)).all()
            return [(r.logical_date, r.run_type.value, r.state.value) for r in rows]
    finally:
        engine.dispose()


def test_backfill_beside_the_scheduler_leaves_one_run_per_date_and_scheduling_goes_on(
    tmp_path: Path, sqlite_url: str
) -> None:
    db_url = sqlite_url  # the rule is the scheduler's, not the database's (both: test_runs_beside_backfill)
    root = project(tmp_path, examples=False)
    ledger = root / "ledger.txt"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=16)
    body = DAG_FILE.format(ledger=str(ledger), snippet=LEDGER_SNIPPET, start=first.isoformat())
    (root / "dags" / "daily.py").write_text(body)
    backfilled = [today - timedelta(days=d) for d in range(7, 1, -1)]  # six dates ahead of the scheduler
    daemon = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the scheduler to start")
        result = run(root, db_url, "backfill", "daily", "-s", backfilled[0].date().isoformat(),
                     "-e", backfilled[-1].date().isoformat(), timeout=180)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        due = [first + timedelta(days=d) for d in range(17)]  # start_date .. today
        wait_until(lambda: [d for d, _, state in _runs(db_url) if state == "success"] == due, timeout=90,
                   what="every date up to today to have succeeded")  # fmt: skip
    finally:
        daemon.send_signal(signal.SIGTERM)
        out = finish(daemon, 60)
    runs = _runs(db_url)
    assert [d for d, _, _ in runs] == due, out
    assert {state for _, _, state in runs} == {"success"}
    assert runs[-1][1] == "scheduled"  # past the backfilled dates, the scheduler's own run
    assert all(kind == "scheduled" for d, kind, _ in runs if d < backfilled[0])
    ends = Counter((e.run_id, e.task_id) for e in read(ledger) if e.event == "end")
    assert len(ends) == 2 * len(due) and set(ends.values()) == {1}
    assert all(state == "success" for state in db_states(db_url)[1].values())
    assert check_against_db(db_url, ledger) == []
