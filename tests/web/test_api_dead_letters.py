"""/api/v1/dead-letters: broker messages a watcher could not use, stored as the watcher stores them
(`persistence.dead_letters.add`): listed by status, shown (text or base64, secrets redacted), replayed
through the watcher's own checks and discarded, audited with the API user as actor."""

from __future__ import annotations

import base64
import json

from watcher_helpers import Names

from dagrunner.clock import utcnow
from dagrunner.persistence import dead_letters
from dagrunner.persistence.engine import session_scope

from .conftest import WebProject


def _letter(web: WebProject, names: Names, payload: bytes, reason: str, headers: dict | None = None) -> int:
    with session_scope(web.engine) as session:
        letter = dead_letters.Letter(f"redis_{names.suffix}", names.asset, "redis://127.0.0.1:6379/0",
                                     f"stream {names.stream}", "1-0", payload, headers or {"field": "data"}, reason,
                                     1)  # fmt: skip
        return dead_letters.add(session, letter, actor="test", when=utcnow())


def test_list_show_replay_discard(web: WebProject) -> None:
    names = Names()
    names.dag_file(web.dags)
    assert not web.parse().failures
    good = _letter(web, names, b'{"order_id": 5, "token": "abc"}', "recording failed", {"auth_token": "t", "n": 1})
    bad = _letter(web, names, b"\xff\x00binary", "message is not UTF-8 text")
    gone = _letter(web, names, b"{}", "rejected by validate")
    viewer = web.client("viewer")

    page = viewer.get("/api/v1/dead-letters").json()
    assert [r["id"] for r in page["items"]] == [gone, bad, good] and page["total"] == 3
    assert page["items"][1]["bytes"] == 8 and page["items"][1]["status"] == "dead"
    assert [r["id"] for r in viewer.get("/api/v1/dead-letters", params={"limit": 1, "offset": 1}).json()["items"]] == [
        bad
    ]
    shown = viewer.get(f"/api/v1/dead-letters/{bad}").json()
    assert shown["encoding"] == "base64" and base64.b64decode(shown["payload"]) == b"\xff\x00binary"
    secret = viewer.get(f"/api/v1/dead-letters/{good}").json()
    assert secret["encoding"] == "utf-8" and json.loads(secret["payload"]) == {"order_id": 5, "token": "***"}
    assert secret["headers"] == {"auth_token": "***", "n": 1}

    rita = web.client("operator", username="rita")
    replayed = rita.post(f"/api/v1/dead-letters/{good}/replay")
    assert replayed.status_code == 200 and replayed.json()["replayed"] is True, replayed.text
    assert replayed.json()["asset_event_id"] and replayed.json()["created_runs"][0][0] == names.dag_id
    failed = rita.post(f"/api/v1/dead-letters/{bad}/replay").json()
    assert failed["replayed"] is False and "not UTF-8" in failed["detail"]
    discarded = rita.post(f"/api/v1/dead-letters/{gone}/discard", json={"reason": "test data"})
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    assert discarded.json()["resolved_by"] == "api:rita"

    assert [(r["id"], r["attempts"]) for r in viewer.get("/api/v1/dead-letters").json()["items"]] == [(bad, 2)]
    statuses = {r["id"]: r["status"] for r in viewer.get("/api/v1/dead-letters?status=all").json()["items"]}
    assert statuses == {good: "replayed", bad: "dead", gone: "discarded"}
    assert [r["id"] for r in viewer.get("/api/v1/dead-letters?status=replayed").json()["items"]] == [good]
    again = rita.post(f"/api/v1/dead-letters/{gone}/discard")
    assert again.status_code == 409 and "discarded already" in again.json()["detail"]
    assert rita.post(f"/api/v1/dead-letters/{good}/replay").status_code == 409
    audit = viewer.get("/api/v1/audit", params={"event": "dead_letter.", "actor": "api:rita"}).json()["items"]
    assert [a["event"] for a in audit] == ["dead_letter.discarded", "dead_letter.replayed", "dead_letter.replayed"]


def test_refusals(web: WebProject) -> None:
    names = Names()
    letter = _letter(web, names, b"{}", "rejected")
    viewer = web.client("viewer")
    assert viewer.post(f"/api/v1/dead-letters/{letter}/replay").status_code == 403
    assert viewer.post(f"/api/v1/dead-letters/{letter}/discard").status_code == 403
    assert viewer.get("/api/v1/dead-letters/999999").status_code == 404
    assert viewer.get(f"/api/v1/dead-letters/{2**70}").status_code == 422
    assert viewer.get("/api/v1/dead-letters", params={"status": "lost"}).status_code == 422
    operator = web.client("operator")
    assert operator.post("/api/v1/dead-letters/999999/replay").status_code == 404
    assert operator.post("/api/v1/dead-letters/999999/discard").status_code == 404
    unknown_watcher = operator.post(f"/api/v1/dead-letters/{letter}/replay").json()
    assert unknown_watcher["replayed"] is False and "not declared by any parsed DAG file" in unknown_watcher["detail"]
    assert web.client(None).get("/api/v1/dead-letters").status_code == 401
