"""Connections and variables through the real click tree, and a DAG run that reads them (#15)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

DAG = """
import pendulum
from dagrunner import DAG, Connection, Variable, task
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
    run_cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    monkeypatch.setenv("DAGRUNNER_DB_URL", db_url)
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


def test_bad_input_is_one_clear_line(
    run_cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    monkeypatch.setenv("DAGRUNNER_DB_URL", db_url)
    assert run_cli("variables", "set", "x", "1").exit_code == 0
    missing = run_cli("connections", "get", "nope")
    assert missing.exit_code == 1 and "no connection 'nope'" in missing.output
    bad_uri = run_cli("connections", "add", "c", "--conn-uri", "not a uri")
    assert bad_uri.exit_code == 1 and "is not a URI" in bad_uri.output
    monkeypatch.setenv("DAGRUNNER_FERNET_KEY", "x" * 44)
    malformed = run_cli("variables", "get", "x")
    assert malformed.exit_code == 1 and "not a Fernet key" in malformed.output
    monkeypatch.setenv("DAGRUNNER_FERNET_KEY", "3u4Bc7uSsRdWJbWYhWcHoY8pTwm4bTpnAuCmXyfNLy8=")
    wrong = run_cli("variables", "get", "x")
    assert wrong.exit_code == 1 and wrong.output.count("\n") == 1 and "cannot be decrypted" in wrong.output
    monkeypatch.delenv("DAGRUNNER_FERNET_KEY")
    not_json = run_cli("variables", "set", "y", "{oops", "--json")
    assert not_json.exit_code == 1 and "not JSON" in not_json.output
    bad_extra = run_cli("connections", "add", "c", "--conn-type", "http", "--conn-extra", "[1]")
    assert bad_extra.exit_code == 1 and "extra must be a JSON object" in bad_extra.output
    exported = tmp_path / "vars.json"
    assert run_cli("variables", "export", str(exported)).exit_code == 0
    assert json.loads(exported.read_text()) == {"x": 1}
    assert run_cli("variables", "delete", "x").exit_code == 0
    assert run_cli("variables", "import", str(exported)).exit_code == 0
    assert run_cli("variables", "get", "x").output.strip() == "1"


def test_add_forms_list_delete_and_rotate(
    run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    monkeypatch.setenv("DAGRUNNER_DB_URL", db_url)
    old, new = "3u4Bc7uSsRdWJbWYhWcHoY8pTwm4bTpnAuCmXyfNLy8=", "yO1eJ4r5Qy3BSnAtqRzZbdfJ3sJ5UbW-9wcSEsp_n-I="
    monkeypatch.setenv("DAGRUNNER_FERNET_KEY", old)
    conn_json = (
        '{"conn_type": "http", "host": "api.example", "password": "hunter2hunter2", "extra": {"api_key": "k-12345678"}}'
    )
    assert run_cli("connections", "add", "api", "--conn-json", conn_json).exit_code == 0
    fields = run_cli("connections", "add", "db", "--conn-type", "postgres", "--conn-host", "h", "--conn-port", "5432",
                     "--conn-login", "u", "--conn-password", "pw-123456", "--conn-description", "main db")  # fmt: skip
    assert fields.exit_code == 0, fields.output
    again = run_cli("connections", "add", "db", "--conn-uri", "postgres://h")
    assert again.exit_code == 1 and "already exists" in again.output
    shown = json.loads(run_cli("connections", "get", "api", "--json").output)
    assert shown["password"] == "***" and shown["extra"] == {"api_key": "***"}
    revealed = json.loads(run_cli("connections", "get", "api", "--json", "--reveal").output)
    assert revealed["extra"] == {"api_key": "k-12345678"} and revealed["uri"].startswith("http://:hunter2hunter2@")
    listed = json.loads(run_cli("connections", "list", "--json").output)
    assert [(c["conn_id"], c["password"], c["description"]) for c in listed] == [
        ("api", "***", None), ("db", "***", "main db")
    ]  # fmt: skip
    assert "hunter2hunter2" not in run_cli("connections", "list").output

    monkeypatch.setenv("DAGRUNNER_FERNET_KEY", f"{new},{old}")  # rotate: new first, old still decrypts
    assert "re-encrypted" in run_cli("rotate-fernet-key").output
    monkeypatch.setenv("DAGRUNNER_FERNET_KEY", new)
    assert json.loads(run_cli("connections", "get", "db", "--json", "--reveal").output)["password"] == "pw-123456"

    assert run_cli("connections", "delete", "db").exit_code == 0
    gone = run_cli("connections", "delete", "db")
    assert gone.exit_code == 1 and "no connection 'db'" in gone.output
