"""Airflow 3's authoring names (#15), used as an Airflow user writes them and run with `dagrunner dags test`:
the exception names, `get_current_context` / `Context`, `Label` and `chain_linear` (drawn by `dags show`),
`ParamsDict`, the naming and documentation arguments, `user_defined_filters`, and the arguments that are
accepted but ignored."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

PORTED = '''
import pendulum
from pathlib import Path

from dagrunner import (
    DAG,
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    Context,
    Label,
    TaskGroup,
    chain_linear,
    get_current_context,
    task,
)
from dagrunner.operators import BashOperator, EmptyOperator, PythonOperator

TRIES = Path(__file__).with_name("tries.txt")


def note(line):
    with TRIES.open("a") as out:
        out.write(line + "\\n")


def where_am_i():
    """A helper that is not handed the context: it asks for it."""
    context: Context = get_current_context()
    return f"{context['ti'].task_id} on {context['ds']}"


with DAG(
    "ported",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    dag_display_name="Ported from Airflow",
    default_args={"owner": "data-team", "email": ["oncall@example.com"], "email_on_failure": True,
                  "retries": 0, "retry_delay": 0, "executor_config": {"KubernetesExecutor": {}}},
    user_defined_filters={"shout": lambda text: text.upper() + "!"},
    user_defined_macros={"team": "data"},
    access_control={"viewer": {"can_read"}},
):
    start = EmptyOperator(task_id="start", doc_json='{"step": 1}', task_display_name="Start here")

    @task
    def ask():
        note("ask " + where_am_i())
        return where_am_i()

    @task
    def skip_me():
        raise AirflowSkipException("nothing to do today")

    @task(retries=2)
    def give_up():
        note("give_up try " + str(get_current_context()["ti"].try_number))
        raise AirflowFailException("bad input; retrying will not help")

    @task(retries=1)
    def flaky():
        try_number = get_current_context()["ti"].try_number
        note("flaky try " + str(try_number))
        if try_number == 1:
            raise AirflowException("first try fails")
        return "second try"

    shout = BashOperator(task_id="shout", bash_command="echo {{ ('hello ' ~ team) | shout }}",
                         executor_config={"pod": "big"}, run_as_user="nobody")

    with TaskGroup("load") as load:
        a = EmptyOperator(task_id="a", doc_rst="**load a**", doc_yaml="k: v", doc="plain")
        b = EmptyOperator(task_id="b")

    end = EmptyOperator(task_id="end", trigger_rule="all_done")
    asked = ask()
    start >> Label("always") >> asked
    chain_linear(asked, [skip_me(), give_up(), flaky()], [shout, load], end)
'''


def _run(run_cli, project: Path, text: str, dag_id: str) -> dict:
    (project / "dags" / f"{dag_id}.py").write_text(text)
    result = run_cli("dags", "test", dag_id, "2026-02-03", "--json")
    return json.loads(result.output)


def test_ported_dag_runs_with_airflow_names(run_cli, project: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="dagrunner.authoring")
    data = _run(run_cli, project, PORTED, "ported")
    assert data["tasks"] == {
        "start": "success",
        "ask": "success",
        "skip_me": "skipped",  # AirflowSkipException
        "give_up": "failed",  # AirflowFailException: no retry although retries=2
        "flaky": "success",  # AirflowException: retried like any error, succeeds on try 2
        "shout": "upstream_failed",
        "load.a": "upstream_failed",
        "load.b": "upstream_failed",
        "end": "success",  # all_done
    }, data
    assert data["state"] == "success"  # Airflow's rule: the leaves decide, and `end` (all_done) succeeded
    tries = (project / "dags" / "tries.txt").read_text().splitlines()
    assert "ask ask on 2026-02-03" in tries  # get_current_context from a helper
    assert tries.count("give_up try 1") == 1 and not any(t.startswith("give_up try 2") for t in tries)
    assert "flaky try 1" in tries and "flaky try 2" in tries
    logs = " ".join(r.getMessage() for r in caplog.records)
    assert "executor_config= is ignored" in logs and "run_as_user= is ignored" in logs
    assert "access_control= is ignored" in logs and "sends no e-mail" in logs


def test_ported_dag_xcom_and_filters(run_cli, project: Path) -> None:
    ok = PORTED.replace("raise AirflowFailException", "return None  #").replace("raise AirflowSkipException", "pass  #")
    data = _run(run_cli, project, ok, "ported")
    assert data["state"] == "success", data
    run_id = data["run_id"]
    assert "HELLO DATA!" in run_cli("tasks", "logs", "ported", "shout", run_id).output  # filter + macro
    assert set(data["tasks"].values()) == {"success"}


def test_show_draws_labels_and_groups(run_cli, project: Path) -> None:
    (project / "dags" / "ported.py").write_text(PORTED)
    drawn = run_cli("dags", "show", "ported").output
    assert "start ──▶ ask [always]" in drawn
    assert "Ported from Airflow" in drawn
    assert "task groups" in drawn and "[load] load.a, load.b" in drawn
    assert "skip_me ──▶ load.a, load.b, shout" in drawn  # chain_linear: every task to every task
    dot = run_cli("dags", "show", "ported", "--dot").output
    assert '"start" -> "ask" [label="always"];' in dot
    assert 'subgraph "cluster_load" {' in dot and '"load.a";' in dot


PARAMS = """
import pendulum
from dagrunner import DAG, Param, ParamsDict, task

params = ParamsDict({"rows": Param(5, type="integer", minimum=1), "name": "x"})
params["rows"] = 7  # checked against the Param's schema, which it keeps

with DAG("paramsdict", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params=params,
         render_template_as_native_obj=True):

    @task
    def show(rows, params=None):
        assert params["rows"] == 7 and params["name"] == "x", params
        assert rows == 14, repr(rows)  # native rendering: an int, not "14"

    show(rows="{{ params.rows * 2 }}")
"""


def test_paramsdict_defines_the_dag_params_and_their_schema(run_cli, project: Path) -> None:
    data = _run(run_cli, project, PARAMS, "paramsdict")
    assert data["state"] == "success", run_cli("tasks", "logs", "paramsdict", "show", data["run_id"]).output
    bad = run_cli("dags", "trigger", "paramsdict", "--conf", '{"rows": 0}')
    assert bad.exit_code != 0 and "rows" in bad.output
