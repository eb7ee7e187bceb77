"""Repeated kill -9 of the scheduler, of its workers and of task processes, while runs go on.

A real `dagrunner scheduler` runs a DAG with catchup; every second and a half one of its processes is
SIGKILLed (chosen by a seeded random generator, so a failure can be replayed): the scheduler itself (then
started again, as a supervisor would), or one of its descendants (the forkserver, a worker, a forker, a
task process). Then the kills stop and every run must finish, with every body once per try, no
overlapping tries, nothing left queued or running and a continuous audit chain (`ledger.check_against_db`),
and no scheduler may have exited on its own. The long version is `python -m benchmarks.soak`.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from integration.procs import db_states, finish, project, scheduler_started, start
from polling import wait_until

from chaos.ledger import LEDGER_SNIPPET, check_against_db, read

pytestmark = pytest.mark.slow

RUNS = 8
KILLS = 10
DAG_FILE = """
import os, time
import pendulum
from datetime import timedelta
from dagrunner import DAG, task
os.environ["DAGRUNNER_LEDGER"] = {ledger!r}
{snippet}

with DAG("killed", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         end_date=pendulum.datetime(2026, 1, {runs}, tz="UTC"), catchup=True, max_active_runs=3,
         default_args={{"retries": 4, "retry_delay": timedelta(seconds=0)}}):
    @task
    def step(ti=None, run_id=None):
        note("start", ti, run_id)
        time.sleep(0.3)
        note("end", ti, run_id)

    a, b, c, d = (step.override(task_id=t)() for t in ("a", "b", "c", "d"))
    a >> [b, c] >> d
"""


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = (int(x) for x in line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _finished(db_url: str) -> int:
    return sum(state in ("success", "failed") for state in db_states(db_url)[0].values())


def test_runs_finish_once_each_through_repeated_kills(tmp_path: Path, sqlite_url: str) -> None:
    db_url = sqlite_url  # one dialect is enough here: the behaviour under test is not the database's
    root = project(tmp_path, examples=False)
    ledger = root / "ledger.txt"
    (root / "dags" / "killed.py").write_text(DAG_FILE.format(ledger=str(ledger), snippet=LEDGER_SNIPPET, runs=RUNS))
    rng = random.Random(20261203)
    daemon = start(root, db_url, "scheduler")
    exits: list[str] = []
    try:
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the scheduler to start")
        wait_until(lambda: read(ledger), timeout=60, what="the first task body")
        for _ in range(KILLS):
            time.sleep(1.5)
            if daemon.poll() is not None:
                exits.append(finish(daemon, 10)[-800:])
                daemon = start(root, db_url, "scheduler")
                continue
            victims = _descendants(daemon.pid)
            if not victims or rng.random() < 0.3:
                daemon.kill()  # the scheduler alone: its workers finish their tries and exit
                daemon.wait(10)
                daemon = start(root, db_url, "scheduler")
            else:
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.kill(rng.choice(victims), signal.SIGKILL)
        wait_until(lambda: _finished(db_url) == RUNS, timeout=120, what=f"all {RUNS} runs to finish")
        assert daemon.poll() is None, "the scheduler exited on its own: " + finish(daemon, 10)[-800:]
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            finish(daemon, 60)
    assert exits == []
    assert check_against_db(db_url, ledger) == []
    runs = db_states(db_url)[0]
    assert sorted(runs.values()) == ["success"] * RUNS, runs  # 4 retries each: a kill never fails a run
