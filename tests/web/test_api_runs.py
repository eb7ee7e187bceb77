"""/api/v1 runs: list with filters, detail with tasks, trigger (conf, params), set-state and clear, audited."""

from __future__ import annotations

import pytest

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.views import audit_trail

from .conftest import WebProject
from .dag_runs import PIPELINE, dag_source, run_to_end


def _events(web: WebProject, run_id: str) -> list[tuple[str, str]]:
    with session_scope(web.engine, readonly=True) as session:
        return [(a.event, a.actor) for a in audit_trail(session, run_id=run_id)]


def test_trigger_with_conf_is_audited_redacted_and_listed(web: WebProject) -> None:
    web.dag_file("a.py", dag_source("alpha"))
    web.dag_file("b.py", dag_source("beta"))
    web.parse()
    operator = web.client("operator", username="otto")
    response = operator.post(
        "/api/v1/dags/alpha/runs",
        json={"conf": {"full": True, "password": "hunter2"}, "logical_date": "2026-02-01T06:00:00+00:00",
              "run_id": "by_hand"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["dag_id"], run["run_id"], run["run_type"], run["state"]) == ("alpha", "by_hand", "manual", "queued")
    assert run["logical_date"] == "2026-02-01T06:00:00+00:00"
    assert run["conf"] == {"full": True, "password": "***"}
    assert ("run.created", "api:otto") in _events(web, "by_hand")
    operator.post("/api/v1/dags/beta/runs", json={})

    viewer = web.client("viewer")
    everything = viewer.get("/api/v1/runs").json()
    assert everything["total"] == 2 and {r["dag_id"] for r in everything["items"]} == {"alpha", "beta"}
    only = viewer.get("/api/v1/runs", params={"dag_id": "alpha", "state": "queued", "run_type": "manual"}).json()
    assert [r["run_id"] for r in only["items"]] == ["by_hand"] and only["items"][0]["conf"]["password"] == "***"
    assert viewer.get("/api/v1/dags/beta/runs").json()["total"] == 1
    assert viewer.get("/api/v1/runs", params={"state": "sideways"}).status_code == 422
    assert viewer.get("/api/v1/runs", params={"dag_id": "alpha", "limit": 1, "offset": 1}).json()["items"] == []

    detail = viewer.get("/api/v1/dags/alpha/runs/by_hand").json()
    assert detail["run_id"] == "by_hand" and [t["task_id"] for t in detail["tasks"]] == ["only"]
    assert detail["tasks"][0]["state"] == "none" and detail["tasks"][0]["label"] == "only"

    again = operator.post("/api/v1/dags/alpha/runs", json={"run_id": "by_hand"})
    assert again.status_code == 409
    bad_id = operator.post("/api/v1/dags/alpha/runs", json={"run_id": "no spaces/here"})
    assert bad_id.status_code == 400 and "run" in bad_id.json()["detail"]
    assert operator.post("/api/v1/dags/alpha/runs", json={"conf": [1, 2]}).status_code == 422
    nul = operator.post("/api/v1/dags/alpha/runs", json={"conf": {"k": "a\u0000b"}})
    assert nul.status_code == 400 and "NUL" in nul.json()["detail"]
    assert viewer.get("/api/v1/runs", params={"dag_id": "a\u0000b"}).status_code == 422
    assert operator.post("/api/v1/dags/nope/runs", json={}).status_code == 404
    far = operator.post("/api/v1/dags/alpha/runs", json={"logical_date": "9999-12-31T23:59:59+00:00"})
    assert far.status_code == 422  # not a 500 from a time zone conversion out of range


def test_trigger_refuses_a_param_that_does_not_fit_naming_it(web: WebProject, monkeypatch: pytest.MonkeyPatch) -> None:
    web.dag_file(
        "p.py",
        """
        from datetime import datetime
        from dagrunner import DAG, Param, task

        with DAG(dag_id="typed", schedule=None, start_date=datetime(2026, 1, 1),
                 params={"rows": Param(5, type="integer", minimum=1), "mode": "fast"}):
            @task
            def only(params=None):
                assert params["rows"] == 5 and params["mode"] == "fast", params  # a run sees the defaults

            only()
        """,
    )
    web.parse()
    assert run_to_end(web, monkeypatch, "typed")["state"] == "success"
    client = web.client("operator")
    form = web.client("viewer").get("/api/v1/dags/typed").json()["params"]
    assert form["rows"]["schema"] == {"type": "integer", "minimum": 1, "default": 5}
    assert form["mode"]["schema"] == {"type": "string", "default": "fast"}
    refused = client.post("/api/v1/dags/typed/runs", json={"conf": {"rows": "many"}})
    assert refused.status_code == 400 and "rows" in refused.json()["detail"]
    assert client.post("/api/v1/dags/typed/runs", json={"conf": {"rows": 0}}).status_code == 400
    assert client.post("/api/v1/dags/typed/runs", json={"conf": {"rows": 7}}).status_code == 201


def test_set_state_and_clear_change_the_run_and_are_audited(web: WebProject, monkeypatch: pytest.MonkeyPatch) -> None:
    web.dag_file("pipeline.py", PIPELINE)
    web.parse()
    run_id = run_to_end(web, monkeypatch, "pipeline")["run_id"]
    operator = web.client("operator", username="mara")
    base = f"/api/v1/dags/pipeline/runs/{run_id}"

    dry = operator.post(f"{base}/clear", json={"only_failed": True, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert [(c["task_id"], c["state"]) for c in dry.json()["cleared"]] == [("load", "failed")]
    assert web.client("viewer").get(base).json()["state"] == "failed"  # a dry run changes nothing

    cleared = operator.post(f"{base}/clear", json={"only_failed": True}).json()
    assert [(c["task_id"], c["state"]) for c in cleared["cleared"]] == [("load", "failed")]
    assert cleared["runs_requeued"] == [run_id]
    detail = web.client("viewer").get(base).json()
    assert detail["state"] == "queued"
    assert {t["label"]: t["state"] for t in detail["tasks"]}["load"] == "none"
    assert ("tasks.cleared", "api:mara") in _events_all(web)
    assert ("task.state", "api:mara") in _events(web, run_id)

    marked = operator.post(f"{base}/state", json={"state": "success"})
    assert marked.status_code == 200, marked.text
    assert marked.json()["run"] == {"old": "queued", "new": "success"}
    assert [(m["task_id"], m["new"]) for m in marked.json()["changed"]] == [("load", "success")]
    assert web.client("viewer").get(base).json()["state"] == "success"
    assert ("run.state", "api:mara") in _events(web, run_id)
    assert operator.post(f"{base}/state", json={"state": "success"}).status_code == 400  # already
    assert operator.post(f"{base}/state", json={"state": "running"}).status_code == 422


def _events_all(web: WebProject) -> list[tuple[str, str]]:
    with session_scope(web.engine, readonly=True) as session:
        return [(a.event, a.actor) for a in audit_trail(session)]


def test_a_viewer_cannot_write_runs_and_unknown_runs_are_404(web: WebProject) -> None:
    web.dag_file("a.py", dag_source("alpha"))
    web.parse()
    web.client("operator").post("/api/v1/dags/alpha/runs", json={"run_id": "r1"})
    viewer = web.client("viewer")
    base = "/api/v1/dags/alpha/runs"
    assert viewer.post(base, json={}).status_code == 403
    assert viewer.post(f"{base}/r1/state", json={"state": "failed"}).status_code == 403
    assert viewer.post(f"{base}/r1/clear", json={}).status_code == 403
    operator = web.client("operator")
    assert viewer.get(f"{base}/nope").status_code == 404
    assert operator.post(f"{base}/nope/state", json={"state": "failed"}).status_code == 404
    assert operator.post(f"{base}/nope/clear", json={}).status_code == 404
    assert viewer.get("/api/v1/dags/nope/runs/r1").status_code == 404
