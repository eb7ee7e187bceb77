"""A try reads connections and variables from the metadata DB (after the environment) on every executor:
in templates (`conn`, `var.value`, `var.json`) and in code (`Connection.get`, `Variable.get/set`), with
their secrets masked in its log (#15)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dagrunner.execution.logs import read_log
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.fernet import secret_box
from dagrunner.persistence.secrets import add_connection, set_variable, variable_value

from .conftest import ExecutorFactory, Project
from .helpers import create_run, queue_try, run_one, xcoms_of

PASSWORD = "pg-s3cret-Passw0rd"
TOKEN = "tok-abcdef-987654"
NOW = datetime(2026, 1, 5, tzinfo=UTC)

DAG_SOURCE = """
import pendulum
from dagrunner import DAG
from dagrunner.authoring.connection import Connection
from dagrunner.authoring.variable import Variable
from dagrunner.operators import BashOperator, PythonOperator


def in_code():
    conn = Connection.get("warehouse")
    print("conn", conn.conn_type, conn.host, conn.port, conn.login, conn.password, conn.extra_dejson["sslmode"])
    print("token", Variable.get("api_token"), "rows", Variable.get("limits", deserialize_json=True)["rows"])
    print("missing", Variable.get("nope", default="fallback"))
    Variable.set("written_by_task", {"ok": True}, serialize_json=True)
    return {"port": conn.port, "uri": conn.get_uri()}


def unknown():
    Connection.get("no_such_conn")


with DAG("secrets", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    BashOperator(task_id="templated", bash_command=(
        "echo host={{ conn.warehouse.host }} schema={{ conn.warehouse.schema }} pw={{ conn.warehouse.password }} "
        "region={{ var.value.region }} rows={{ var.json.limits.rows }}"))
    PythonOperator(task_id="in_code", python_callable=in_code)
    PythonOperator(task_id="unknown", python_callable=unknown)
    BashOperator(task_id="not_json", bash_command="echo {{ var.json.region }}")
"""


@pytest.fixture
def stored(project: Project) -> None:
    box = secret_box(project.settings.state_folder)
    with session_scope(project.engine) as session:
        add_connection(
            session,
            "warehouse",
            {"conn_type": "postgres", "host": "wh.example", "schema": "sales", "login": "etl", "password": PASSWORD,
             "port": 5432, "extra": '{"sslmode": "require"}'},
            box, actor="test", when=NOW,
        )  # fmt: skip
        set_variable(session, "region", "eu-west", box, description=None, actor="test", when=NOW)
        set_variable(session, "limits", '{"rows": 10}', box, description=None, actor="test", when=NOW)
        set_variable(session, "api_token", TOKEN, box, description=None, actor="test", when=NOW)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("name", ["inline", "local"])
def test_a_try_reads_the_metadata_db_with_secrets_masked(
    project: Project, make_executor: ExecutorFactory, name: str
) -> None:
    path = project.dag_file("secrets.py", DAG_SOURCE)
    executor = make_executor(name)
    run = create_run(project.engine, "secrets", ["templated", "in_code", "unknown", "not_json"])

    item = queue_try(project.engine, run, "templated", path)
    assert run_one(executor, item).state == "success"
    log = read_log(project.settings.logs_folder, item.key, 1)
    assert "host=wh.example schema=sales pw=*** region=eu-west rows=10" in log, log

    item = queue_try(project.engine, run, "in_code", path)
    assert run_one(executor, item).state == "success"
    log = read_log(project.settings.logs_folder, item.key, 1)
    assert "conn postgres wh.example 5432 etl *** require" in log, log
    assert "token *** rows 10" in log and "missing fallback" in log
    assert PASSWORD not in log and TOKEN not in log
    xcom = xcoms_of(project.engine, item.key)["return_value"]
    assert xcom["port"] == 5432 and xcom["uri"].startswith("postgres://etl:")
    with session_scope(project.engine, readonly=True) as session:
        written = variable_value(session, "written_by_task", secret_box(project.settings.state_folder))
    assert written is not None and '"ok": true' in written

    item = queue_try(project.engine, run, "unknown", path)
    assert run_one(executor, item).state == "failed"
    log = read_log(project.settings.logs_folder, item.key, 1)
    assert "connection 'no_such_conn' is not defined" in log and "DAGRUNNER_CONN_NO_SUCH_CONN" in log

    item = queue_try(project.engine, run, "not_json", path)
    assert run_one(executor, item).state == "failed"
    assert "variable 'region' (the metadata DB) is not valid JSON" in read_log(
        project.settings.logs_folder, item.key, 1
    )


@pytest.mark.usefixtures("stored")
def test_the_environment_wins_over_the_metadata_db(
    project: Project, make_executor: ExecutorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGRUNNER_VAR_REGION", "from-env")
    monkeypatch.setenv("DAGRUNNER_CONN_WAREHOUSE", '{"conn_type": "postgres", "host": "env.example"}')
    path = project.dag_file("secrets.py", DAG_SOURCE)
    executor = make_executor("inline")
    run = create_run(project.engine, "secrets", ["templated"])
    item = queue_try(project.engine, run, "templated", path)
    assert run_one(executor, item).state == "success"
    log = read_log(project.settings.logs_folder, item.key, 1)
    assert "host=env.example schema=None pw=None region=from-env rows=10" in log, log


def test_a_wrong_fernet_key_fails_the_try_with_one_clear_line(
    project: Project, make_executor: ExecutorFactory, stored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project.dag_file("secrets.py", DAG_SOURCE)
    monkeypatch.setenv("DAGRUNNER_FERNET_KEY", "3u4Bc7uSsRdWJbWYhWcHoY8pTwm4bTpnAuCmXyfNLy8=")
    executor = make_executor("inline")
    run = create_run(project.engine, "secrets", ["in_code"])
    item = queue_try(project.engine, run, "in_code", path)
    assert run_one(executor, item).state == "failed"
    log = read_log(project.settings.logs_folder, item.key, 1)
    assert "cannot be decrypted with the Fernet key from DAGRUNNER_FERNET_KEY" in log, log
    assert PASSWORD not in log
