"""Human approval on the fake clock, on SQLite and PostgreSQL: a waiting approval is `deferred` with no
try running and no slot held; an answer, a timeout or an escalation wakes it for a new try that uses no
retry; bad answers are refused with nothing changed."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dagrunner.errors import ApprovalError
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import HITLRequest, TaskInstance, XCom
from dagrunner.scheduling.approvals import answer
from dagrunner.scheduling.operations import explain_instance, trigger_run
from dagrunner.scheduling.scheduler import Scheduler

from .harness import START, Harness

APPROVAL = """
import pendulum
from datetime import timedelta
from pathlib import Path
from dagrunner import DAG, Param, task
from dagrunner.operators import ApprovalOperator, HITLBranchOperator, HITLEntryOperator, HITLOperator

LEDGER = Path(LEDGER_PATH)

def note(line):
    with LEDGER.open("a") as fh:
        fh.write(line + "\\n")

def escalate(context):
    note(f"escalated try={context['ti'].try_number}")

with DAG("approve", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params={"amount": 100}):
    @task
    def prepare():
        note("prepare")
        return 7

    gate = ApprovalOperator(
        task_id="gate", subject="Pay {{ params.amount }}?", body="n={{ ti.xcom_pull(task_ids='prepare') }}",
        assigned_users=["maria"], execution_timeout=timedelta(hours=1), priority_weight=10, EXTRA
    )

    @task
    def pay(answer):
        note(f"pay {answer['chosen_options']} by {answer['responded_by']}")

    @task
    def after():
        note("after")

    @task(priority_weight=1)
    def other():
        note("other")

    prepare() >> gate
    pay(gate.output) >> after()
    other()

    pick = HITLBranchOperator(task_id="pick", subject="Which way?", options=["left", "right"])
    left = task(task_id="left")(lambda: note("left"))()
    right = task(task_id="right")(lambda: note("right"))()
    pick >> [left, right]

    form = HITLEntryOperator(
        task_id="form", subject="Why?",
        params={"reason": Param("none", type="string", minLength=3), "count": Param(1, type="integer", minimum=1)},
    )
    several = HITLOperator(task_id="several", subject="Sizes", options=["s", "m", "l"], multiple=MULTIPLE)
"""


def _write(h: Harness, extra: str = "", multiple: bool = False) -> Path:
    ledger = h.root / "ledger.txt"
    text = APPROVAL.replace("LEDGER_PATH", repr(str(ledger))).replace("EXTRA", extra or "retries=0")
    h.write_dag("approve.py", text.replace("MULTIPLE", repr(multiple)))
    return ledger


def _trigger(h: Harness, sched: Scheduler) -> str:
    with session_scope(h.engine) as s:
        return trigger_run(s, sched.dag_source.dags()["approve"], actor="test", now=h.clock.now()).run_id


def _ti(h: Harness, task_id: str) -> TaskInstance:
    with session_scope(h.engine, readonly=True) as s:
        return s.scalars(select(TaskInstance).where(TaskInstance.task_id == task_id)).one()


def _request(h: Harness, task_id: str) -> HITLRequest:
    with session_scope(h.engine, readonly=True) as s:
        return s.scalars(select(HITLRequest).where(HITLRequest.task_id == task_id)).one()


def _answer(h: Harness, run_id: str, task_id: str, options: list[str], **kw: object) -> None:
    with session_scope(h.engine) as s:
        answer(s, "approve", run_id, task_id, options=options, responder=str(kw.pop("responder", "maria")),
               actor="maria@host: test", now=h.clock.now(), **kw)  # type: ignore[arg-type]  # fmt: skip


def _lines(ledger: Path) -> list[str]:
    return ledger.read_text().splitlines() if ledger.exists() else []


def test_an_approval_defers_holding_no_slot_and_resumes_with_the_answer(h: Harness) -> None:
    """Parallelism 1: while `gate` waits for a person, the one slot runs the other work."""
    ledger = _write(h)
    h.settings = dataclasses.replace(h.settings, parallelism=1)
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    gate = _ti(h, "gate")
    assert gate.state.value == "deferred" and (gate.try_number, gate.max_tries) == (1, 1)
    assert gate.waiting_since is not None and gate.next_method is None
    assert {"prepare", "other"} <= set(_lines(ledger))  # the slot ran other work while gate waited
    request = _request(h, "gate")
    assert (request.subject, request.body, request.options) == ("Pay 100?", "n=7", ["Approve", "Reject"])
    assert request.assigned_users == ["maria"] and request.timeout_at == request.created_at + timedelta(hours=1)
    assert [t.state.value for t in h.tries("approve", "gate")] == ["deferred"]
    assert h.audit(event="hitl.requested", task_id="gate")[0].detail["subject"] == "Pay 100?"

    h.advance(30)
    assert _ti(h, "gate").state.value == "deferred"  # nothing wakes it but an answer
    _answer(h, run_id, "gate", ["Approve"], comment="{{ 7 * 7 }} looks fine")
    h.advance(2)  # the scheduler's scan notices the answer
    states = h.states("approve")
    assert (states["gate"], states["pay"], states["after"]) == ("success", "success", "success")
    assert "pay ['Approve'] by maria" in _lines(ledger)
    assert [t.state.value for t in h.tries("approve", "gate")] == ["deferred", "success"]
    with session_scope(h.engine, readonly=True) as s:
        value = s.scalars(select(XCom.value).where(XCom.task_id == "gate", XCom.key == "return_value")).one()
    assert value == {"chosen_options": ["Approve"], "params_input": {}, "responded_by": "maria",
                     "comment": "{{ 7 * 7 }} looks fine"}  # the comment stays data, never rendered  # fmt: skip
    (answered,) = h.audit(event="hitl.answered")
    assert answered.actor == "maria@host: test" and answered.detail["chosen_options"] == ["Approve"]
    assert _ti(h, "gate").max_tries == 1  # waiting used no retry


def test_reject_skips_everything_downstream_and_the_approval_succeeds(h: Harness) -> None:
    ledger = _write(h)
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    _answer(h, run_id, "gate", ["Reject"], comment="no")
    h.advance(2)
    states = h.states("approve")
    assert (states["gate"], states["pay"], states["after"]) == ("success", "skipped", "skipped")
    assert not any(line.startswith("pay") for line in _lines(ledger))


def test_a_person_picks_the_branch(h: Harness) -> None:
    ledger = _write(h)
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    _answer(h, run_id, "pick", ["right"])
    h.advance(2)
    states = h.states("approve")
    assert (states["pick"], states["left"], states["right"]) == ("success", "skipped", "success")
    assert "right" in _lines(ledger) and "left" not in _lines(ledger)


def test_form_values_are_checked_against_their_params_and_bad_ones_change_nothing(h: Harness) -> None:
    _write(h)
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    with pytest.raises(ApprovalError, match=r"form value reason='no' must be at least 3 characters"):
        _answer(h, run_id, "form", ["OK"], params={"reason": "no"})
    with pytest.raises(ApprovalError, match=r"form value count=0 must be at least 1"):
        _answer(h, run_id, "form", ["OK"], params={"count": "0"})
    with pytest.raises(ApprovalError, match=r"has no form field colour; its fields: count, reason"):
        _answer(h, run_id, "form", ["OK"], params={"colour": "red"})
    assert _ti(h, "form").state.value == "deferred" and _request(h, "form").responded_at is None
    assert not h.audit(event="hitl.answered")
    _answer(h, run_id, "form", ["OK"], params={"reason": "because", "count": "3"})
    h.advance(2)
    assert h.states("approve")["form"] == "success"
    assert _request(h, "form").response["params_input"] == {"reason": "because", "count": 3}


def test_bad_answers_are_refused_with_one_clear_line(h: Harness) -> None:
    _write(h)
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    with pytest.raises(ApprovalError, match=r"unknown option 'maybe' for gate .*choose one of: Approve, Reject"):
        _answer(h, run_id, "gate", ["maybe"])
    with pytest.raises(ApprovalError, match=r"takes one option \(multiple=False\), got 2"):
        _answer(h, run_id, "several", ["s", "m"])
    with pytest.raises(ApprovalError, match=r"pick in run .* is not an approval"):
        _answer(h, run_id, "pick", ["Approve"])
    with pytest.raises(ApprovalError, match=r"prepare in run .* is success, not waiting for an answer"):
        _answer(h, run_id, "prepare", ["Approve"])
    with pytest.raises(ApprovalError, match=r"no task instance nope"):
        _answer(h, run_id, "nope", ["Approve"])
    _answer(h, run_id, "gate", ["Approve"])
    with pytest.raises(ApprovalError, match=r"already answered by maria at 2026-01-05T12:00:00"):
        _answer(h, run_id, "gate", ["Reject"], responder="eve")
    assert len(h.audit(event="hitl.answered")) == 1


def test_several_options_when_multiple(h: Harness) -> None:
    _write(h, multiple=True)
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    _answer(h, run_id, "several", ["s", "l"])
    h.advance(2)
    assert _request(h, "several").response["chosen_options"] == ["s", "l"]
    assert h.states("approve")["several"] == "success"


def test_at_the_timeout_the_defaults_answer(h: Harness) -> None:
    ledger = _write(h, extra='defaults="Approve"')
    sched = h.start()
    _trigger(h, sched)
    h.tick()
    h.advance(3599)
    assert _ti(h, "gate").state.value == "deferred"
    h.advance(1)
    assert h.states("approve")["pay"] == "success"
    assert "pay ['Approve'] by timeout" in _lines(ledger)
    request = _request(h, "gate")
    assert request.responded_by == "timeout" and request.responded_at == START + timedelta(hours=1)
    assert len(h.audit(event="hitl.timed_out")) == 1


def test_at_the_timeout_without_defaults_the_task_fails(h: Harness) -> None:
    _write(h)
    sched = h.start()
    _trigger(h, sched)
    h.tick()
    h.advance(3600)
    states = h.states("approve")
    assert (states["gate"], states["pay"], states["after"]) == ("failed", "upstream_failed", "upstream_failed")
    (timed_out,) = h.audit(event="hitl.timed_out")
    assert "no answer by its timeout" in (timed_out.reason or "")
    # the failed task is no longer waiting: an answer now is refused
    with pytest.raises(ApprovalError, match="is failed, not waiting"):
        _answer(h, h.runs("approve")[0].run_id, "gate", ["Approve"])


def test_escalation_runs_once_and_the_task_waits_again(h: Harness) -> None:
    ledger = _write(h, extra="escalate_after=timedelta(minutes=10), on_escalate=escalate")
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    h.advance(599)
    assert not any(line.startswith("escalated") for line in _lines(ledger))
    h.advance(1)
    assert [line for line in _lines(ledger) if line.startswith("escalated")] == ["escalated try=2"]
    gate = _ti(h, "gate")
    assert gate.state.value == "deferred" and gate.max_tries == 2
    assert gate.waiting_since == START  # the wait began at the first ask
    assert _request(h, "gate").escalated_at == START + timedelta(minutes=10)
    h.advance(600)
    h.advance(600)
    assert [line for line in _lines(ledger) if line.startswith("escalated")] == ["escalated try=2"]
    assert len(h.audit(event="hitl.escalated")) == 1
    _answer(h, run_id, "gate", ["Approve"])
    h.advance(2)
    assert h.states("approve")["pay"] == "success"
    assert [t.state.value for t in h.tries("approve", "gate")] == ["deferred", "deferred", "success"]


def test_tasks_why_says_who_is_asked_since_when_and_until_when(h: Harness) -> None:
    _write(h)
    sched = h.start()
    run_id = _trigger(h, sched)
    h.tick()
    with session_scope(h.engine, readonly=True) as s:
        why = explain_instance(s, sched.dag_source.dags()["approve"], run_id, "gate", -1, h.clock.now())
    reasons = [c.reason for c in why.checks if c.rule == "approval"]
    assert reasons and reasons[0].startswith(
        "waiting for approval from maria since 2026-01-05T12:00:00+00:00 (times out at 2026-01-05T13:00:00+00:00)"
    )
