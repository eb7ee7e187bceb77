"""/api/v1/dags: the list (search, filters, paging), detail, pause through PATCH (audited), graph and grid."""

from __future__ import annotations

import pytest

from .conftest import WebProject
from .dag_runs import PIPELINE, dag_source, run_to_end


def test_list_filters_searches_and_pages(web: WebProject) -> None:
    web.dag_file("a.py", dag_source("alpha_sales", tags=("sales",), schedule="@daily"))
    web.dag_file("b.py", dag_source("beta_sales", tags=("sales", "eu")))
    web.dag_file("c.py", dag_source("gamma", tags=("ops",), schedule="0 6 * * *"))
    web.dag_file("broken.py", "from dagrunner import DAG\nimport nothing_here_at_all\n")
    web.parse()
    client = web.client("viewer")

    page = client.get("/api/v1/dags").json()
    assert [d["dag_id"] for d in page["items"]] == ["alpha_sales", "beta_sales", "gamma"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 100, 0)
    alpha = page["items"][0]
    assert alpha["schedule"] and "day" in alpha["schedule"]
    assert alpha["next_run"] is not None and alpha["next_run"].endswith("+00:00")
    assert alpha["paused"] is False and alpha["is_active"] is True and alpha["tags"] == ["sales"]
    assert alpha["recent_runs"] == [] and alpha["import_error"] is None and alpha["file"].endswith("a.py")

    def ids(**params: object) -> list[str]:
        response = client.get("/api/v1/dags", params=params)
        assert response.status_code == 200, response.text
        return [d["dag_id"] for d in response.json()["items"]]

    assert ids(search="SALES") == ["alpha_sales", "beta_sales"]
    assert ids(search="ops") == ["gamma"]  # a tag matches too
    assert ids(tag="eu") == ["beta_sales"]
    assert ids(limit=1, offset=1) == ["beta_sales"]
    assert client.get("/api/v1/dags", params={"limit": 1}).json()["total"] == 3
    assert client.get("/api/v1/dags", params={"limit": 0}).status_code == 422

    errors = client.get("/api/v1/import-errors").json()
    assert errors["total"] == 1
    assert errors["items"][0]["file"].endswith("broken.py") and "nothing_here_at_all" in errors["items"][0]["error"]


def test_pause_through_patch_shows_in_the_list_and_the_audit_log(web: WebProject) -> None:
    web.dag_file("a.py", dag_source("alpha"))
    web.dag_file("b.py", dag_source("beta"))
    web.parse()
    operator = web.client("operator", username="olga")

    response = operator.patch("/api/v1/dags/alpha", json={"is_paused": True})
    assert response.status_code == 200, response.text
    assert response.json()["paused"] is True and response.json()["dag_id"] == "alpha"

    viewer = web.client("viewer")
    assert [d["dag_id"] for d in viewer.get("/api/v1/dags", params={"paused": True}).json()["items"]] == ["alpha"]
    assert [d["dag_id"] for d in viewer.get("/api/v1/dags", params={"paused": False}).json()["items"]] == ["beta"]

    from dagrunner.persistence.engine import session_scope
    from dagrunner.persistence.views import audit_trail

    with session_scope(web.engine, readonly=True) as session:
        paused = [a for a in audit_trail(session, dag_id="alpha") if a.event == "dag.paused"]
    assert [(a.actor, a.old_state, a.new_state) for a in paused] == [("api:olga", "unpaused", "paused")]

    assert operator.patch("/api/v1/dags/alpha", json={"is_paused": False}).json()["paused"] is False
    assert operator.patch("/api/v1/dags/nope", json={"is_paused": True}).status_code == 404
    assert operator.patch("/api/v1/dags/alpha", json={"is_paused": "maybe"}).status_code == 422


def test_a_viewer_cannot_pause_and_unknown_dags_are_404(web: WebProject) -> None:
    web.dag_file("a.py", dag_source("alpha"))
    web.parse()
    viewer = web.client("viewer")
    assert viewer.patch("/api/v1/dags/alpha", json={"is_paused": True}).status_code == 403
    for path in ("/api/v1/dags/nope", "/api/v1/dags/nope/graph", "/api/v1/dags/nope/grid"):
        assert viewer.get(path).status_code == 404, path
    assert viewer.get("/api/v1/dags/alpha/graph", params={"run_id": "nope"}).status_code == 404
    assert web.client(None).get("/api/v1/dags").status_code == 401


def test_detail_has_tasks_and_the_trigger_form_with_secrets_redacted(web: WebProject) -> None:
    web.dag_file("pipeline.py", PIPELINE)
    web.parse()
    detail = web.client("viewer").get("/api/v1/dags/pipeline").json()
    assert detail["description"] == "An ETL" and detail["doc_md"] == "# Pipeline" and detail["max_active_runs"] >= 1
    assert detail["params"]["rows"] == {
        "default": 10, "description": None, "schema": {"type": "integer", "default": 10}, "title": "rows"
    }  # fmt: skip
    assert detail["params"]["api_token"]["default"] == "***"
    assert detail["params"]["api_token"]["schema"]["default"] == "***"
    tasks = {t["task_id"]: t for t in detail["tasks"]}
    assert [t["task_id"] for t in detail["tasks"]][0] == "extract"
    assert tasks["transform"]["is_mapped"] is True and tasks["transform"]["upstream"] == ["extract"]
    assert tasks["extract"]["downstream"] == ["reporting.report", "transform"]
    assert tasks["reporting.report"]["group"] == "reporting"
    assert tasks["load"]["operator"] and tasks["load"]["trigger_rule"] == "all_success"


def test_graph_layers_and_a_runs_states(web: WebProject, monkeypatch: pytest.MonkeyPatch) -> None:
    web.dag_file("pipeline.py", PIPELINE)
    web.parse()
    client = web.client("viewer")
    graph = client.get("/api/v1/dags/pipeline/graph").json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert {t: n["layer"] for t, n in nodes.items()} == {
        "extract": 0, "transform": 1, "reporting.report": 1, "load": 2
    }  # fmt: skip
    assert sorted(n["order"] for n in nodes.values() if n["layer"] == 1) == [0, 1]
    assert nodes["reporting.report"]["label"] == "report" and all(n["state"] is None for n in nodes.values())
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {
        ("extract", "transform"), ("extract", "reporting.report"), ("transform", "load")
    }  # fmt: skip
    assert client.get("/api/v1/dags/pipeline/graph").json() == graph  # stable from one poll to the next

    run = run_to_end(web, monkeypatch, "pipeline")
    states = {n["id"]: n["state"] for n in client.get("/api/v1/dags/pipeline/graph",
                                                     params={"run_id": run["run_id"]}).json()["nodes"]}  # fmt: skip
    assert states == {"extract": "success", "transform": "success", "reporting.report": "success", "load": "failed"}


def test_grid_summarizes_mapped_tasks_and_lists_runs_oldest_first(
    web: WebProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    web.dag_file("pipeline.py", PIPELINE)
    web.parse()
    first = run_to_end(web, monkeypatch, "pipeline")
    second = run_to_end(web, monkeypatch, "pipeline")
    grid = web.client("viewer").get("/api/v1/dags/pipeline/grid").json()
    assert grid["dag_id"] == "pipeline"
    assert [t["task_id"] for t in grid["tasks"]][0] == "extract" and grid["tasks"][-1]["task_id"] == "load"
    assert [r["run_id"] for r in grid["runs"]] == [first["run_id"], second["run_id"]]
    assert grid["runs"][0]["conf"] == {} and grid["runs"][0]["state"] == "failed"
    cells = grid["cells"][first["run_id"]]
    assert cells["transform"] == {"state": "success", "try_number": 1, "map_count": 3}
    assert cells["load"] == {"state": "failed", "try_number": 1, "map_count": None}
    one = web.client("viewer").get("/api/v1/dags/pipeline/grid", params={"limit": 1}).json()
    assert [r["run_id"] for r in one["runs"]] == [second["run_id"]]
    listed = web.client("viewer").get("/api/v1/dags").json()["items"][0]["recent_runs"]
    assert [r["run_id"] for r in listed] == [second["run_id"], first["run_id"]]
