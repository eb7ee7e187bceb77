"""`dagrunner scheduler` as a real process on SQLite and PostgreSQL: examples, retries, SIGTERM, SIGKILL."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from polling import wait_until

from .procs import db_states, finish, project, run, scheduler_started, start

pytestmark = pytest.mark.slow

FLAKY = """
import pendulum
from pathlib import Path
from dagrunner import DAG, task

LEDGER = Path(__file__).parent.parent / "flaky.ledger"

with DAG("flaky", schedule="@once", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task(retries=1, retry_delay=0.2)
    def fails_once():
        with LEDGER.open("a") as fh:
            fh.write("try\\n")
        if LEDGER.read_text().count("try") == 1:
            raise RuntimeError("first try fails")
        return "ok"

    fails_once()
"""


def test_scheduler_runs_the_examples_and_a_retry_to_success(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path)
    (root / "dags" / "flaky.py").write_text(FLAKY)
    proc = run(root, db_url, "scheduler", "--num-runs", "4", timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs, tis = db_states(db_url)
    assert sorted(r.split("/")[0] for r in runs) == [
        "bash_templating",
        "etl_daily_sales",
        "flaky",
        "taskflow_branching",
    ]
    assert set(runs.values()) == {"success"}, runs
    assert set(tis.values()) <= {"success", "skipped"}, tis
    assert (root / "flaky.ledger").read_text().count("try") == 2
    assert "flaky.fails_once" in proc.stdout and "up_for_retry" in proc.stdout  # the live lines
    warehouse = root / "data" / "warehouse.db"
    assert warehouse.exists()  # the ETL example really loaded its table


SLOW = """
import os, time
import pendulum
from pathlib import Path
from dagrunner import DAG, task

LEDGER = Path(__file__).parent.parent / "slow.ledger"

def note(what, name):
    with LEDGER.open("a") as fh:
        fh.write(f"{what} {name} {os.getpid()} {time.time()}\\n")

with DAG("slow", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def step(name: str, seconds: float):
        note("start", name)
        time.sleep(seconds)
        note("end", name)

    step.override(task_id="first")("first", 2.0) >> step.override(task_id="second")("second", 0.2)
"""


def _ledger(root: Path) -> list[tuple[str, str, float]]:
    path = root / "slow.ledger"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        what, name, _pid, when = line.split()
        rows.append((what, name, float(when)))
    return rows


def _assert_never_concurrent(rows: list[tuple[str, str, float]]) -> None:
    """Each task's executions, as (start, end) intervals, never overlap; every start has its end."""
    for name in {n for _, n, _ in rows}:
        events = sorted((t, what) for what, n, t in rows if n == name)
        depth = 0
        for _, what in events:
            depth += 1 if what == "start" else -1
            assert depth in (0, 1), f"{name} ran twice at once: {events}"
        assert depth == 0, f"{name} started without ending: {events}"


def test_kill_9_mid_run_then_restart_completes_without_running_a_try_twice(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    (root / "dags" / "slow.py").write_text(SLOW)
    assert run(root, db_url, "dags", "trigger", "slow", "--run-id", "kill9").returncode == 0
    first = start(root, db_url, "scheduler")
    try:
        wait_until(
            lambda: any(r[:2] == ("start", "first") for r in _ledger(root)), timeout=60, what="the first task to start"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = run(root, db_url, "scheduler", "--num-runs", "1", timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    runs, tis = db_states(db_url)
    assert runs == {"slow/kill9": "success"}
    assert tis == {("slow/kill9", "first"): "success", ("slow/kill9", "second"): "success"}
    rows = _ledger(root)
    _assert_never_concurrent(rows)
    assert [n for what, n, _ in rows if what == "start"].count("first") == 1  # adopted, not restarted


def test_sigterm_lets_the_running_try_finish_and_records_a_clean_stop(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    (root / "dags" / "slow.py").write_text(SLOW)
    assert run(root, db_url, "dags", "trigger", "slow", "--run-id", "term").returncode == 0
    proc = start(root, db_url, "scheduler", "--grace", "20")
    wait_until(
        lambda: any(r[:2] == ("start", "first") for r in _ledger(root)), timeout=60, what="the first task to start"
    )
    proc.send_signal(signal.SIGTERM)
    out = finish(proc, 60)
    assert proc.returncode == 0, out
    assert "SIGTERM: stopping" in out
    _, tis = db_states(db_url)
    assert tis[("slow/term", "first")] == "success"  # finished within the grace period
    assert tis[("slow/term", "second")] == "none"  # no new work after the signal
    _assert_never_concurrent(_ledger(root))


def test_scheduler_picks_up_a_new_dag_file_while_running(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    proc = start(root, db_url, "scheduler", "--num-runs", "1")
    try:
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the scheduler to start")
        (root / "dags" / "late.py").write_text(
            FLAKY.replace('"flaky"', '"late"').replace("flaky.ledger", "late.ledger")
        )
        out = finish(proc, 120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    runs, _ = db_states(db_url)
    assert list(runs.values()) == ["success"] and list(runs)[0].startswith("late/")
