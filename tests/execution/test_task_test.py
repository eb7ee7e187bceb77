"""`tasks test`: one task in this process, its log handed back, nothing written to the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from dagrunner.execution import task_test
from dagrunner.execution.dag_cache import DagCache
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, TaskInstance, TaskTry, XCom
from dagrunner.states import TaskInstanceState

from .conftest import Project
from .dag_sources import CONTRACT_DAG, CONTRACT_TASK_IDS
from .helpers import LOGICAL, create_run, finish_directly, make_settings


def _dag(dags: Path) -> object:
    path = dags / "contract_dag.py"
    path.write_text(CONTRACT_DAG)
    (dags / "marks").mkdir(exist_ok=True)
    return DagCache(dags_folder=dags, plugins_folder=None).get_dag(str(path), "contract")


def _counts(project: Project) -> tuple[int, ...]:
    with session_scope(project.engine, readonly=True) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(m)) for m in (AuditLog, TaskInstance, TaskTry, XCom)
        )


def test_without_a_database_nothing_is_created(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    db = tmp_path / "state" / "dagrunner.db"
    settings = make_settings(tmp_path, f"sqlite:///{db}", dags)
    state, log = task_test.test_task(settings, _dag(dags), "templated", LOGICAL)
    assert state == TaskInstanceState.SUCCESS
    assert "ds=2026-01-05 nodash=20260105 run=test__2026-01-05T06:00:00+00:00 p=big" in log
    assert "nothing recorded" in log
    assert not db.exists() and not db.parent.exists()
    state, log = task_test.test_task(settings, _dag(dags), "consume", LOGICAL)
    assert state == TaskInstanceState.FAILED  # no run, so no upstream XCom: value is None
    assert "TypeError" in log


def test_it_reads_the_xcoms_of_an_existing_run_and_writes_nothing(project: Project) -> None:
    run = create_run(project.engine, "contract", CONTRACT_TASK_IDS)
    finish_directly(project.engine, run, "ok", {"return_value": {"rows": 5}})
    before = _counts(project)
    state, log = task_test.test_task(project.settings, _dag(project.dags), "consume", LOGICAL)
    assert state == TaskInstanceState.SUCCESS, log
    assert "consuming {'rows': 5} for 2026-01-05" in log
    assert "XCom 'return_value': 10" in log
    state, log = task_test.test_task(project.settings, _dag(project.dags), "flaky", LOGICAL)
    assert state == TaskInstanceState.FAILED and "Traceback" in log  # no retries in a test
    assert _counts(project) == before


def test_render_shows_the_fields_with_secrets_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGRUNNER_VAR_API_TOKEN", "tok-abcdef-123")
    dags = tmp_path / "dags"
    dags.mkdir()
    path = dags / "render_dag.py"
    path.write_text(RENDER_DAG)
    dag = DagCache(dags_folder=dags, plugins_folder=None).get_dag(str(path), "render")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'none.db'}", dags)
    fields = task_test.render_task(settings, dag, "call", LOGICAL)
    assert fields["bash_command"] == "curl -H 'token: ***' https://x/2026-01-05"
    assert fields["env"] == {"DAY": "20260105"}
    assert not (tmp_path / "none.db").exists()


RENDER_DAG = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import BashOperator

with DAG("render", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    BashOperator(task_id="call", bash_command="curl -H 'token: {{ var.value.api_token }}' https://x/{{ ds }}",
                 env={"DAY": "{{ ds_nodash }}"})
"""
