"""A whole try on every executor: the context it sees, masking in its log, timeouts, broken DAG files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dagrunner.execution.base import Executor
from dagrunner.execution.logs import read_log
from dagrunner.states import DagRunState

from .conftest import ExecutorFactory, Project
from .dag_sources import EXTRAS_DAG
from .helpers import LOGICAL, create_run, queue_try, run_one, ti_row, tries_of, xcoms_of

SECRET = "correct-horse-battery"


@pytest.fixture
def extras(project: Project) -> Path:
    return project.dag_file("extras_dag.py", EXTRAS_DAG)


@pytest.mark.parametrize("name", ["inline", pytest.param("local", marks=pytest.mark.slow)])
def test_the_context_and_a_masked_secret(
    project: Project,
    make_executor: ExecutorFactory,
    extras: Path,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAGRUNNER_VAR_DB_PASSWORD", SECRET)
    executor = make_executor(name)  # after setenv: local workers take the environment at start
    create_run(project.engine, "extras", ["show"], logical_date=LOGICAL - timedelta(days=1),
               state=DagRunState.SUCCESS, run_id="earlier")  # fmt: skip
    run = create_run(project.engine, "extras", ["show", "slow"], conf={"size": 9, "extra": True})
    item = queue_try(project.engine, run, "show", extras)
    assert run_one(executor, item).state == "success"
    log = read_log(project.settings.logs_folder, item.key, 1)
    assert "secret is ***" in log and SECRET not in log
    assert "plain is none" in log
    assert "ds 2026-01-05 20260105T060000+0000 {'size': 9, 'extra': True} 1 0 2026-01-04 06:00:00+00:00" in log
    assert xcoms_of(project.engine, item.key)["return_value"]["params"] == {"size": 9, "extra": True}


def test_execution_timeout_inline_raises_inside_the_task(
    project: Project, extras: Path, make_executor: ExecutorFactory
) -> None:
    executor = make_executor("inline")
    run = create_run(project.engine, "extras", ["show", "slow"], max_tries={"slow": 1})
    item = queue_try(project.engine, run, "slow", extras)
    assert run_one(executor, item).state == "up_for_retry"
    (row,) = tries_of(project.engine, item.key)
    assert (row.error or "").startswith("execution_timeout of 0.5s exceeded (at ")
    assert "extras_dag.py" in (row.error or "")


def test_a_dag_file_that_no_longer_imports_fails_the_try(project: Project, executor: Executor, extras: Path) -> None:
    run = create_run(project.engine, "extras", ["show"])
    item = queue_try(project.engine, run, "show", extras)
    extras.write_text("import pendulum\nraise ImportError('a module went missing')\n")
    event = run_one(executor, item)
    assert event.state == "failed"
    assert ti_row(project.engine, item.key).state.value == "failed"
    (row,) = tries_of(project.engine, item.key)
    assert "a module went missing" in (row.error or "") and "line 2" in (row.error or "")
    assert "a module went missing" in read_log(project.settings.logs_folder, item.key, 1)
