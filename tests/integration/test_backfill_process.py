"""`dagrunner backfill` as a real process: Ctrl-C and resume; beside a running scheduler; a sampled limit."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from dagrunner.errors import PersistenceError
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import DagRun, SchedulerJob, TaskInstance

from .procs import finish, project, run, scheduler_started, start, wait_for

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
    wait_for(lambda: sum(1 for r in _ledger(root) if r[0] == "end") >= 2, 90, "a few tasks to finish")
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
    wait_for(lambda: any(r[0] == "start" for r in _ledger(root)), 90, "task a to start")
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
        wait_for(lambda: scheduler_started(db_url), 60, "the scheduler to start")
        result = run(root, db_url, "backfill", "slowish", "-s", "2026-11-20", "-e", "2026-11-29", "--json",
                     timeout=180)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(lambda: _count_runs(db_url).get("success", 0) >= 10, 120, "every date to finish")
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


def test_max_active_runs_sampled_while_a_backfill_runs(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    _dag(root, seconds=0.2)
    proc = start(root, db_url, "backfill", "slowish", "-s", "2026-01-01", "-e", "2026-01-08", "--max-active-runs", "2",
                 "--json")  # fmt: skip
    samples = []
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        samples.append(_count_runs(db_url).get("running", 0))
        time.sleep(0.02)
    out = finish(proc, 30)
    assert proc.returncode == 0, out
    assert len(samples) > 10 and max(samples) == 2, samples
