"""Compensation through the CLI: a rollback whose last compensation fails, read back with `runs list`,
`audit` and `tasks why`."""

from __future__ import annotations

import json
from pathlib import Path

SAGA = """
import pendulum
from dagrunner import DAG, task, FailTask

with DAG("saga", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def reserve():
        return "res-1"

    @task
    def charge():
        return {"charge_id": "ch-9"}

    @task
    def ship():
        raise FailTask("no truck")

    @task
    def release(compensation):
        raise RuntimeError(f"inventory service down; could not release {compensation['result']}")

    @task
    def refund(compensation):
        return f"refunded {compensation['result']['charge_id']} as {compensation['idempotency_key']}"

    reserve().compensate_with(release()) >> charge().compensate_with(refund()) >> ship()
"""


def test_a_failed_compensation_shows_in_runs_list_and_the_audit_reads_the_rollback_back(run_cli, project: Path) -> None:
    (project / "dags" / "saga.py").write_text(SAGA)
    result = run_cli("dags", "test", "saga", "2026-02-03", "--json")
    data = json.loads(result.output)
    assert data["state"] == "failed", result.output
    assert data["tasks"] == {
        "reserve": "success", "charge": "success", "ship": "failed", "refund": "success", "release": "failed"
    }  # fmt: skip
    run_id = data["run_id"]

    (listed,) = json.loads(run_cli("runs", "list", "saga", "--json").output)
    assert listed["needs_attention"] is True
    assert "release (undoing reserve)" in listed["needs_attention_reason"]
    text = run_cli("runs", "list", "saga").output
    assert "NEEDS ATTENTION" in text and f"saga {run_id} needs attention: compensation failed" in text
    healthy = json.loads(run_cli("runs", "list", "etl_daily_sales", "--json").output)
    assert all(r["needs_attention"] is False for r in healthy)

    trail = json.loads(run_cli("audit", "--dag", "saga", "--json").output)
    story = [(r["event"], r["task_id"]) for r in trail if r["event"].startswith(("compensation.", "run.needs"))]
    assert story == [
        ("compensation.started", "charge"), ("compensation.started", "reserve"),
        ("compensation.finished", "charge"), ("compensation.finished", "reserve"),
        ("run.needs_attention", None),
    ]  # fmt: skip
    finished = [r["detail"] for r in trail if r["event"] == "compensation.finished"]
    assert [(d["compensation_task"], d["state"]) for d in finished] == [("refund", "success"), ("release", "failed")]

    why = json.loads(run_cli("tasks", "why", "saga", "release", run_id, "--json").output)
    order = next(c for c in why["checks"] if c["rule"] == "compensation_order")
    assert order["passed"] and order["reason"] == "compensation 2 of 2: compensation of charge finished (success)"


SAGA_OK = """
import pendulum
from dagrunner import DAG, task

with DAG("saga_ok", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def reserve():
        return "res-1"

    @task
    def release(compensation):
        return compensation

    reserve().compensate_with(release())
"""


def test_tasks_why_on_an_undo_task_of_a_run_that_succeeded_says_when_it_would_run(run_cli, project: Path) -> None:
    (project / "dags" / "saga_ok.py").write_text(SAGA_OK)
    data = json.loads(run_cli("dags", "test", "saga_ok", "2026-02-03", "--json").output)
    assert data["state"] == "success" and data["tasks"] == {"reserve": "success"}
    result = run_cli("tasks", "why", "saga_ok", "release", data["run_id"])
    assert result.exit_code == 1
    assert "it undoes reserve and gets an instance only if the run fails after reserve succeeded" in result.output
