"""A waiting approval survives a kill -9 of the scheduler: it holds no process, so nothing is lost.

A real `dagrunner scheduler` runs the loan example until its manager review waits for a person; the
scheduler is SIGKILLed and started again (as a supervisor would). The request is still listed and
answerable, and after `tasks approve` the run goes on to the next approval, then finishes.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
from integration.procs import REPO, db_states, finish, project, run, scheduler_started, start
from polling import wait_until

pytestmark = pytest.mark.slow


def _state(db_url: str, task_id: str) -> str | None:
    return db_states(db_url)[1].get(("loan_approval/kill", task_id))


def _cli(root: Path, db_url: str, *args: str) -> str:
    proc = run(root, db_url, *args)
    assert proc.returncode == 0, f"dagrunner {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def test_a_killed_scheduler_leaves_the_approval_listed_and_answerable(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    shutil.copy(REPO / "dags" / "loan_approval.py", root / "dags" / "loan_approval.py")
    _cli(root, db_url, "dags", "trigger", "loan_approval", "--run-id", "kill")
    daemon = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the scheduler to start")
        wait_until(lambda: _state(db_url, "manager_review") == "deferred", timeout=90, what="the manager review")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        (row,) = json.loads(_cli(root, db_url, "approvals", "list", "--json"))  # listed with no scheduler alive
        assert (row["run_id"], row["task_id"]) == ("kill", "manager_review")
        daemon = start(root, db_url, "scheduler")
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the restarted scheduler")
        assert _state(db_url, "manager_review") == "deferred"  # still waiting: the restart did not touch it
        _cli(root, db_url, "tasks", "approve", "loan_approval", "manager_review", "kill", "--as", "maria")
        wait_until(lambda: _state(db_url, "final_decision") == "deferred", timeout=60, what="the final decision")
        _cli(root, db_url, "tasks", "respond", "loan_approval", "final_decision", "kill", "--option",
             "generate_contract")  # fmt: skip
        wait_until(lambda: db_states(db_url)[0].get("loan_approval/kill") == "success", timeout=60, what="the run")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            finish(daemon, 60)
    tries = json.loads(_cli(root, db_url, "audit", "--run", "kill", "--json"))
    assert [r["task_id"] for r in tries if r["event"] == "hitl.answered"] == ["manager_review", "final_decision"]
    assert db_states(db_url)[1][("loan_approval/kill", "disburse_funds")] == "success"
