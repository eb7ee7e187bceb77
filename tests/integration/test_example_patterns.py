"""The two orchestration examples end to end through a real `dagrunner scheduler` and the CLI, on SQLite and
PostgreSQL: `order_processing` rolls back a failed payment in reverse order, `loan_approval` waits for
people (listed, approved, branched) and the audit trail reads the whole story back."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from polling import wait_until

from .procs import db_states, finish, project, run, scheduler_started, start

pytestmark = pytest.mark.slow


def _cli(root: Path, db_url: str, *args: str) -> str:
    proc = run(root, db_url, *args)
    assert proc.returncode == 0, f"dagrunner {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _audit(root: Path, db_url: str, run_id: str) -> list[dict]:
    return json.loads(_cli(root, db_url, "audit", "--run", run_id, "--json"))


def _run_state(db_url: str, dag_id: str, run_id: str) -> str | None:
    return db_states(db_url)[0].get(f"{dag_id}/{run_id}")


def _task_state(db_url: str, dag_id: str, run_id: str, task_id: str) -> str | None:
    return db_states(db_url)[1].get((f"{dag_id}/{run_id}", task_id))


def _finished(db_url: str, dag_id: str, *run_ids: str) -> bool:
    return all(_run_state(db_url, dag_id, r) in {"success", "failed"} for r in run_ids)


def _waiting(db_url: str, task_id: str, *run_ids: str) -> bool:
    return all(_task_state(db_url, "loan_approval", r, task_id) == "deferred" for r in run_ids)


def _scheduler(root: Path, db_url: str) -> subprocess.Popen[str]:
    proc = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: scheduler_started(db_url), what="the scheduler's job row", timeout=60)
    except BaseException:
        proc.kill()  # never leave a daemon behind a failed test
        finish(proc, timeout=10)
        raise
    return proc


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    return finish(proc, timeout=60)


def test_order_processing_rolls_back_a_failed_payment_in_reverse_order(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path)
    _cli(root, db_url, "dags", "trigger", "order_processing", "--run-id", "paid")
    _cli(
        root, db_url, "dags", "trigger", "order_processing", "--run-id", "declined", "--conf", '{"fail_payment": true}'
    )
    proc = _scheduler(root, db_url)
    try:
        wait_until(
            lambda: _finished(db_url, "order_processing", "paid", "declined"), what="both runs to end", timeout=90
        )
    finally:
        log = _stop(proc)
    runs, tis = db_states(db_url)
    assert runs["order_processing/paid"] == "success", log
    assert runs["order_processing/declined"] == "failed", log
    paid = {task: state for (r, task), state in tis.items() if r == "order_processing/paid"}
    assert "release_inventory" not in paid and "void_authorisation" not in paid  # nothing to undo
    declined = {task: state for (r, task), state in tis.items() if r == "order_processing/declined"}
    assert declined["process_payment"] == "failed"
    assert {declined[t] for t in ("confirm_order", "ship", "notify")} == {"upstream_failed"}
    assert declined["release_inventory"] == declined["void_authorisation"] == "success"

    rows = _audit(root, db_url, "declined")
    started = [r for r in rows if r["event"] == "compensation.started"]
    finished = [r for r in rows if r["event"] == "compensation.finished"]
    # the step each compensation undoes, newest first: the reservation, then the authorisation
    assert [(r["task_id"], r["detail"]["compensation_task"]) for r in started] == [
        ("reserve_inventory", "release_inventory"),
        ("validate_payment", "void_authorisation"),
    ]
    assert len(finished) == 2
    # reverse order of completion: the reservation (made last) is released before the authorisation is voided
    ends = {r["task_id"]: r["ts"] for r in rows if r["event"] == "task.state" and r.get("new_state") == "success"}
    assert ends["release_inventory"] < ends["void_authorisation"]
    logs = _cli(root, db_url, "tasks", "logs", "order_processing", "void_authorisation", "declined")
    assert "voided auth-order-1001" in logs and "order_processing/declined/validate_payment/-1" in logs
    listing = json.loads(_cli(root, db_url, "runs", "list", "order_processing", "--json"))
    assert not any(r["needs_attention"] for r in listing)


def test_loan_approval_waits_for_people_and_follows_their_answers(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path)
    _cli(
        root,
        db_url,
        "dags",
        "trigger",
        "loan_approval",
        "--run-id",
        "ada",
        "--conf",
        '{"applicant": "Ada", "amount": 25000}',
    )
    _cli(
        root,
        db_url,
        "dags",
        "trigger",
        "loan_approval",
        "--run-id",
        "bob",
        "--conf",
        '{"applicant": "Bob", "amount": 9000}',
    )
    proc = _scheduler(root, db_url)
    try:
        wait_until(lambda: _waiting(db_url, "manager_review", "ada", "bob"), what="both reviews to wait", timeout=90)
        asks = json.loads(_cli(root, db_url, "approvals", "list", "--json"))
        subjects = {a["run_id"]: a["subject"] for a in asks if a["task_id"] == "manager_review"}
        assert subjects == {"ada": "Loan for Ada: 25000", "bob": "Loan for Bob: 9000"}

        _cli(
            root,
            db_url,
            "tasks",
            "approve",
            "loan_approval",
            "manager_review",
            "ada",
            "--comment",
            "income verified",
            "--as",
            "maria",
        )
        _cli(
            root,
            db_url,
            "tasks",
            "reject",
            "loan_approval",
            "manager_review",
            "bob",
            "--comment",
            "no",
            "--as",
            "maria",
        )
        second = run(root, db_url, "tasks", "approve", "loan_approval", "manager_review", "ada", "--as", "eve")
        assert second.returncode != 0 and "already answered" in (second.stdout + second.stderr)

        wait_until(lambda: _waiting(db_url, "final_decision", "ada"), what="the final decision to wait", timeout=60)
        _cli(
            root,
            db_url,
            "tasks",
            "respond",
            "loan_approval",
            "final_decision",
            "ada",
            "--option",
            "generate_contract",
            "--as",
            "committee",
        )
        wait_until(lambda: _finished(db_url, "loan_approval", "ada", "bob"), what="both loan runs to end", timeout=60)
    finally:
        log = _stop(proc)
    runs, tis = db_states(db_url)
    ada = {task: state for (r, task), state in tis.items() if r == "loan_approval/ada"}
    bob = {task: state for (r, task), state in tis.items() if r == "loan_approval/bob"}
    assert runs["loan_approval/ada"] == "success", log
    assert ada["disburse_funds"] == "success" and ada["send_rejection"] == "skipped"
    assert bob["manager_review"] == "success"
    assert {bob[t] for t in ("risk_assessment", "final_decision", "generate_contract", "disburse_funds")} == {"skipped"}

    story = _audit(root, db_url, "ada")
    answers = [r for r in story if r["event"] == "hitl.answered"]
    assert [r["task_id"] for r in answers] == ["manager_review", "final_decision"]
    assert "maria" in answers[0]["actor"] and "income verified" in json.dumps(answers[0])
