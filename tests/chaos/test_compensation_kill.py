"""Compensations survive a kill -9 of the scheduler: each runs to completion exactly once, in reverse order.

A real `dagrunner scheduler` runs a saga whose last step fails; its three compensations write to an external
ledger and sleep. While the second compensation is in flight the scheduler is SIGKILLed and started again
(as a supervisor would). Its worker finishes the in-flight try and records it; the new scheduler adopts the
rest of the rollback. The ledger must show each compensation started and ended once, one after the other in
reverse completion order, and the audit must read the rollback back (`compensation.started/finished`).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from integration.procs import db_states, finish, project, run, scheduler_started, start
from polling import wait_until

from chaos.ledger import LEDGER_SNIPPET, Entry, check_against_db, read

pytestmark = pytest.mark.slow

DAG_FILE = """
import os, time
import pendulum
from datetime import timedelta
from dagrunner import DAG, task, FailTask
os.environ["DAGRUNNER_LEDGER"] = {ledger!r}
{snippet}

with DAG("saga", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def step(ti=None, run_id=None):
        note("start", ti, run_id)
        note("end", ti, run_id)
        return f"done {{ti.task_id}}"

    @task(retries=2, retry_delay=timedelta(seconds=0))
    def undo(compensation, ti=None, run_id=None):
        note("start", ti, run_id)
        time.sleep(1.5)
        assert compensation["result"] == f"done {{compensation['task_id']}}"
        note("end", ti, run_id)

    @task
    def fail():
        raise FailTask("the last step fails: roll back")

    steps = [step.override(task_id=t)().compensate_with(undo.override(task_id=f"undo_{{t}}")()) for t in "abc"]
    steps[0] >> steps[1] >> steps[2] >> fail()
"""


def _of(entries: list[Entry], event: str, task_id: str) -> list[Entry]:
    return [e for e in entries if e.event == event and e.task_id == task_id]


def test_a_killed_scheduler_neither_loses_nor_repeats_a_compensation(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    ledger = root / "ledger.txt"
    (root / "dags" / "saga.py").write_text(DAG_FILE.format(ledger=str(ledger), snippet=LEDGER_SNIPPET))
    triggered = run(root, db_url, "dags", "trigger", "saga", "--run-id", "rollback")
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    daemon = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the scheduler to start")
        wait_until(lambda: _of(read(ledger), "start", "undo_b"), timeout=60, what="the second compensation")
        daemon.send_signal(signal.SIGKILL)  # mid-compensation: undo_b is sleeping in its worker
        daemon.wait(10)
        daemon = start(root, db_url, "scheduler")
        wait_until(lambda: db_states(db_url)[0].get("saga/rollback") == "failed", timeout=90, what="the rollback")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            finish(daemon, 60)
    assert check_against_db(db_url, ledger) == []
    entries = read(ledger)
    for name in ("undo_c", "undo_b", "undo_a"):
        assert len(_of(entries, "start", name)) == 1 and len(_of(entries, "end", name)) == 1, entries
    order = [(e.event, e.task_id) for e in entries if e.task_id.startswith("undo_")]
    assert order == [(event, f"undo_{t}") for t in "cba" for event in ("start", "end")]
    runs, tis = db_states(db_url)
    assert {task: state for (_, task), state in tis.items()} == {
        "a": "success", "b": "success", "c": "success", "fail": "failed",
        "undo_a": "success", "undo_b": "success", "undo_c": "success",
    }  # fmt: skip
    trail = json.loads(run(root, db_url, "audit", "--dag", "saga", "--json").stdout)
    started = [(r["task_id"], r["detail"]["order"]) for r in trail if r["event"] == "compensation.started"]
    finished = [(r["task_id"], r["detail"]["state"]) for r in trail if r["event"] == "compensation.finished"]
    assert started == [("c", 1), ("b", 2), ("a", 3)]
    assert finished == [("c", "success"), ("b", "success"), ("a", "success")]
    (listed,) = json.loads(run(root, db_url, "runs", "list", "saga", "--json").stdout)
    assert listed["state"] == "failed" and listed["needs_attention"] is False
