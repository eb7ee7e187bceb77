"""Connections and variables through the real click tree, and a DAG run that reads them (#15)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

DAG = """
import pendulum
from dagrunner import DAG, task
from dagrunner.authoring.connection import Connection
from dagrunner.authoring.variable import Variable
from dagrunner.operators import BashOperator

with DAG("uses_secrets", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    BashOperator(task_id="templated",
                 bash_command="echo host={{ conn.my_db.host }} region={{ var.value.region }} "
                              "rows={{ var.json.limits.rows }} pw={{ conn.my_db.password }}")

    @task
    def in_code():
        conn = Connection.get("my_db")
        print("login", conn.login, "password", conn.password, "token", Variable.get("api_token"))
        print("env wins", Variable.get("region"), Variable.get("limits", deserialize_json=True)["rows"])
        return conn.port

    in_code()
"""


def test_cli_and_a_dag_run_read_stored_secrets_masked(
    run_cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "dags" / "uses_secrets.py").write_text(DAG)
    added = run_cli("connections", "add", "my_db", "--conn-uri", "postgres://etl:s3cretpass@db.example:5432/sales")
    assert added.exit_code == 0, added.output
    assert run_cli("variables", "set", "region", "eu-west").exit_code == 0
    assert run_cli("variables", "set", "limits", '{"rows": 10}', "--json").exit_code == 0
    assert run_cli("variables", "set", "api_token", "tok-123456789").exit_code == 0
    shown = run_cli("connections", "get", "my_db", "--json")
    assert json.loads(shown.output)["password"] == "***" and "s3cretpass" not in shown.output
    assert "tok-123456789" not in run_cli("variables", "list").output
    assert run_cli("variables", "get", "api_token", "--reveal").output.strip() == "tok-123456789"
    key = project / ".dagrunner" / "fernet.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"

    result = run_cli("dags", "test", "uses_secrets", "2026-01-05")
    assert result.exit_code == 0, result.output
    logs = "".join(p.read_text() for p in (project / ".dagrunner" / "logs").rglob("*.log"))
    assert "host=db.example region=eu-west rows=10 pw=***" in logs
    assert "login etl password *** token ***" in logs
    assert "s3cretpass" not in logs and "tok-123456789" not in logs

    monkeypatch.setenv("DAGRUNNER_VAR_REGION", "from-env")  # the environment wins over the metadata DB
    result = run_cli("dags", "test", "uses_secrets", "2026-01-06")
    logs = "".join(p.read_text() for p in (project / ".dagrunner" / "logs").rglob("*.log"))
    assert "env wins from-env 10" in logs


def test_bad_input_is_one_clear_line(run_cli: Callable[..., Result], project: Path, tmp_path: Path) -> None:
    assert run_cli("variables", "set", "x", "1").exit_code == 0
    missing = run_cli("connections", "get", "nope")
    assert missing.exit_code == 1 and "no connection 'nope'" in missing.output
    bad_uri = run_cli("connections", "add", "c", "--conn-uri", "not a uri")
    assert bad_uri.exit_code == 1 and "is not a URI" in bad_uri.output
    os.environ["DAGRUNNER_FERNET_KEY"] = "x" * 44
    try:
        wrong = run_cli("variables", "get", "x")
    finally:
        del os.environ["DAGRUNNER_FERNET_KEY"]
    assert wrong.exit_code == 1 and "not a Fernet key" in wrong.output
    exported = tmp_path / "vars.json"
    assert run_cli("variables", "export", str(exported)).exit_code == 0
    assert json.loads(exported.read_text()) == {"x": 1}
    assert run_cli("variables", "delete", "x").exit_code == 0
    assert run_cli("variables", "import", str(exported)).exit_code == 0
    assert run_cli("variables", "get", "x").output.strip() == "1"
