"""Connections and variables at rest: Fernet tokens in the table, a key file made once with mode 0600,
a wrong key refused, rotation, and audited changes without values (#15), on both dialects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from dagrunner.errors import FernetKeyError, InvalidArgumentError, NotFoundError
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.fernet import secret_box
from dagrunner.persistence.models import AuditLog
from dagrunner.persistence.secrets import (
    add_connection,
    connection_json,
    delete_connection,
    delete_variable,
    list_connections,
    list_variables,
    rotate_secrets,
    set_variable,
    variable_value,
)

NOW = datetime(2026, 1, 5, tzinfo=UTC)
KEY_A = "3u4Bc7uSsRdWJbWYhWcHoY8pTwm4bTpnAuCmXyfNLy8="
KEY_B = "yO1eJ4r5Qy3BSnAtqRzZbdfJ3sJ5UbW-9wcSEsp_n-I="


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = secret_box(tmp_path / "state", environ={})
    key_file = tmp_path / "state" / "fernet.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    token = first.encrypt("value")
    assert secret_box(tmp_path / "state", environ={}).decrypt(token, "x") == "value"  # the same key, read back
    assert secret_box(tmp_path, environ={"DAGRUNNER_FERNET_KEY": KEY_A}).source == "DAGRUNNER_FERNET_KEY"


def test_stored_secrets_are_tokens_and_read_back(migrated_engine: Engine, tmp_path: Path) -> None:
    box = secret_box(tmp_path, environ={"DAGRUNNER_FERNET_KEY": KEY_A})
    with session_scope(migrated_engine) as session:
        add_connection(session, "wh", {"conn_type": "postgres", "host": "h", "login": "etl", "password": "pw-secret-1",
                                       "port": 5432, "extra": '{"sslmode": "require"}'}, box, actor="t", when=NOW)  # fmt: skip
        set_variable(session, "token", "tok-secret-2", box, description="api", actor="t", when=NOW)
    with migrated_engine.connect() as conn:
        raw = [str(row) for row in conn.execute(text("SELECT * FROM connection"))]
        raw += [str(row) for row in conn.execute(text("SELECT * FROM variable"))]
    dump = " ".join(raw)
    assert "pw-secret-1" not in dump and "sslmode" not in dump and "tok-secret-2" not in dump
    assert "etl" in dump  # login and host are not secrets (Airflow stores them plain too)
    with session_scope(migrated_engine, readonly=True) as session:
        stored = json.loads(connection_json(session, "wh", box) or "{}")
        assert stored == {"conn_type": "postgres", "host": "h", "login": "etl", "password": "pw-secret-1",
                          "port": 5432, "extra": {"sslmode": "require"}}  # fmt: skip
        assert variable_value(session, "token", box) == "tok-secret-2"
        assert [c.conn_id for c in list_connections(session)] == ["wh"]
        assert list_variables(session, box) == [("token", "tok-secret-2", "api")]
        events = session.execute(select(AuditLog.event, AuditLog.detail).order_by(AuditLog.id)).all()
    assert [e for e, _ in events] == ["connection.added", "variable.set"]
    assert "pw-secret-1" not in str(events) and "tok-secret-2" not in str(events)


def test_a_wrong_key_is_refused_and_rotation_re_encrypts(migrated_engine: Engine, tmp_path: Path) -> None:
    box_a = secret_box(tmp_path, environ={"DAGRUNNER_FERNET_KEY": KEY_A})
    with session_scope(migrated_engine) as session:
        set_variable(session, "v", "value-1", box_a, description=None, actor="t", when=NOW)
    box_b = secret_box(tmp_path, environ={"DAGRUNNER_FERNET_KEY": KEY_B})
    with session_scope(migrated_engine, readonly=True) as session, pytest.raises(FernetKeyError, match="variable 'v'"):
        variable_value(session, "v", box_b)
    both = secret_box(tmp_path, environ={"DAGRUNNER_FERNET_KEY": f"{KEY_B},{KEY_A}"})
    with session_scope(migrated_engine) as session:
        assert rotate_secrets(session, both, actor="t", when=NOW) == 1
    with session_scope(migrated_engine, readonly=True) as session:
        assert variable_value(session, "v", box_b) == "value-1"
    with pytest.raises(FernetKeyError, match="not a Fernet key"):
        secret_box(tmp_path, environ={"DAGRUNNER_FERNET_KEY": "short"})


def test_duplicates_and_unknown_ids_are_clear_errors(migrated_engine: Engine, tmp_path: Path) -> None:
    box = secret_box(tmp_path, environ={"DAGRUNNER_FERNET_KEY": KEY_A})
    with session_scope(migrated_engine) as session:
        add_connection(session, "c", {"conn_type": "http"}, box, actor="t", when=NOW)
    with session_scope(migrated_engine) as session, pytest.raises(InvalidArgumentError, match="already exists"):
        add_connection(session, "c", {"conn_type": "http"}, box, actor="t", when=NOW)
    with session_scope(migrated_engine) as session:
        delete_connection(session, "c", actor="t", when=NOW)
        with pytest.raises(NotFoundError, match="no connection 'c'"):
            delete_connection(session, "c", actor="t", when=NOW)
        with pytest.raises(NotFoundError, match="no variable 'nope'"):
            delete_variable(session, "nope", actor="t", when=NOW)
