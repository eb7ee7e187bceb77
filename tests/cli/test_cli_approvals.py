"""`dagrunner approvals list` and `tasks approve|reject|respond` on the loan example: listed with the
rendered subject, answered once, refused clearly (one line, exit non-zero, nothing changed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def waiting(run_cli, project: Path) -> str:
    """The loan example alone, triggered and run until its manager review waits; returns the run id."""
    for path in (project / "dags").glob("*.py"):
        if path.name != "loan_approval.py":
            path.unlink()
    assert (
        run_cli("dags", "trigger", "loan_approval", "--run-id", "ada", "--conf", '{"applicant": "Ada"}').exit_code == 0
    )
    for _ in range(5):
        assert run_cli("scheduler", "--once", "--executor", "inline").exit_code == 0
        if "manager_review" in run_cli("approvals", "list").output:
            break
    return "ada"


def _states(run_cli, run_id: str) -> dict[str, str]:
    return json.loads(run_cli("tasks", "states", "loan_approval", run_id, "--json").output)


def test_approvals_list_shows_who_is_asked_and_the_rendered_subject(run_cli, waiting: str) -> None:
    (row,) = json.loads(run_cli("approvals", "list", "--json").output)
    assert (row["dag_id"], row["run_id"], row["task_id"], row["map_index"]) == (
        "loan_approval",
        "ada",
        "manager_review",
        -1,
    )
    assert row["subject"] == "Loan for Ada: 25000" and row["assigned_users"] == ["manager"]
    assert row["options"] == ["Approve", "Reject"] and row["since"] and row["timeout_at"]
    table = run_cli("approvals", "list").output
    assert "Loan for Ada: 25000" in table and "manager" in table
    why = run_cli("tasks", "why", "loan_approval", "manager_review", waiting).output
    assert "waiting for approval from manager since" in why and "times out at" in why


def test_approve_answers_once_and_a_second_answer_is_refused(run_cli, waiting: str) -> None:
    done = run_cli("tasks", "approve", "loan_approval", "manager_review", waiting, "--comment", "ok", "--as", "maria",
                   "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (
        json.loads(done.output)["chosen_options"] == ["Approve"] and json.loads(done.output)["responded_by"] == "maria"
    )
    assert json.loads(run_cli("approvals", "list", "--json").output) == []
    again = run_cli("tasks", "reject", "loan_approval", "manager_review", waiting, "--as", "eve")
    assert again.exit_code != 0
    assert "already answered by maria at" in again.output and len(again.output.strip().splitlines()) == 1
    audit = json.loads(run_cli("audit", "--run", waiting, "--json").output)
    (answered,) = [r for r in audit if r["event"] == "hitl.answered"]
    assert answered["actor"].startswith("maria (via ") and answered["task_id"] == "manager_review"


def test_bad_answers_exit_non_zero_and_change_nothing(run_cli, waiting: str) -> None:
    before = _states(run_cli, waiting)
    cases = {
        ("tasks", "respond", "loan_approval", "manager_review", waiting, "--option", "Maybe"): "unknown option 'Maybe'",
        ("tasks", "respond", "loan_approval", "manager_review", waiting, "--option", "Approve", "--option", "Reject"):
            "takes one option",
        ("tasks", "approve", "loan_approval", "credit_check", waiting): "is success, not waiting for an answer",
        ("tasks", "approve", "loan_approval", "final_decision", waiting): "is none, not waiting for an answer",
        ("tasks", "respond", "loan_approval", "manager_review", waiting, "--option", "Approve", "--param", "x=1"):
            "has no form field x",
        ("tasks", "respond", "loan_approval", "manager_review", waiting, "--option", "Approve", "--param", "x"):
            "is not NAME=VALUE",
    }  # fmt: skip
    for args, expected in cases.items():
        result = run_cli(*args)
        assert result.exit_code != 0, args
        assert expected in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert _states(run_cli, waiting) == before
    assert len(json.loads(run_cli("approvals", "list", "--json").output)) == 1


def test_reject_and_respond_move_the_run_on(run_cli, waiting: str) -> None:
    assert run_cli("tasks", "approve", "loan_approval", "manager_review", waiting).exit_code == 0
    for _ in range(5):
        run_cli("scheduler", "--once", "--executor", "inline")
        if _states(run_cli, waiting)["final_decision"] == "deferred":
            break
    responded = run_cli("tasks", "respond", "loan_approval", "final_decision", waiting, "--option", "send_rejection")
    assert responded.exit_code == 0, responded.output
    for _ in range(5):
        run_cli("scheduler", "--once", "--executor", "inline")
        states = _states(run_cli, waiting)
        if states["done"] in {"success", "failed", "skipped", "upstream_failed"}:
            break
    assert (states["send_rejection"], states["generate_contract"], states["done"]) == ("success", "skipped", "success")


def test_every_command_has_help(run_cli) -> None:
    for args in (("approvals", "list"), ("tasks", "approve"), ("tasks", "reject"), ("tasks", "respond")):
        result = run_cli(*args, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
