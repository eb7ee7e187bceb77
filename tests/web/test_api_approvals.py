"""/api/v1/approvals: the waiting requests of a real run (driven by a real scheduler with the inline
executor until its approval and form tasks wait), answered through the API once, refused clearly, audited
with the API user as actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from dagrunner.clock import SystemClock
from dagrunner.execution import make_executor
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import TaskInstance
from dagrunner.scheduling.dag_source import FixedDagSource
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.scheduler import Scheduler

from .conftest import WebProject

GATED = """
import pendulum
from dagrunner import DAG, Param, task
from dagrunner.operators import ApprovalOperator, HITLEntryOperator

with DAG("gated", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    gate = ApprovalOperator(task_id="gate", subject="Ship it?", assigned_users=["maria"])
    form = HITLEntryOperator(
        task_id="form", subject="Why?",
        params={"reason": Param("none", type="string", minLength=3), "count": Param(1, type="integer", minimum=1),
                "api_token": Param("s3cret", type="string")},
    )

    @task
    def after():
        return 1

    gate >> after()
"""


class Driver:
    """A real scheduler on the web project's DB: ticks until nothing more happens at this moment."""

    def __init__(self, web: WebProject) -> None:
        bag = web.parse()
        assert not bag.failures, bag.failures
        self.dags = bag.dags
        self.web = web
        executor = make_executor("inline", web.settings, actor="test", clock=SystemClock())
        self.scheduler = Scheduler(engine=web.engine, executor=executor, dag_source=FixedDagSource(bag.dags),
                                   clock=SystemClock(), actor="scheduler-test")  # fmt: skip
        self.scheduler.start()

    def trigger(self, dag_id: str) -> str:
        with session_scope(self.web.engine) as session:
            return trigger_run(session, self.dags[dag_id], actor="test", now=SystemClock().now()).run_id

    def settle(self) -> None:
        for _ in range(100):
            report = self.scheduler.tick(SystemClock().now())
            if not report.did_work and not self.scheduler.has_pending_work:
                return

    def state(self, task_id: str) -> str:
        with session_scope(self.web.engine, readonly=True) as session:
            return session.scalars(select(TaskInstance.state).where(TaskInstance.task_id == task_id)).one().value


@pytest.fixture
def waiting(web: WebProject) -> Iterator[tuple[Driver, str]]:
    web.dag_file("gated.py", GATED)
    driver = Driver(web)
    run_id = driver.trigger("gated")
    driver.settle()
    assert (driver.state("gate"), driver.state("form")) == ("deferred", "deferred")
    yield driver, run_id
    driver.scheduler.shutdown(1.0)


def _items(web: WebProject, **params: Any) -> list[dict[str, Any]]:
    response = web.client("viewer").get("/api/v1/approvals", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_the_list_shows_each_request_with_its_options_and_form_secrets_masked(
    web: WebProject, waiting: tuple[Driver, str]
) -> None:
    _driver, run_id = waiting
    page = web.client("viewer").get("/api/v1/approvals").json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 100, 0)
    gate, form = sorted(page["items"], key=lambda r: r["task_id"] != "gate")
    assert (gate["dag_id"], gate["run_id"], gate["task_id"], gate["map_index"]) == ("gated", run_id, "gate", -1)
    assert gate["options"] == ["Approve", "Reject"] and gate["assigned_users"] == ["maria"]
    assert gate["subject"] == "Ship it?" and isinstance(gate["id"], int) and gate["since"]
    assert form["params"]["count"]["type"] == "integer" and form["params"]["count"]["default"] == 1
    assert form["params"]["api_token"]["default"] == "***"  # the field stays, its secret default does not
    assert _items(web, dag_id="other") == []
    second = web.client("viewer").get("/api/v1/approvals", params={"limit": 1, "offset": 1}).json()
    assert second["total"] == 2 and len(second["items"]) == 1 and second["items"][0]["id"] != page["items"][0]["id"]


def test_approve_by_key_once_audited_as_the_api_user_and_a_second_answer_is_refused(
    web: WebProject, waiting: tuple[Driver, str]
) -> None:
    driver, run_id = waiting
    olga = web.client("operator", username="olga")
    body = {"dag_id": "gated", "run_id": run_id, "task_id": "gate", "action": "approve", "comment": "fine"}
    done = olga.post("/api/v1/approvals/respond", json=body)
    assert done.status_code == 200, done.text
    assert done.json() == {"dag_id": "gated", "run_id": run_id, "task_id": "gate", "map_index": -1,
                           "chosen_options": ["Approve"], "params_input": {}, "responded_by": "olga",
                           "comment": "fine"}  # fmt: skip
    assert [r["task_id"] for r in _items(web)] == ["form"]
    again = olga.post("/api/v1/approvals/respond", json={**body, "action": "reject"})
    assert again.status_code == 400 and "already answered by olga" in again.json()["detail"]
    audit = web.client("viewer").get("/api/v1/audit", params={"event": "hitl.answered"}).json()["items"]
    assert [(a["actor"], a["task_id"]) for a in audit] == [("api:olga", "gate")]
    assert driver.state("gate") == "scheduled"  # woken: the scheduler queues its resuming try


def test_respond_by_id_fills_the_form_checked_against_its_params(web: WebProject, waiting: tuple[Driver, str]) -> None:
    _driver, _run_id = waiting
    (form,) = [r for r in _items(web) if r["task_id"] == "form"]
    operator = web.client("operator")
    bad = operator.post("/api/v1/approvals/respond", json={"id": form["id"], "action": "respond",
                        "chosen_options": ["OK"], "params_input": {"reason": "no", "count": 2}})  # fmt: skip
    assert bad.status_code == 400 and "reason" in bad.json()["detail"]
    unknown = operator.post("/api/v1/approvals/respond", json={"id": form["id"], "action": "respond",
                            "chosen_options": ["OK"], "params_input": {"nope": 1}})  # fmt: skip
    assert unknown.status_code == 400 and "has no form field nope" in unknown.json()["detail"]
    done = operator.post("/api/v1/approvals/respond", json={"id": form["id"], "action": "respond",
                         "chosen_options": ["OK"], "params_input": {"reason": "because", "count": 3,
                                                                    "api_token": "t0k"}})  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["params_input"] == {"reason": "because", "count": 3, "api_token": "***"}


def test_a_viewer_cannot_answer_and_unknown_requests_are_refused(web: WebProject, waiting: tuple[Driver, str]) -> None:
    _driver, run_id = waiting
    body = {"dag_id": "gated", "run_id": run_id, "task_id": "gate", "action": "approve"}
    assert web.client("viewer").post("/api/v1/approvals/respond", json=body).status_code == 403
    assert web.client(None).get("/api/v1/approvals").status_code == 401
    operator = web.client("operator")
    assert operator.post("/api/v1/approvals/respond", json={"id": 999999, "action": "approve"}).status_code == 404
    missing = operator.post("/api/v1/approvals/respond", json={**body, "task_id": "after"})
    assert missing.status_code == 400 and "not waiting for an answer" in missing.json()["detail"]
    assert operator.post("/api/v1/approvals/respond", json={"action": "approve"}).status_code == 400
    assert operator.post("/api/v1/approvals/respond", json={**body, "action": "maybe"}).status_code == 422
    assert len(_items(web)) == 2
