"""/api/v1/audit: the audit log newest first, every filter `dagrunner audit` has plus task, actor and until,
paged, details redacted; only signed-in users read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dagrunner.persistence.audit import record_event
from dagrunner.persistence.engine import session_scope

from .conftest import WebProject

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNTIL = (T0 + timedelta(hours=4)).isoformat()  # creating the test's users is audited too, later


def _seed(web: WebProject) -> None:
    rows = [
        ("pool.created", "alice@host: cli", "d1", "r1", "t1", {"pool": "p", "password": "hunter2"}),
        ("watcher.started", "scheduler@host", None, None, None, None),
        ("watcher.stopped", "scheduler@host", None, None, None, {"nested": {"api_key": "k", "ok": 1}}),
        ("hitl.answered", "api:olga", "d1", "r2", "t2", None),
        ("hitl.answered", "api:olga", "d2", "r3", "t1", None),
    ]
    with session_scope(web.engine) as session:
        for i, (event, actor, dag_id, run_id, task_id, detail) in enumerate(rows):
            record_event(session, event, actor=actor, when=T0 + timedelta(hours=i), dag_id=dag_id, run_id=run_id,
                         task_id=task_id, detail=detail, reason=f"row {i}")  # fmt: skip


def _reasons(web: WebProject, **params: object) -> list[str]:
    response = web.client("viewer").get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    return [r["reason"] for r in response.json()["items"] if (r["reason"] or "").startswith("row ")]


def test_newest_first_with_the_cli_shape_and_secrets_masked(web: WebProject) -> None:
    _seed(web)
    page = web.client("viewer").get("/api/v1/audit", params={"until": UNTIL}).json()
    assert page["total"] == 5 and (page["limit"], page["offset"]) == (100, 0)
    assert [r["reason"] for r in page["items"]] == ["row 4", "row 3", "row 2", "row 1", "row 0"]
    first = page["items"][-1]
    assert set(first) == {"ts", "actor", "event", "dag_id", "run_id", "task_id", "map_index", "try_number",
                          "old_state", "new_state", "reason", "detail"}  # fmt: skip
    assert first["ts"] == T0.isoformat() and first["detail"] == {"pool": "p", "password": "***"}
    assert page["items"][2]["detail"] == {"nested": {"api_key": "***", "ok": 1}}


def test_each_filter_narrows_the_list(web: WebProject) -> None:
    _seed(web)
    assert _reasons(web, dag_id="d1") == ["row 3", "row 0"]
    assert _reasons(web, run_id="r3") == ["row 4"]
    assert _reasons(web, task_id="t1") == ["row 4", "row 0"]
    assert _reasons(web, event="watcher.") == ["row 2", "row 1"]
    assert _reasons(web, event="watcher") == []  # no dot: the exact event only
    assert _reasons(web, event="hitl.answered", actor="api:olga", dag_id="d2") == ["row 4"]
    assert _reasons(web, since=(T0 + timedelta(hours=1)).isoformat(), until=(T0 + timedelta(hours=3)).isoformat()) == [
        "row 3", "row 2", "row 1"
    ]  # fmt: skip
    naive = (T0 + timedelta(hours=4)).replace(tzinfo=None).isoformat()  # naive times are UTC, as in the CLI
    assert _reasons(web, since=naive) == ["row 4"]
    offset = (T0 + timedelta(hours=4)).astimezone(ZoneInfo("Asia/Tokyo")).isoformat()
    assert _reasons(web, until=offset, since=T0.isoformat()) == ["row 4", "row 3", "row 2", "row 1", "row 0"]


def test_paging_walks_back_through_the_log(web: WebProject) -> None:
    _seed(web)
    client = web.client("viewer")
    seen = []
    for offset in (0, 1, 2):
        page = client.get("/api/v1/audit", params={"actor": "scheduler@host", "limit": 1, "offset": offset}).json()
        assert page["total"] == 2 and (page["limit"], page["offset"]) == (1, offset)
        seen += [r["reason"] for r in page["items"]]
    assert seen == ["row 2", "row 1"]


def test_bad_values_are_refused_and_anonymous_callers_too(web: WebProject) -> None:
    client = web.client("viewer")
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"since": "yesterday"}, {"dag_id": "a\x00b"}):
        assert client.get("/api/v1/audit", params=params).status_code == 422, params
    too_late = client.get("/api/v1/audit", params={"until": "9999-12-31T23:00:00-05:00"})
    assert too_late.status_code == 400 and "out of range" in too_late.json()["detail"]
    assert web.client(None).get("/api/v1/audit").status_code == 401


def test_writes_through_the_api_are_audited_with_the_api_user(web: WebProject) -> None:
    web.client("operator", username="pat").put("/api/v1/pools/etl", json={"slots": 3})
    (record,) = web.client("viewer").get("/api/v1/audit", params={"event": "pool.created"}).json()["items"]
    assert record["actor"] == "api:pat" and record["detail"]["pool"] == "etl"
