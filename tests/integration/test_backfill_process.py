"""`dagrunner backfill` as a real process: Ctrl-C and resume; beside a running scheduler; max_active_runs held."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest
from polling import wait_until
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from dagrunner.errors import PersistenceError
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import AuditLog, DagRun, SchedulerJob, TaskInstance
from dagrunner.states import DagRunState

from .procs import finish, project, run, scheduler_started, start

pytestmark = pytest.mark.slow

SLOWISH = """
import os, time
import pendulum
from pathlib import Path
from dagrunner import DAG, task

LEDGER = Path(__file__).parent.parent / "ledger.txt"

with DAG("slowish", schedule="@daily", start_date=pendulum.datetime({start}, tz="UTC"), catchup={catchup},
         max_active_runs=3):
    @task
    def step(ds=None, ti=None):
        with LEDGER.open("a") as fh:
            fh.write(f"start {{ti.task_id}} {{ds}} {{os.getpid()}}\\n")
        time.sleep({seconds})
        with LEDGER.open("a") as fh:
            fh.write(f"end {{ti.task_id}} {{ds}} {{os.getpid()}}\\n")

    step.override(task_id="a")() >> step.override(task_id="b")()
"""


def _dag(root: Path, *, start: str = "2026, 1, 1", catchup: bool = False, seconds: float = 0.3) -> None:
    (root / "dags" / "slowish.py").write_text(SLOWISH.format(start=start, catchup=catchup, seconds=seconds))


def _ledger(root: Path) -> list[list[str]]:
    path = root / "ledger.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _count_runs(db_url: str) -> dict[str, int]:
    """Runs by state; empty while the process under test has not created the schema yet."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            return dict(s.execute(select(DagRun.state, func.count()).group_by(DagRun.state)).all())
    except (DBAPIError, PersistenceError):
        return {}
    finally:
        engine.dispose()


def test_ctrl_c_then_the_same_command_resumes(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    _dag(root)
    args = ("backfill", "slowish", "-s", "2026-01-01", "-e", "2026-01-06", "--max-active-runs", "2")
    proc = start(root, db_url, *args)
    wait_until(lambda: sum(1 for r in _ledger(root) if r[0] == "end") >= 2, timeout=90, what="a few tasks to finish")
    proc.send_signal(signal.SIGINT)
    out = finish(proc, 90)
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out
    done_before = {(r[1], r[2]) for r in _ledger(root) if r[0] == "end"}
    assert 2 <= len(done_before) < 12

    again = run(root, db_url, *args, "--json", timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    summary = json.loads(again.stdout)
    assert summary["succeeded"] == 6 and summary["state"] == "success"
    assert sum(_count_runs(db_url).values()) == 6  # no run created twice
    starts = Counter((r[1], r[2]) for r in _ledger(root) if r[0] == "start")
    assert len(starts) == 12
    for key in done_before:
        assert starts[key] == 1, key  # a task that succeeded before the interrupt did not run again


def test_a_try_killed_by_ctrl_c_runs_again_on_resume(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    _dag(root, seconds=4)
    args = ("backfill", "slowish", "-s", "2026-01-01", "-e", "2026-01-01", "--grace", "0.2")
    proc = start(root, db_url, *args)
    wait_until(lambda: any(r[0] == "start" for r in _ledger(root)), what="task a to start", timeout=90)
    proc.send_signal(signal.SIGINT)
    out = finish(proc, 90)
    assert proc.returncode == 130, out
    assert not any(r[0] == "end" for r in _ledger(root))  # the grace period was too short: a was killed

    again = run(root, db_url, *args, "--json", timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["state"] == "success"
    starts = Counter(r[1] for r in _ledger(root) if r[0] == "start")
    assert starts == {"a": 2, "b": 1}  # the killed try ran again (a task without retries), b once


def test_backfill_beside_a_running_scheduler_never_runs_a_task_twice(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    _dag(root, start="2026, 11, 20", catchup=True, seconds=0.05)  # the daemon creates 11-20 onwards itself
    daemon = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the scheduler to start")
        result = run(root, db_url, "backfill", "slowish", "-s", "2026-11-20", "-e", "2026-11-29", "--json",
                     timeout=180)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: _count_runs(db_url).get("success", 0) >= 10, timeout=120, what="every date to finish")
    finally:
        daemon.send_signal(signal.SIGTERM)
        finish(daemon, 60)
    starts = Counter((r[1], r[2]) for r in _ledger(root) if r[0] == "start")
    assert starts and max(starts.values()) == 1, starts  # no task instance executed twice
    engine = make_engine(db_url)
    with session_scope(engine, readonly=True) as s:
        runs = s.scalars(select(DagRun)).all()
        dates = Counter(r.logical_date for r in runs)
        owners = {r.run_id: r.owner for r in runs}
        by_job = dict(
            s.execute(
                select(TaskInstance.run_id, SchedulerJob.job_type).join(
                    SchedulerJob, SchedulerJob.id == TaskInstance.queued_by_job_id
                )
            ).all()
        )
    engine.dispose()
    assert max(dates.values()) == 1  # one run per date, whoever created it
    for run_id, owner in owners.items():
        if run_id in by_job:  # a run owned by the backfill was executed by the backfill job, and vice versa
            assert (owner or "").startswith("backfill:") == (by_job[run_id].value == "backfill"), (run_id, owner)


def _most_runs_running_at_once(db_url: str) -> tuple[int, int]:
    """(runs ever started, the most running at one time), replayed from the audit log's run changes.

    Entering `running` is +1 and leaving it -1. At one timestamp the exits count first: the scheduler stamps
    a tick's changes with the tick's time, and a run that finishes as another starts in the same tick freed
    its slot first. Unlike sampling the table, this sees every instant, however short.
    """
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            rows = s.execute(
                select(AuditLog.ts, AuditLog.id, AuditLog.old_state, AuditLog.new_state).where(
                    AuditLog.event.in_(("run.created", "run.state"))
                )
            ).all()
    finally:
        engine.dispose()
    running = DagRunState.RUNNING.value
    steps = sorted(
        (ts, 1 if new == running else -1, pk) for ts, pk, old, new in rows if (old == running) != (new == running)
    )
    level = peak = 0
    for _, delta, _ in steps:
        level += delta
        peak = max(peak, level)
    return sum(1 for _, delta, _ in steps if delta == 1), peak


def test_max_active_runs_holds_while_a_backfill_runs(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    _dag(root, seconds=0.2)
    proc = start(root, db_url, "backfill", "slowish", "-s", "2026-01-01", "-e", "2026-01-08", "--max-active-runs", "2",
                 "--json")  # fmt: skip
    out = finish(proc, 180)
    assert proc.returncode == 0, out
    assert _count_runs(db_url) == {DagRunState.SUCCESS: 8}, out
    started, peak = _most_runs_running_at_once(db_url)
    assert started == 8 and peak == 2, (started, peak)
