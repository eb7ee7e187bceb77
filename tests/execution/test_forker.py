"""The local worker's three processes: what the forker and its spare task processes must get right.

A worker records, its forker imports DAG files and forks task processes ahead of time, and a task
process takes the try it is assigned only if the DAG file it inherited is still the file on disk. These
tests change files between tries, kill the forker at awkward moments, and crash it while it imports.
"""

from __future__ import annotations

import ast
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from polling import wait_until

from dagrunner.execution.base import Executor
from dagrunner.execution.logs import read_log
from dagrunner.execution.worker_config import LEAN_FORKER_AFTER
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.states import TaskInstanceState

from .conftest import ExecutorFactory, Project
from .dag_sources import PROCESS_DAG, PROCESS_TASK_IDS
from .helpers import (
    ACTOR,
    LOGICAL,
    create_run,
    get_ti,
    queue_try,
    run_one,
    ti_row,
    tries_of,
    wait_event,
    xcoms_of,
)

pytestmark = [pytest.mark.slow]

VERSIONED_DAG = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import PythonOperator


def upstream_value():
    return "{version}"


def read_upstream(ti):
    return ti.xcom_pull(task_ids="first")


with DAG("versioned", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    first = PythonOperator(task_id="first", python_callable=upstream_value)
    second = PythonOperator(task_id="second", python_callable=read_upstream)
    {wiring}
"""

CRASHING_IMPORT_DAG = """
import os
import signal

os.kill(os.getpid(), signal.SIGSEGV)
"""


#: Tasks that show what a task process inherited from its forker, and one that ends its own process.
LEAN_DAG = """
import os
import sys

import pendulum
from dagrunner import DAG
from dagrunner.operators import PythonOperator

MARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "marks")


def loaded():
    return {"sqlalchemy": "sqlalchemy" in sys.modules, "forker": os.getppid()}


def exit_3():
    print("about to os._exit(3)")
    os._exit(3)


def pull_far(ti):
    value = ti.xcom_pull(task_ids="report")  # not an upstream task: the worker did not pre-fetch it
    return {"pulled": value, **loaded()}


def pull_in_callback(context):
    value = context["ti"].xcom_pull(task_ids="report")
    path = os.path.join(MARKS, "callback-pulled")
    with open(path + ".part", "w") as handle:
        handle.write(repr((value, loaded())))
    os.replace(path + ".part", path)


with DAG("lean", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonOperator(task_id="report", python_callable=loaded)
    PythonOperator(task_id="exit_3", python_callable=exit_3)
    PythonOperator(task_id="pull_far", python_callable=pull_far)
    PythonOperator(task_id="quiet", python_callable=lambda: None, on_success_callback=pull_in_callback)
"""
LEAN_TASK_IDS = ["report", "exit_3", "pull_far", "quiet"]


def _write(path: Path, source: str) -> None:
    """Write a new version of a DAG file that the DAG cache must see as changed (size and mtime)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(source)
    if path.stat().st_mtime_ns == before:  # a coarse clock: make the change visible
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def _versioned(version: str, wiring: str = "") -> str:
    return VERSIONED_DAG.format(version=version, wiring=wiring)


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _parent_of(int(entry)) == pid:
                    found.append(int(entry))
            except (OSError, IndexError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _maps_sqlalchemy(pid: int) -> bool:
    """Whether SQLAlchemy's compiled modules are mapped into process `pid` (they are once it is imported)."""
    with open(f"/proc/{pid}/maps") as handle:
        return "/sqlalchemy/" in handle.read()


def _ignores_sigint(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        mask = next(int(line.split()[1], 16) for line in handle if line.startswith("SigIgn:"))
    return bool(mask & (1 << (signal.SIGINT - 1)))


def _one_worker(make_executor: ExecutorFactory, *, lean_forker_after: int = LEAN_FORKER_AFTER) -> Executor:
    return make_executor("local", parallelism=1, lean_forker_after=lean_forker_after)


def test_a_changed_dag_file_runs_its_new_code(project: Project, make_executor: ExecutorFactory) -> None:
    executor = _one_worker(make_executor)
    path = project.dags / "versioned.py"
    _write(path, _versioned("v1"))
    first_run = create_run(project.engine, "versioned", ["first", "second"], run_id="one")
    item = queue_try(project.engine, first_run, "first", path)
    assert run_one(executor, item).state == "success"
    assert xcoms_of(project.engine, item.key) == {"return_value": "v1"}
    _write(path, _versioned("version two"))
    second_run = create_run(project.engine, "versioned", ["first", "second"], run_id="two")
    item = queue_try(project.engine, second_run, "first", path)
    assert run_one(executor, item).state == "success"
    assert xcoms_of(project.engine, item.key) == {"return_value": "version two"}


def test_a_task_given_a_new_upstream_still_reads_its_xcom(project: Project, make_executor: ExecutorFactory) -> None:
    """The worker pre-fetches upstream XComs from what it knew of the DAG; when the file changed since,
    the task process reads what it lacks itself."""
    executor = _one_worker(make_executor)
    path = project.dags / "versioned.py"
    _write(path, _versioned("from v1"))
    run = create_run(project.engine, "versioned", ["first", "second"])
    first = queue_try(project.engine, run, "first", path)
    assert run_one(executor, first).state == "success"  # the worker now knows v1: `second` has no upstream
    _write(path, _versioned("from v1", wiring="first >> second"))
    second = queue_try(project.engine, run, "second", path)
    assert run_one(executor, second).state == "success"
    assert xcoms_of(project.engine, second.key) == {"return_value": "from v1"}


def test_a_killed_forker_fails_the_running_try_and_is_replaced(
    project: Project, make_executor: ExecutorFactory
) -> None:
    executor = _one_worker(make_executor)
    process_file = project.dag_file("process_dag.py", PROCESS_DAG)
    run = create_run(project.engine, "process", PROCESS_TASK_IDS, max_tries={"block": 1})
    item = queue_try(project.engine, run, "block", process_file)
    executor.submit(item)
    pid_file = project.marks / "blocker.pid"
    wait_until(pid_file.exists, what="the blocking task to start")
    task_pid = int(pid_file.read_text())
    forker_pid = _parent_of(task_pid)
    worker_pid = ti_row(project.engine, item.key).pid
    assert worker_pid is not None and _parent_of(forker_pid) == worker_pid
    os.kill(forker_pid, signal.SIGKILL)
    event = wait_event(executor, item.key)
    assert event.state == "up_for_retry"  # not the worker's fault, nor the task's: retried
    (row,) = tries_of(project.engine, item.key)
    assert "forker process" in (row.error or "") and "SIGKILL" in (row.error or "")
    wait_until(lambda: not _alive(task_pid), what="the task process to die with its forker")
    follow = queue_try(project.engine, run, "touch", process_file)
    assert run_one(executor, follow).state == "success"
    assert ti_row(project.engine, follow.key).pid == worker_pid  # the same worker, with a new forker


def test_a_forker_gone_between_tries_is_replaced_before_the_next(
    project: Project, make_executor: ExecutorFactory
) -> None:
    executor = _one_worker(make_executor)
    process_file = project.dag_file("process_dag.py", PROCESS_DAG)
    run = create_run(project.engine, "process", PROCESS_TASK_IDS)
    item = queue_try(project.engine, run, "touch", process_file)
    assert run_one(executor, item).state == "success"
    worker_pid = ti_row(project.engine, item.key).pid
    assert worker_pid is not None
    (forker_pid,) = _children_of(worker_pid)
    os.kill(forker_pid, signal.SIGKILL)
    wait_until(lambda: not _alive(forker_pid), what="the forker to die")
    follow = queue_try(project.engine, run, "inspect", process_file)
    assert run_one(executor, follow).state == "success"
    assert _children_of(worker_pid) not in ([], [forker_pid])


def test_a_dag_file_that_crashes_its_import_fails_only_that_try(
    project: Project, make_executor: ExecutorFactory
) -> None:
    """The import runs in the forker, never in the worker: the worker records the failure and goes on."""
    executor = _one_worker(make_executor)
    crashing = project.dag_file("crashing_dag.py", CRASHING_IMPORT_DAG)
    run = create_run(project.engine, "crashing", ["any"])
    item = queue_try(project.engine, run, "any", crashing)
    event = run_one(executor, item)
    assert event.kind == "finished" and event.state == "failed"
    (row,) = tries_of(project.engine, item.key)
    assert "forker process" in (row.error or "") and "SIGSEGV" in (row.error or "")
    assert "SIGSEGV" in read_log(project.settings.logs_folder, item.key, 1)
    process_file = project.dag_file("process_dag.py", PROCESS_DAG)
    other = create_run(project.engine, "process", PROCESS_TASK_IDS)
    assert run_one(executor, queue_try(project.engine, other, "touch", process_file)).state == "success"


def test_a_fenced_out_try_runs_nothing_and_the_next_one_does(project: Project, make_executor: ExecutorFactory) -> None:
    """Fenced out after its spare process was assigned it: the spare goes without running anything."""
    executor = _one_worker(make_executor)
    process_file = project.dag_file("process_dag.py", PROCESS_DAG)
    run = create_run(project.engine, "process", PROCESS_TASK_IDS)
    warm = queue_try(project.engine, run, "inspect", process_file)
    assert run_one(executor, warm).state == "success"  # the file is imported: the next try goes to a spare
    stale = queue_try(project.engine, run, "touch", process_file)
    with session_scope(project.engine) as session:
        audit.transition(
            session,
            audit.TASK,
            [get_ti(session, stale.key)],
            audit.Change(TaskInstanceState.SCHEDULED, LOGICAL, ACTOR, "t"),
        )
    fresh = queue_try(project.engine, run, "touch", process_file)
    event = run_one(executor, stale)
    assert event.state is None and "at try 2 now, not try 1" in event.detail
    assert not (project.marks / "touched").exists()
    assert run_one(executor, fresh).state == "success"
    assert (project.marks / "touched").exists()


def test_the_forker_carries_no_database_code_and_a_task_exit_fails_only_its_try(
    project: Project, make_executor: ExecutorFactory
) -> None:
    """Every fork costs in proportion to the forker's memory, so a lean forker is a fresh interpreter
    without SQLAlchemy (which the worker has); what a task process does to itself still ends with it."""
    executor = _one_worker(make_executor, lean_forker_after=0)
    lean_file = project.dag_file("lean_dag.py", LEAN_DAG)
    run = create_run(project.engine, "lean", LEAN_TASK_IDS)
    report = queue_try(project.engine, run, "report", lean_file)
    assert run_one(executor, report).state == "success"
    seen = xcoms_of(project.engine, report.key)["return_value"]
    forker_pid, worker_pid = seen["forker"], ti_row(project.engine, report.key).pid
    assert seen["sqlalchemy"] is False
    assert _parent_of(forker_pid) == worker_pid
    assert _maps_sqlalchemy(worker_pid) and not _maps_sqlalchemy(forker_pid)
    assert _ignores_sigint(forker_pid)  # as its worker does: Ctrl-C is the scheduler's to handle

    crash = queue_try(project.engine, run, "exit_3", lean_file)
    assert run_one(executor, crash).state == "failed"
    (row,) = tries_of(project.engine, crash.key)
    assert row.exit_code == 3 and "exited with code 3 without reporting an outcome" in (row.error or "")
    assert "about to os._exit(3)" in read_log(project.settings.logs_folder, crash.key, 1)

    again = queue_try(project.engine, run, "pull_far", lean_file)
    assert run_one(executor, again).state == "success"
    assert xcoms_of(project.engine, again.key)["return_value"] == {
        "pulled": seen,  # read by the worker for the task process, which has no database connection
        "sqlalchemy": False,
        "forker": forker_pid,  # the same forker, untouched by the try that ended its process
    }
    assert ti_row(project.engine, again.key).pid == worker_pid


@pytest.mark.parametrize("lean_forker_after", [0, LEAN_FORKER_AFTER])
def test_a_callback_reads_xcoms_through_the_worker(
    project: Project, make_executor: ExecutorFactory, lean_forker_after: int
) -> None:
    executor = _one_worker(make_executor, lean_forker_after=lean_forker_after)
    lean_file = project.dag_file("lean_dag.py", LEAN_DAG)
    run = create_run(project.engine, "lean", LEAN_TASK_IDS)
    report = queue_try(project.engine, run, "report", lean_file)
    assert run_one(executor, report).state == "success"
    seen = xcoms_of(project.engine, report.key)["return_value"]
    assert run_one(executor, queue_try(project.engine, run, "quiet", lean_file)).state == "success"
    mark = project.marks / "callback-pulled"
    wait_until(mark.exists, what="the callback to write what it pulled")
    assert ast.literal_eval(mark.read_text()) == (seen, seen)


def test_a_worker_changes_to_a_lean_forker_after_enough_tries(project: Project, make_executor: ExecutorFactory) -> None:
    """It starts with a forker forked from itself (SQLAlchemy and all), starts a lean one after
    `lean_forker_after` tries and serves from it once it is ready; the forked one goes."""
    executor = _one_worker(make_executor, lean_forker_after=2)
    lean_file = project.dag_file("lean_dag.py", LEAN_DAG)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60.0
    while not seen or (seen[-1]["sqlalchemy"] is True and time.monotonic() < deadline):
        run = create_run(project.engine, "lean", LEAN_TASK_IDS, run_id=f"run_{len(seen)}")
        item = queue_try(project.engine, run, "report", lean_file)
        assert run_one(executor, item).state == "success"
        seen.append(xcoms_of(project.engine, item.key)["return_value"])
        time.sleep(0.05)  # the lean forker imports meanwhile
    first, last = seen[0], seen[-1]
    assert first["sqlalchemy"] is True and last["sqlalchemy"] is False, seen
    assert len(seen) >= 4  # started at the third try, served from at the fourth at the earliest
    assert _parent_of(last["forker"]) == ti_row(project.engine, item.key).pid
    wait_until(lambda: not _alive(first["forker"]), what="the forked forker to exit")
