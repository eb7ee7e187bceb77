"""/api/v1/pools: list, create/change with PUT, delete, through `scheduling.pools` (audited as api:<user>);
viewers read only; the rules of `pools set|delete` hold (no default_pool delete, slots needed to create)."""

from __future__ import annotations

from .conftest import WebProject


def _pools(web: WebProject, **params: object) -> dict:
    response = web.client("viewer").get("/api/v1/pools", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_create_change_list_and_delete_audited_as_the_api_user(web: WebProject) -> None:
    pat = web.client("operator", username="pat")
    created = pat.put("/api/v1/pools/etl", json={"slots": 3, "description": "the warehouse"})
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True and created.json()["changed"]["slots"] == {"old": None, "new": 3}
    assert created.json()["item"] == {"name": "etl", "slots": 3, "used": 0, "queued": 0, "scheduled": 0,
                                      "open_slots": 3, "description": "the warehouse", "breaker": None}  # fmt: skip
    changed = pat.put("/api/v1/pools/etl", json={"slots": 5, "breaker_failures": 2, "breaker_cooldown_s": 60})
    assert changed.status_code == 200 and changed.json()["created"] is False
    assert changed.json()["changed"]["slots"] == {"old": 3, "new": 5}
    assert changed.json()["item"]["breaker"]["state"] == "closed" and changed.json()["item"]["description"]
    unchanged = pat.put("/api/v1/pools/etl", json={"slots": 5})
    assert unchanged.status_code == 200 and unchanged.json()["changed"] == {}

    page = _pools(web)
    assert [p["name"] for p in page["items"]] == ["default_pool", "etl"] and page["total"] == 2
    assert [p["name"] for p in _pools(web, limit=1, offset=1)["items"]] == ["etl"]

    assert pat.delete("/api/v1/pools/etl").status_code == 204
    assert [p["name"] for p in _pools(web)["items"]] == ["default_pool"]
    audit = web.client("viewer").get("/api/v1/audit", params={"event": "pool."}).json()["items"]
    assert [(a["event"], a["actor"]) for a in audit] == [
        ("pool.deleted", "api:pat"), ("pool.updated", "api:pat"), ("pool.created", "api:pat")
    ]  # fmt: skip


def test_refusals(web: WebProject) -> None:
    operator = web.client("operator")
    needs_slots = operator.put("/api/v1/pools/new", json={"description": "x"})
    assert needs_slots.status_code == 400 and "give --slots N" in needs_slots.json()["detail"]
    bad_name = operator.put("/api/v1/pools/bad name", json={"slots": 1})
    assert bad_name.status_code == 400 and "pool name" in bad_name.json()["detail"]
    assert operator.put("/api/v1/pools/p", json={"slots": 0}).status_code == 422
    assert operator.put("/api/v1/pools/p", json={"slots": 2**40}).status_code == 422
    both = operator.put("/api/v1/pools/p", json={"slots": 1, "breaker_failures": 1, "no_breaker": True})
    assert both.status_code == 400
    assert operator.delete("/api/v1/pools/default_pool").status_code == 400
    assert operator.delete("/api/v1/pools/nope").status_code == 404
    viewer = web.client("viewer")
    assert viewer.put("/api/v1/pools/etl", json={"slots": 1}).status_code == 403
    assert viewer.delete("/api/v1/pools/default_pool").status_code == 403
    assert web.client(None).get("/api/v1/pools").status_code == 401
    assert [p["name"] for p in _pools(web)["items"]] == ["default_pool"]
