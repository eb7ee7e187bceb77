"""The executor contract: every executor (inline, local) on every database records tries the same way.

Each test queues one try of a task in the contract DAG, hands it to the executor, waits for its event,
and checks what the database and the log say: the state, exactly one closed task_try row, the audit
trail queued -> running -> final, XComs, callbacks.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from polling import wait_until

from dagrunner.execution.base import Executor, TaskKey
from dagrunner.execution.logs import read_log
from dagrunner.execution.retries import retry_delay_s

from .conftest import Project
from .dag_sources import CONTRACT_TASK_IDS
from .helpers import (
    LOGICAL,
    RunSpec,
    audit_of,
    create_run,
    finish_directly,
    queue_try,
    run_one,
    state_path,
    ti_row,
    tries_of,
    xcoms_of,
)

MAX_TRIES = {"flaky": 2, "backoff": 3, "fail_fast": 3}


@pytest.fixture
def run(project: Project) -> RunSpec:
    return create_run(project.engine, "contract", CONTRACT_TASK_IDS, max_tries=MAX_TRIES)


def _try(project: Project, executor: Executor, run: RunSpec, contract_file: Path, task_id: str) -> TaskKey:
    item = queue_try(project.engine, run, task_id, contract_file)
    event = run_one(executor, item)
    assert event.kind == "finished", event
    assert event.try_number == item.try_number
    assert event.state == ti_row(project.engine, item.key).state.value
    return item.key


def _log(project: Project, key: TaskKey, try_number: int = 1) -> str:
    return read_log(project.settings.logs_folder, key, try_number)


def _assert_one_closed_try(project: Project, key: TaskKey, state: str) -> None:
    tries = tries_of(project.engine, key)
    assert [t.try_number for t in tries] == [1]
    (row,) = tries
    assert row.state.value == state
    assert row.start_date is not None and row.end_date is not None and row.end_date >= row.start_date
    assert row.log_path and Path(row.log_path).is_file()
    assert state_path(project.engine, key) == [("none", "queued"), ("queued", "running"), ("running", state)]


def test_success_stores_xcoms_and_runs_callbacks(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "ok")
    assert ti_row(project.engine, key).state.value == "success"
    _assert_one_closed_try(project, key, "success")
    assert tries_of(project.engine, key)[0].exit_code == 0
    assert xcoms_of(project.engine, key) == {"return_value": {"rows": 3}, "extra": [1, 2]}
    assert "producing rows" in _log(project, key)
    wait_until((project.marks / "success-ok-1").exists, what="on_success_callback")
    wait_until(lambda: audit_of(project.engine, key, "task.callback_error"), what="the callback error's audit row")
    (error,) = audit_of(project.engine, key, "task.callback_error")
    assert "the callback exploded" in (error.reason or "") and error.try_number == 1


def test_exception_fails_with_summary_and_traceback(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "failing")
    _assert_one_closed_try(project, key, "failed")
    error = tries_of(project.engine, key)[0].error or ""
    assert error.startswith("ValueError: boom from the task (at ")
    assert f"{contract_file}:" in error
    log = _log(project, key)
    assert "about to fail" in log and "Traceback (most recent call last)" in log
    assert "ValueError: boom from the task" in log
    wait_until((project.marks / "failure-failing-1").exists, what="on_failure_callback")
    assert "boom from the task" in (project.marks / "failure-failing-1").read_text()
    assert xcoms_of(project.engine, key) == {}


def test_failure_with_tries_left_goes_up_for_retry_until_they_run_out(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "flaky")
    ti = ti_row(project.engine, key)
    assert ti.state.value == "up_for_retry"
    assert ti.next_try_at == ti.end_date + timedelta(seconds=30)
    wait_until((project.marks / "retry-flaky-1").exists, what="on_retry_callback")
    _try(project, executor, run, contract_file, "flaky")
    assert ti_row(project.engine, key).state.value == "up_for_retry"
    _try(project, executor, run, contract_file, "flaky")  # try 3 of retries + 1 = 3
    assert ti_row(project.engine, key).state.value == "failed"
    assert [(t.try_number, t.state.value) for t in tries_of(project.engine, key)] == [
        (1, "up_for_retry"),
        (2, "up_for_retry"),
        (3, "failed"),
    ]
    assert all(t.end_date is not None for t in tries_of(project.engine, key))
    wait_until((project.marks / "failure-flaky-3").exists, what="on_failure_callback")
    # a try that goes up for retry calls on_retry only, the last one on_failure only
    wait_until((project.marks / "retry-flaky-2").exists, what="the second on_retry_callback")
    assert sorted(p.name for p in project.marks.iterdir()) == ["failure-flaky-3", "retry-flaky-1", "retry-flaky-2"]
    assert read_log(project.settings.logs_folder, key, 2) != ""


def test_exponential_backoff_follows_the_formula(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "backoff")
    ti = ti_row(project.engine, key)
    expected = retry_delay_s(
        retry_delay_s=10,
        exponential_base=2.0,
        max_retry_delay_s=25,
        dag_id="contract",
        task_id="backoff",
        logical_date=LOGICAL,
        try_number=1,
    )
    assert ti.next_try_at == ti.end_date + timedelta(seconds=expected)


def test_skip_task_skips(project: Project, executor: Executor, run: RunSpec, contract_file: Path) -> None:
    key = _try(project, executor, run, contract_file, "skipper")
    _assert_one_closed_try(project, key, "skipped")
    assert "nothing to do today" in (tries_of(project.engine, key)[0].error or "")
    # on_execute ran before the body (which checks for its mark); on_skipped ran after the skip was
    # recorded, even though the first callback in its list raised (audited, the state stays skipped)
    wait_until((project.marks / "skipped-skipper-1").exists, what="on_skipped_callback")
    wait_until(lambda: audit_of(project.engine, key, "task.callback_error"), what="the callback error's audit row")
    (error,) = audit_of(project.engine, key, "task.callback_error")
    assert error.reason is not None and error.reason.startswith("on_skipped_callback exploding_callback:")
    assert ti_row(project.engine, key).state.value == "skipped"
    assert sorted(p.name for p in project.marks.iterdir()) == ["execute-skipper-1", "skipped-skipper-1"]


def test_fail_task_fails_at_once_despite_retries(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "fail_fast")
    _assert_one_closed_try(project, key, "failed")
    assert "FailTask: this cannot work" in (tries_of(project.engine, key)[0].error or "")


def test_branch_skips_the_branches_not_chosen(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "branch")
    _assert_one_closed_try(project, key, "success")
    right = ti_row(project.engine, TaskKey("contract", run.run_id, "right"))
    assert right.state.value == "skipped"
    (row,) = state_path(project.engine, right_key := TaskKey("contract", run.run_id, "right"))
    assert row == ("none", "skipped")
    assert audit_of(project.engine, right_key, "task.state")[0].reason == "skipped by branch branch"
    assert ti_row(project.engine, TaskKey("contract", run.run_id, "left")).state.value == "none"
    # the scheduler's trigger rules decide what lies beyond the skipped branch
    assert ti_row(project.engine, TaskKey("contract", run.run_id, "after_right")).state.value == "none"
    assert xcoms_of(project.engine, key) == {"return_value": ["left"]}


def test_templated_bash_command_is_rendered(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "templated")
    _assert_one_closed_try(project, key, "success")
    line = f"ds=2026-01-05 nodash=20260105 run={run.run_id} p=big"
    assert line in _log(project, key)
    assert xcoms_of(project.engine, key) == {"return_value": line}


def test_a_value_that_is_not_json_fails_clearly(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    key = _try(project, executor, run, contract_file, "bad_xcom")
    _assert_one_closed_try(project, key, "failed")
    error = tries_of(project.engine, key)[0].error or ""
    assert error.startswith("XComError: task 'bad_xcom': XCom 'return_value' cannot be stored")
    assert "object" in error and "JSON" in error
    assert xcoms_of(project.engine, key) == {}


def test_task_arguments_from_upstream_xcom(
    project: Project, executor: Executor, run: RunSpec, contract_file: Path
) -> None:
    finish_directly(project.engine, run, "ok", {"return_value": {"rows": 21}})
    key = _try(project, executor, run, contract_file, "consume")
    _assert_one_closed_try(project, key, "success")
    assert xcoms_of(project.engine, key) == {"return_value": 42}
    assert "consuming {'rows': 21} for 2026-01-05" in _log(project, key)
