"""/api/v1/assets: the assets the parsed DAG files declare, their events (paged, extra redacted), and an
event sent by hand (`assets emit`): recorded through `record_asset_event`, so it triggers the consuming DAG
and is audited with the API user as actor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from watcher_helpers import Names

from .conftest import WebProject


@pytest.fixture
def names(web: WebProject) -> Iterator[Names]:
    names = Names()
    names.dag_file(web.dags)
    assert not web.parse().failures
    yield names


def test_list_assets_with_consumers(web: WebProject, names: Names) -> None:
    page = web.client("viewer").get("/api/v1/assets").json()
    by_name = {a["name"]: a for a in page["items"]}
    assert page["total"] == len(page["items"]) == 1 and set(by_name) == {names.asset}  # ghost: no DAG uses it
    orders = by_name[names.asset]
    assert orders["consumers"] == [names.dag_id] and orders["kind"] == "asset" and orders["events"] == 0
    assert [w["name"] for w in orders["watchers"]] == [f"redis_{names.suffix}", f"rabbit_{names.suffix}"]
    assert web.client("viewer").get("/api/v1/assets", params={"offset": 1}).json()["items"] == []


def test_emit_triggers_the_consumer_and_events_are_listed_newest_first(web: WebProject, names: Names) -> None:
    pat = web.client("operator", username="pat")
    first = pat.post(f"/api/v1/assets/{names.asset}/events", json={"extra": {"rows": 1, "password": "x"}})
    assert first.status_code == 201, first.text
    assert first.json()["asset"] == names.asset and [r["dag_id"] for r in first.json()["created_runs"]] == [
        names.dag_id
    ]
    second = pat.post(f"/api/v1/assets/{names.asset}/events", json={})
    assert second.status_code == 201 and second.json()["id"] > first.json()["id"]

    viewer = web.client("viewer")
    page = viewer.get(f"/api/v1/assets/{names.asset}/events").json()
    assert [e["id"] for e in page["items"]] == [second.json()["id"], first.json()["id"]] and page["total"] == 2
    assert page["items"][1]["extra"] == {"rows": 1, "password": "***"}
    assert page["items"][1]["source"] == {"kind": "api", "user": "pat"}
    older = viewer.get(f"/api/v1/assets/{names.asset}/events", params={"limit": 1, "offset": 1}).json()
    assert [e["id"] for e in older["items"]] == [first.json()["id"]] and older["total"] == 2
    assert viewer.get("/api/v1/assets").json()["items"][0]["events"] == 2
    audit = viewer.get("/api/v1/audit", params={"event": "asset.event"}).json()["items"]
    assert {a["actor"] for a in audit} == {"api:pat"} and audit[1]["detail"]["extra"]["password"] == "***"


def test_refusals(web: WebProject, names: Names) -> None:
    operator = web.client("operator")
    unknown = operator.post("/api/v1/assets/nope/events", json={})
    assert unknown.status_code == 404 and "no DAG declares an asset named 'nope'" in unknown.json()["detail"]
    assert web.client("viewer").get("/api/v1/assets/nope/events").status_code == 404
    assert web.client("viewer").get("/api/v1/assets/s3://bucket/key/events").status_code == 404
    assert web.client("viewer").post(f"/api/v1/assets/{names.asset}/events", json={}).status_code == 403
    assert operator.post(f"/api/v1/assets/{names.asset}/events", json={"extra": [1]}).status_code == 422
    assert operator.post(f"/api/v1/assets/{names.asset}/events", json={"extra": {"a": "\x00"}}).status_code == 400
    assert web.client(None).get("/api/v1/assets").status_code == 401
    assert web.client("viewer").get(f"/api/v1/assets/{names.asset}/events").json()["total"] == 0
