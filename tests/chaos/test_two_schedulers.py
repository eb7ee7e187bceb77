"""Several `dagrunner scheduler` processes on one PostgreSQL database share a pool without overfilling it.

Each scheduler counts the pool slots in use and queues into the free ones; unless that count-and-queue is
one step across schedulers, two of them see the same free slots and both fill them (issue 10, item 3: 14
task bodies at once in a pool of 10). The ledger the task bodies write is the witness: at no moment may
more than `SLOTS` bodies of the pool be between their start and end lines.

What makes the race show (it failed 3 times out of 3 before the fix, 11-12 bodies at once): chains of
tasks, so that each scheduler learns of ready instances the others do not know yet (the downstream of
the tries it ran itself; instances all of them know they would merely compete for, not overfill), three
schedulers, and bodies that all end on the same half-second beat, so that they free slots at the same
moment and every scheduler queues at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from integration.procs import env_for, finish, project, run
from polling import wait_until
from sqlalchemy import func, select

from chaos.ledger import ENV, LEDGER_SNIPPET, check_against_db, read
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import DagRun, Pool
from dagrunner.persistence.schema import init_db
from dagrunner.states import DagRunState

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SLOTS = 10
SCHEDULERS = 3
PARALLELISM = 6
RUNS = 3
CHAINS = 10
CHAIN_LENGTH = 3
TASKS_PER_RUN = CHAINS * CHAIN_LENGTH

POOLED = (
    LEDGER_SNIPPET
    + f"""
import time
import pendulum
from dagrunner import DAG, task

with DAG("pooled", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), max_active_runs={RUNS},
         max_active_tasks=100):
    @task(pool="ten")
    def body(ti=None, run_id=None):
        note("start", ti, run_id)
        time.sleep(0.3 + (-time.time()) % 0.5)  # every body ends on the same beat
        note("end", ti, run_id)

    for chain in range({CHAINS}):
        step = body.override(task_id=f"c{{chain}}_0")()
        for i in range(1, {CHAIN_LENGTH}):
            nxt = body.override(task_id=f"c{{chain}}_{{i}}")()
            step >> nxt
            step = nxt
"""
)


def _most_bodies_at_once(ledger: Path) -> int:
    """The most task bodies between their start and end lines at one moment (lines are in time order)."""
    level = peak = 0
    for entry in read(ledger):
        level += 1 if entry.event == "start" else -1
        peak = max(peak, level)
    return peak


def _finished_runs(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            return s.scalar(select(func.count()).where(DagRun.state == DagRunState.SUCCESS)) or 0
    finally:
        engine.dispose()


def _start_scheduler(root: Path, db_url: str, ledger: Path, number: int) -> subprocess.Popen[str]:
    """`dagrunner scheduler`, its task bodies writing to `ledger`; their executor slots add up to more
    than the pool has, so the pool, not the executors, is what must hold."""
    log = root / f"scheduler-{number}.log"
    env = {**env_for(root, db_url), ENV: str(ledger)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagrunner", "scheduler", "--parallelism", str(PARALLELISM)],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def test_two_schedulers_never_run_more_than_the_pool_allows(tmp_path: Path, pg_url: str) -> None:
    root = project(tmp_path, examples=False)
    (root / "dags" / "pooled.py").write_text(POOLED)
    ledger = tmp_path / "ledger.txt"
    engine = make_engine(pg_url)
    try:
        init_db(engine)
        with session_scope(engine) as s:
            s.add(Pool(name="ten", slots=SLOTS))
    finally:
        engine.dispose()
    for i in range(RUNS):
        triggered = run(root, pg_url, "dags", "trigger", "pooled", "--run-id", f"r{i}")
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    schedulers = [_start_scheduler(root, pg_url, ledger, n) for n in range(SCHEDULERS)]
    try:
        wait_until(lambda: _finished_runs(pg_url) == RUNS, timeout=90, what=f"all {RUNS} runs to succeed")
    finally:
        logs = []
        for proc in schedulers:
            proc.send_signal(signal.SIGTERM)
            logs.append(finish(proc, 60))
    assert check_against_db(pg_url, ledger) == [], "\n".join(logs)
    starts = [e for e in read(ledger) if e.event == "start"]
    assert len(starts) == RUNS * TASKS_PER_RUN
    peak = _most_bodies_at_once(ledger)
    assert 1 < peak <= SLOTS, f"{peak} task bodies ran at once in a pool of {SLOTS} slots"
