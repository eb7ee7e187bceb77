"""A work item that no longer matches the database never runs user code, on any executor."""

from __future__ import annotations

from pathlib import Path

from dagrunner.execution.base import Executor
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.states import TaskInstanceState

from .conftest import Project
from .dag_sources import PROCESS_DAG, PROCESS_TASK_IDS
from .helpers import ACTOR, LOGICAL, create_run, get_ti, queue_try, run_one, state_path, ti_row, tries_of


def _setup(project: Project) -> tuple[Path, object]:
    path = project.dag_file("process_dag.py", PROCESS_DAG)
    return path, create_run(project.engine, "process", PROCESS_TASK_IDS)


def assert_refused(executor: Executor, detail: str, why: str) -> None:
    """The refusal's reason reaches the scheduler from a local worker. A celery worker reports a refusal to
    nobody (a duplicate delivery's refusal must not end the real try, which has the same key and try number):
    the scheduler learns it from the database, a poll after the send."""
    if executor.name == "celery":
        assert detail == "seen in the database"
    else:
        assert why in detail


def test_an_instance_no_longer_queued_is_not_started(project: Project, executor: Executor) -> None:
    path, run = _setup(project)
    item = queue_try(project.engine, run, "touch", path)  # type: ignore[arg-type]
    with session_scope(project.engine) as session:  # e.g. recovery put it back: its scheduler died
        audit.transition(
            session,
            audit.TASK,
            [get_ti(session, item.key)],
            audit.Change(TaskInstanceState.SCHEDULED, LOGICAL, ACTOR, "t"),
        )
    event = run_one(executor, item)
    assert (event.kind, event.state) == ("finished", None)
    assert_refused(executor, event.detail, "not started: it is scheduled, not queued")
    assert not (project.marks / "touched").exists()
    assert tries_of(project.engine, item.key) == []
    assert ti_row(project.engine, item.key).state == TaskInstanceState.SCHEDULED
    assert ("queued", "running") not in state_path(project.engine, item.key)


def test_a_stale_try_number_is_not_started(project: Project, executor: Executor) -> None:
    path, run = _setup(project)
    stale = queue_try(project.engine, run, "touch", path)  # type: ignore[arg-type]
    with session_scope(project.engine) as session:
        ti = get_ti(session, stale.key)
        audit.transition(session, audit.TASK, [ti], audit.Change(TaskInstanceState.SCHEDULED, LOGICAL, ACTOR, "t"))
    fresh = queue_try(project.engine, run, "touch", path)  # type: ignore[arg-type]
    assert fresh.try_number == stale.try_number + 1
    event = run_one(executor, stale)
    assert_refused(executor, event.detail, "at try 2 now, not try 1")
    assert not (project.marks / "touched").exists()
    assert run_one(executor, fresh).state == "success"
    assert [t.try_number for t in tries_of(project.engine, fresh.key)] == [2]


def test_an_item_from_another_job_is_not_started(project: Project, executor: Executor) -> None:
    path, run = _setup(project)
    queued = queue_try(project.engine, run, "touch", path, job_id=7)  # type: ignore[arg-type]
    forged = type(queued)(**{**queued.__dict__, "queued_by_job_id": 8})
    event = run_one(executor, forged)
    assert_refused(executor, event.detail, "queued by job 7, not by job 8")
    assert not (project.marks / "touched").exists()
    assert run_one(executor, queued).state == "success"
