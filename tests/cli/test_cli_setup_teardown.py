"""Setup and teardown through the CLI: `tasks clear` pulls in the setup and teardown, `tasks why` explains a
waiting teardown."""

from __future__ import annotations

import json
from pathlib import Path

CLUSTER = """
import pendulum
from pathlib import Path
from dagrunner import DAG, setup, task, teardown

FLAG = Path(__file__).with_name("query.fail")

with DAG("cluster", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @setup
    def create():
        return "cluster-1"

    @task
    def query(cluster):
        if FLAG.exists():
            raise RuntimeError("query broke on " + cluster)

    @task
    def report():
        return "ok"

    @teardown
    def delete(cluster):
        print("deleting " + cluster)

    cluster = create()
    query(cluster) >> report() >> delete(cluster)
"""


def test_clear_pulls_in_setup_and_teardown_and_why_explains_the_waiting_teardown(run_cli, project: Path) -> None:
    (project / "dags" / "cluster.py").write_text(CLUSTER)
    (project / "dags" / "query.fail").touch()
    data = json.loads(run_cli("dags", "test", "cluster", "2026-02-03", "--json").output)
    assert data["state"] == "failed"  # the work failed; the teardown that ran does not hide it
    assert data["tasks"] == {"create": "success", "query": "failed", "report": "upstream_failed", "delete": "success"}
    run_id = data["run_id"]
    assert "deleting cluster-1" in run_cli("tasks", "logs", "cluster", "delete", run_id).output

    asked = run_cli("tasks", "clear", "cluster", "-t", "^query$", input="n\n")
    assert asked.exit_code == 1 and "Clear these 3 task instance(s)?" in asked.output
    assert all(f" {task_id} (" in asked.output for task_id in ("create", "query", "delete"))
    cleared = run_cli("tasks", "clear", "cluster", "-t", "^query$", "--downstream", "--yes")
    assert "cleared 4 task instance(s); 1 run(s) queued again" in cleared.output
    states = json.loads(run_cli("tasks", "states", "cluster", run_id, "--json").output)
    assert states == {"create": "none", "query": "none", "report": "none", "delete": "none"}

    why = run_cli("tasks", "why", "cluster", "delete", run_id)
    assert why.exit_code == 0, why.output
    text = " ".join(why.output.replace("│", " ").split())  # the table may wrap long reasons
    assert (
        "teardown of create: waits for setup create to succeed and for report to finish; runs even if they fail" in text
    ), text
    checks = json.loads(run_cli("tasks", "why", "cluster", "query", run_id, "--json").output)["checks"]
    assert {
        "rule": "setup_teardown",
        "passed": False,
        "reason": "waits for setup create to succeed (1 not done)",
    } in checks

    (project / "dags" / "query.fail").unlink()
    again = json.loads(run_cli("dags", "test", "cluster", "2026-02-03", "--json").output)
    assert again["state"] == "success" and set(again["tasks"].values()) == {"success"}
