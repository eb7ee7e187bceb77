"""What only the local executor survives: tasks that crash, hang, flood or pollute their process, and
workers that die. Real processes throughout; no sleeping on the wall clock except bounded waits."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from polling import wait_until

from dagrunner.execution.base import Executor, TaskKey
from dagrunner.execution.logs import log_path, read_log
from dagrunner.execution.worker import HARD_KILL_GRACE_S

from .conftest import ExecutorFactory, Project
from .dag_sources import PROCESS_DAG, PROCESS_TASK_IDS
from .helpers import RunSpec, create_run, queue_try, run_one, state_path, ti_row, tries_of, wait_event, xcoms_of

pytestmark = [pytest.mark.slow]


@pytest.fixture
def process_file(project: Project) -> Path:
    return project.dag_file("process_dag.py", PROCESS_DAG)


@pytest.fixture
def run(project: Project) -> RunSpec:
    return create_run(project.engine, "process", PROCESS_TASK_IDS, max_tries={"block": 1})


def _processes_with(needle: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `needle`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry))
    return found


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_os_exit_in_a_task_fails_that_try_only(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "exit_hard", process_file)
    event = run_one(local_executor, item)
    assert event.state == "failed"
    (row,) = tries_of(project.engine, item.key)
    assert row.exit_code == 7 and row.end_date is not None
    assert "exited with code 7 without reporting an outcome" in (row.error or "")
    assert "about to os._exit" in read_log(project.settings.logs_folder, item.key, 1)
    assert state_path(project.engine, item.key)[-1] == ("running", "failed")
    follow = run_one(local_executor, queue_try(project.engine, run, "touch", process_file))
    assert follow.state == "success"


def test_a_segfault_fails_that_try_only(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "segfault", process_file)
    assert run_one(local_executor, item).state == "failed"
    (row,) = tries_of(project.engine, item.key)
    assert "killed by SIGSEGV" in (row.error or "")
    assert row.exit_code == -signal.SIGSEGV
    assert run_one(local_executor, queue_try(project.engine, run, "touch", process_file)).state == "success"


def test_execution_timeout_kills_the_whole_process_tree(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "sleep_in_python", process_file)
    started = time.monotonic()
    assert run_one(local_executor, item).state == "failed"
    assert time.monotonic() - started < 1 + HARD_KILL_GRACE_S  # the task's own TaskTimeout, not the kill
    (row,) = tries_of(project.engine, item.key)
    assert (row.error or "").startswith("execution_timeout of 1s exceeded (at ")
    assert "TaskTimeout" in read_log(project.settings.logs_folder, item.key, 1)
    wait_until(lambda: not _processes_with("sleep 987654"), what="the task's subprocess to be gone")


def test_a_task_stuck_in_c_code_is_killed_with_its_children(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "sleep_in_c", process_file)
    event = run_one(local_executor, item, timeout=30)
    assert event.state == "failed"
    (row,) = tries_of(project.engine, item.key)
    assert "execution_timeout of 1s exceeded; the task did not stop, so it was killed" in (row.error or "")
    assert row.exit_code == -signal.SIGKILL
    wait_until(lambda: not _processes_with("sleep 987655"), what="the task's subprocess to be gone")


def test_huge_output_lands_in_the_log_without_blocking(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "shout", process_file)
    assert run_one(local_executor, item, timeout=60).state == "success"
    path = log_path(project.settings.logs_folder, item.key, 1)
    assert path.stat().st_size >= 50 * 1024 * 1024
    tail = read_log(project.settings.logs_folder, item.key, 1, tail_bytes=4096)
    assert "raw bytes at the end" in tail and "recorded as success" in tail


def test_a_killed_worker_loses_its_try_and_is_replaced(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "block", process_file)
    local_executor.submit(item)
    pid_file = project.marks / "blocker.pid"
    wait_until(pid_file.exists, what="the blocking task to start")
    task_pid = int(pid_file.read_text())
    worker_pid = ti_row(project.engine, item.key).pid
    assert worker_pid is not None and worker_pid != task_pid
    os.kill(worker_pid, signal.SIGKILL)
    event = wait_event(local_executor, item.key, timeout=20)
    assert event.kind == "lost" and "died" in event.detail
    assert (item.key, item.try_number) not in local_executor.running()
    wait_until(lambda: not _pid_alive(task_pid), what="the orphaned task process to die with its worker")
    follow = queue_try(project.engine, run, "inspect", process_file)
    assert run_one(local_executor, follow).state == "success"
    assert ti_row(project.engine, follow.key).pid != worker_pid
    assert local_executor.slots_free == 2


def test_leaks_and_globals_do_not_reach_the_next_try(
    project: Project, make_executor: ExecutorFactory, run: RunSpec, process_file: Path
) -> None:
    executor = make_executor("local", parallelism=1)
    polluter = queue_try(project.engine, run, "pollute", process_file)
    assert run_one(executor, polluter).state == "success"
    assert xcoms_of(project.engine, polluter.key) == {"return_value": 1}
    inspector = queue_try(project.engine, run, "inspect", process_file)
    assert run_one(executor, inspector).state == "success"
    seen = xcoms_of(project.engine, inspector.key)["return_value"]
    assert (seen["count"], seen["hoard"]) == (0, 0)
    worker_pid = ti_row(project.engine, inspector.key).pid
    assert ti_row(project.engine, polluter.key).pid == worker_pid  # the same warm worker served both
    assert _rss_mb(worker_pid) < 150  # the 200 MB went away with the child


def _rss_mb(pid: int | None) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_kill_stops_a_running_try_without_retry(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "block", process_file)
    local_executor.submit(item)
    wait_until((project.marks / "blocker.pid").exists, what="the blocking task to start")
    task_pid = int((project.marks / "blocker.pid").read_text())
    local_executor.kill(item.key, "marked failed by a user")
    event = wait_event(local_executor, item.key)
    assert event.state == "failed"  # block has a retry left, but a kill is final
    assert "marked failed by a user" in (tries_of(project.engine, item.key)[0].error or "")
    assert not _pid_alive(task_pid)


def test_shutdown_kills_what_outlives_the_grace_period(
    project: Project, make_executor: ExecutorFactory, run: RunSpec, process_file: Path
) -> None:
    executor = make_executor("local")
    item = queue_try(project.engine, run, "block", process_file)
    executor.submit(item)
    wait_until((project.marks / "blocker.pid").exists, what="the blocking task to start")
    left = executor.shutdown(0.2)
    assert left == [(item.key, item.try_number)]
    assert ti_row(project.engine, item.key).state.value == "up_for_retry"  # killed by shutdown: retryable
    assert [e.state for e in executor.events(0) if e.key == item.key] == ["up_for_retry"]
    (row,) = tries_of(project.engine, item.key)
    assert row.interrupted, "the try row says the shutdown killed it (a resumed backfill runs it again)"


def test_a_try_killed_on_request_is_not_marked_interrupted(
    project: Project, make_executor: ExecutorFactory, run: RunSpec, process_file: Path
) -> None:
    executor = make_executor("local")
    item = queue_try(project.engine, run, "block", process_file)
    executor.submit(item)
    wait_until((project.marks / "blocker.pid").exists, what="the blocking task to start")
    executor.kill(item.key, "an operator asked")
    wait_until(lambda: ti_row(project.engine, item.key).state.value == "failed", what="the killed try recorded")
    (row,) = tries_of(project.engine, item.key)
    assert not row.interrupted


def test_the_worker_records_running_with_its_pid_and_heartbeat(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    item = queue_try(project.engine, run, "touch", process_file)
    assert run_one(local_executor, item).state == "success"
    ti = ti_row(project.engine, item.key)
    (row,) = tries_of(project.engine, item.key)
    assert ti.hostname and ti.pid and ti.last_heartbeat is not None
    assert (row.hostname, row.pid) == (ti.hostname, ti.pid)
    assert ti.pid != os.getpid()


def _key(run: RunSpec, task_id: str) -> TaskKey:
    return TaskKey(run.dag_id, run.run_id, task_id)


def test_a_running_try_is_heartbeaten(
    project: Project, make_executor: ExecutorFactory, run: RunSpec, process_file: Path
) -> None:
    executor = make_executor("local", heartbeat_s=0.05)
    item = queue_try(project.engine, run, "block", process_file)
    executor.submit(item)
    wait_until((project.marks / "blocker.pid").exists, what="the blocking task to start")
    first = ti_row(project.engine, item.key).last_heartbeat
    assert first is not None
    wait_until(lambda: ti_row(project.engine, item.key).last_heartbeat > first, what="a heartbeat")
    assert [e for e in executor.events(0) if e.key == item.key] == []
    executor.kill(item.key, "test over")
    assert wait_event(executor, item.key).state == "failed"


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # only a database server drops connections
def test_a_worker_whose_database_connection_was_cut_carries_on(
    project: Project, local_executor: Executor, run: RunSpec, process_file: Path
) -> None:
    """A worker keeps one connection open across tries; when the server drops it (a restart, an idle
    timeout) the next try is recorded on a new one, not lost."""
    first = queue_try(project.engine, run, "touch", process_file)
    assert run_one(local_executor, first).state == "success"
    with project.engine.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    project.engine.dispose()  # our own pooled connections were cut as well
    second = queue_try(project.engine, run, "inspect", process_file)
    event = run_one(local_executor, second)
    assert (event.kind, event.state) == ("finished", "success")


def test_a_wake_up_ends_the_wait_even_when_it_came_before_the_wait(local_executor: Executor) -> None:
    # events() first looks without waiting, which drains the wake-up pipe; that wake-up must still end
    # the call (the celery worker's dispatcher is woken this way for a try to hand over).
    local_executor.wake()
    started = time.monotonic()
    assert local_executor.events(5.0) == []
    assert time.monotonic() - started < 1.0
