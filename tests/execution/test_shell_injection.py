"""End to end: a run's conf cannot inject shell into a BashOperator (docs/security.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagrunner.cli.main import cli
from dagrunner.execution import task_test
from dagrunner.execution.dag_cache import DagCache
from dagrunner.states import TaskInstanceState

from .helpers import LOGICAL, make_settings

DAG_SOURCE = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import BashOperator

with DAG("shell", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    BashOperator(task_id="naive", bash_command='echo "x={{ conf.x }}"')
    BashOperator(task_id="quoted", bash_command="echo x={{ conf.x | shell_quote }}")
    BashOperator(task_id="via_env", bash_command='echo "x=$X"', env={"X": "{{ conf.x }}"})
"""


def _dags(tmp_path: Path) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "shell.py").write_text(DAG_SOURCE)
    return dags


def test_conf_cannot_inject_through_dags_test(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _dags(tmp_path)
    marker = tmp_path / "pwned"
    monkeypatch.setenv("DAGRUNNER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGRUNNER_DB_URL", db_url)
    conf = json.dumps({"x": f"$(touch {marker})"})
    result = CliRunner().invoke(cli, ["dags", "test", "shell", "2026-01-02", "--conf", conf, "--json"])
    assert not marker.exists(), "the conf value ran as a shell command"
    tasks = json.loads(result.output)["tasks"]
    assert tasks == {"naive": "failed", "quoted": "success", "via_env": "success"}, result.output


def test_tasks_test_names_the_value_and_runs_the_quoted_forms(tmp_path: Path) -> None:
    dags = _dags(tmp_path)
    dag = DagCache(dags_folder=dags, plugins_folder=None).get_dag(str(dags / "shell.py"), "shell")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'none.db'}", dags)
    marker = tmp_path / "pwned"
    conf = {"x": f"$(touch {marker})"}
    state, log = task_test.test_task(settings, dag, "naive", LOGICAL, conf=conf)
    assert state == TaskInstanceState.FAILED and not marker.exists()
    assert "conf.x contains shell metacharacters" in log and "shell_quote" in log
    for task_id in ("quoted", "via_env"):
        state, log = task_test.test_task(settings, dag, task_id, LOGICAL, conf=conf)
        assert state == TaskInstanceState.SUCCESS, log
        assert f"x=$(touch {marker})" in log
    assert not marker.exists()
