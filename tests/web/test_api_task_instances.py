"""/api/v1 task instances: list, detail with tries, log tailing (and its confinement), clear, set-state, why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagrunner.execution.base import TaskKey
from dagrunner.execution.logs import log_path
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.views import audit_trail

from .conftest import WebProject
from .dag_runs import PIPELINE, dag_source, run_to_end


@pytest.fixture
def failed_run(web: WebProject, monkeypatch: pytest.MonkeyPatch) -> str:
    web.dag_file("pipeline.py", PIPELINE)
    web.parse()
    return str(run_to_end(web, monkeypatch, "pipeline")["run_id"])


def test_instances_and_their_tries(web: WebProject, failed_run: str) -> None:
    client = web.client("viewer")
    base = f"/api/v1/dags/pipeline/runs/{failed_run}/tasks"
    tis = client.get(base).json()
    assert [t["label"] for t in tis][:4] == ["extract", "transform[0]", "transform[1]", "transform[2]"]
    load = next(t for t in tis if t["task_id"] == "load")
    assert (load["state"], load["try_number"], load["map_index"], load["pool"]) == ("failed", 1, -1, "default_pool")
    assert load["operator"] and load["duration_s"] is not None and load["start_date"].endswith("+00:00")

    detail = client.get(f"{base}/load").json()
    assert detail["state"] == "failed" and [t["try_number"] for t in detail["tries"]] == [1]
    assert detail["tries"][0]["state"] == "failed" and "warehouse is gone" in (detail["tries"][0]["exit_reason"] or "")
    mapped = client.get(f"{base}/transform", params={"map_index": 2}).json()
    assert mapped["label"] == "transform[2]" and mapped["state"] == "success"
    assert client.get(f"{base}/transform").status_code == 404  # mapped: -1 is not one of its instances
    assert client.get(f"{base}/nope").status_code == 404
    assert client.get("/api/v1/dags/pipeline/runs/nope/tasks").status_code == 404

    why = client.get(f"{base}/load/why").json()
    assert why["state"] == "failed" and any(c["rule"] == "finished" and not c["passed"] for c in why["checks"])
    assert client.get(f"{base}/nope/why").status_code == 404


def test_a_failed_tasks_log_tails_from_the_returned_offset(web: WebProject, failed_run: str) -> None:
    client = web.client("viewer")
    url = f"/api/v1/dags/pipeline/runs/{failed_run}/tasks/load/logs"
    first = client.get(url).json()
    assert first["try_number"] == 1 and first["finished"] is True
    assert "loading the values" in first["content"] and "the warehouse is gone" in first["content"]
    assert first["offset"] == len(first["content"].encode())

    path = log_path(web.settings.logs_folder, TaskKey("pipeline", failed_run, "load"), 1)
    with path.open("a") as handle:  # more written after the first read: the next read returns only that
        handle.write("one more line\n")
    second = client.get(url, params={"offset": first["offset"]}).json()
    assert second["content"] == "one more line\n" and second["offset"] == first["offset"] + 14
    third = client.get(url, params={"offset": second["offset"], "try_number": 1}).json()
    assert third["content"] == "" and third["offset"] == second["offset"] and third["finished"] is True

    assert client.get(url, params={"try_number": 2}).status_code == 404
    assert client.get(url, params={"map_index": 5}).status_code == 404
    assert client.get(url, params={"offset": -1}).status_code == 422
    mapped = client.get(f"/api/v1/dags/pipeline/runs/{failed_run}/tasks/transform/logs", params={"map_index": 1})
    assert mapped.status_code == 200 and mapped.json()["finished"] is True


def test_log_paths_cannot_leave_the_logs_folder(web: WebProject, failed_run: str, tmp_path: Path) -> None:
    client = web.client("viewer")
    for bad in ("..%2F..%2Fetc", "%2Fetc%2Fpasswd", "..", "a%00b"):
        response = client.get(f"/api/v1/dags/pipeline/runs/{bad}/tasks/load/logs")
        assert response.status_code in (400, 404, 422), (bad, response.status_code)
        response = client.get(f"/api/v1/dags/pipeline/runs/{failed_run}/tasks/{bad}/logs")
        assert response.status_code in (400, 404, 422), (bad, response.status_code)

    secret = tmp_path / "outside.txt"
    secret.write_text("TOP SECRET\n")
    path = log_path(web.settings.logs_folder, TaskKey("pipeline", failed_run, "extract"), 1)
    path.unlink()
    os.symlink(secret, path)  # a log file replaced by a link that leads out of the folder
    response = client.get(f"/api/v1/dags/pipeline/runs/{failed_run}/tasks/extract/logs")
    assert response.status_code in (400, 404) and "TOP SECRET" not in response.text

    folder = path.parent.parent  # a whole folder replaced by a link that leads out
    outside = tmp_path / "elsewhere"
    (outside / "task_id=load").mkdir(parents=True)
    (outside / "task_id=load" / "attempt=1.log").write_text("TOP SECRET\n")
    os.rename(folder, tmp_path / "moved")
    os.symlink(outside, folder)
    response = client.get(f"/api/v1/dags/pipeline/runs/{failed_run}/tasks/load/logs")
    assert response.status_code in (400, 404) and "TOP SECRET" not in response.text


def test_clear_and_set_state_of_an_instance_are_audited(web: WebProject, failed_run: str) -> None:
    operator = web.client("operator", username="ida")
    base = f"/api/v1/dags/pipeline/runs/{failed_run}/tasks"

    dry = operator.post(f"{base}/transform/clear", json={"downstream": True, "dry_run": True, "map_index": 1})
    assert dry.status_code == 200, dry.text
    assert sorted((c["task_id"], c["map_index"]) for c in dry.json()["cleared"]) == [("load", -1), ("transform", 1)]
    cleared = operator.post(f"{base}/load/clear", json={}).json()
    assert [(c["task_id"], c["state"]) for c in cleared["cleared"]] == [("load", "failed")]
    assert cleared["runs_requeued"] == [failed_run]
    assert web.client("viewer").get(f"{base}/load").json()["state"] == "none"

    marked = operator.post(f"{base}/load/state", json={"state": "success"})
    assert marked.status_code == 200, marked.text
    assert [(m["task_id"], m["old"], m["new"]) for m in marked.json()["changed"]] == [("load", "none", "success")]
    assert web.client("viewer").get(f"{base}/load").json()["state"] == "success"
    assert operator.post(f"{base}/load/state", json={"state": "running"}).status_code == 422
    assert operator.post(f"{base}/nope/state", json={"state": "success"}).status_code == 404
    assert operator.post(f"{base}/nope/clear", json={}).status_code == 404

    with session_scope(web.engine, readonly=True) as session:
        rows = [(a.event, a.actor) for a in audit_trail(session)]
    assert ("tasks.cleared", "api:ida") in rows and ("tasks.marked", "api:ida") in rows
    assert ("task.state", "api:ida") in rows


def test_a_viewer_cannot_clear_or_mark(web: WebProject) -> None:
    web.dag_file("a.py", dag_source("alpha"))
    web.parse()
    web.client("operator").post("/api/v1/dags/alpha/runs", json={"run_id": "r1"})
    viewer = web.client("viewer")
    base = "/api/v1/dags/alpha/runs/r1/tasks/only"
    assert viewer.post(f"{base}/clear", json={}).status_code == 403
    assert viewer.post(f"{base}/state", json={"state": "success"}).status_code == 403
    assert viewer.get(f"{base}/logs").status_code == 404  # no try yet
    assert viewer.get(f"{base}").json()["tries"] == []
