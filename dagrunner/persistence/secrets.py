"""Connections and variables in the metadata DB, their secrets encrypted (`persistence.fernet`).

A connection's password and extra and a variable's value are stored as Fernet tokens; reads decrypt them
with the configured key (a wrong key is a `FernetKeyError`, never plaintext). Adding, setting and
deleting are audited (`connection.added`, `connection.deleted`, `variable.set`, `variable.deleted`) with
the key only: the audit log never holds a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.errors import InvalidArgumentError, NotFoundError
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.fernet import SecretBox
from dagrunner.persistence.models import ConnectionRecord, VariableRecord

#: The fields of a connection as Airflow's JSON form names them.
CONNECTION_FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")


@dataclass(frozen=True)
class ConnectionSummary:
    """What `connections list` shows: no secret, so nothing to decrypt."""

    conn_id: str
    conn_type: str
    host: str | None
    port: int | None
    schema: str | None
    login: str | None
    description: str | None
    has_password: bool
    has_extra: bool


def add_connection(
    session: Session, conn_id: str, fields: dict[str, Any], box: SecretBox, *, actor: str, when: datetime
) -> None:
    """Store a new connection (`fields`: the JSON form, `extra` a JSON string or None)."""
    if session.get(ConnectionRecord, conn_id) is not None:
        raise InvalidArgumentError(
            f"connection {conn_id!r} already exists; `dagrunner connections delete {conn_id}` first to replace it"
        )
    password, extra = fields.get("password"), fields.get("extra")
    session.add(
        ConnectionRecord(
            conn_id=conn_id,
            conn_type=fields.get("conn_type") or "",
            description=fields.get("description"),
            host=fields.get("host"),
            schema=fields.get("schema"),
            login=fields.get("login"),
            password=box.encrypt(password) if password else None,
            port=fields.get("port"),
            extra=box.encrypt(extra) if extra else None,
            updated_at=when,
        )
    )
    record_event(session, "connection.added", actor=actor, when=when, detail={"conn_id": conn_id})


def connection_fields(session: Session, conn_id: str, box: SecretBox) -> dict[str, Any] | None:
    """The stored connection as Airflow's JSON form (password and extra decrypted; extra a JSON string)."""
    row = session.get(ConnectionRecord, conn_id)
    if row is None:
        return None
    what = f"the password of connection {conn_id!r}"
    fields: dict[str, Any] = {name: getattr(row, name) for name in CONNECTION_FIELDS}
    fields["password"] = box.decrypt(row.password, what) if row.password else None
    fields["extra"] = box.decrypt(row.extra, f"the extra of connection {conn_id!r}") if row.extra else None
    return {k: v for k, v in fields.items() if v is not None}


def connection_json(session: Session, conn_id: str, box: SecretBox) -> str | None:
    """`connection_fields` as the JSON text a try reads (extra parsed, as in Airflow's JSON form)."""
    fields = connection_fields(session, conn_id, box)
    if fields is None:
        return None
    if "extra" in fields:
        fields["extra"] = json.loads(fields["extra"])
    return json.dumps(fields)


def list_connections(session: Session) -> list[ConnectionSummary]:
    rows = session.scalars(select(ConnectionRecord).order_by(ConnectionRecord.conn_id))
    return [
        ConnectionSummary(r.conn_id, r.conn_type, r.host, r.port, r.schema, r.login, r.description,
                          r.password is not None, r.extra is not None)
        for r in rows
    ]  # fmt: skip


def delete_connection(session: Session, conn_id: str, *, actor: str, when: datetime) -> None:
    row = session.get(ConnectionRecord, conn_id)
    if row is None:
        raise NotFoundError(f"no connection {conn_id!r}; `dagrunner connections list` shows them")
    session.delete(row)
    record_event(session, "connection.deleted", actor=actor, when=when, detail={"conn_id": conn_id})


def set_variable(
    session: Session, key: str, value: str, box: SecretBox, *, description: str | None, actor: str, when: datetime
) -> None:
    """Create or replace variable `key` (a description given replaces the old one; None keeps it)."""
    if not key:
        raise InvalidArgumentError("a variable key must not be empty")
    row = session.get(VariableRecord, key)
    if row is None:
        session.add(VariableRecord(key=key, val=box.encrypt(value), description=description, updated_at=when))
    else:
        row.val = box.encrypt(value)
        row.updated_at = when
        if description is not None:
            row.description = description
    record_event(session, "variable.set", actor=actor, when=when, detail={"key": key})


def variable_value(session: Session, key: str, box: SecretBox) -> str | None:
    row = session.get(VariableRecord, key)
    return None if row is None else box.decrypt(row.val, f"variable {key!r}")


def list_variables(session: Session, box: SecretBox) -> list[tuple[str, str, str | None]]:
    """(key, value, description) of every variable, by key."""
    rows = session.scalars(select(VariableRecord).order_by(VariableRecord.key))
    return [(r.key, box.decrypt(r.val, f"variable {r.key!r}"), r.description) for r in rows]


def delete_variable(session: Session, key: str, *, actor: str, when: datetime) -> None:
    row = session.get(VariableRecord, key)
    if row is None:
        raise NotFoundError(f"no variable {key!r}; `dagrunner variables list` shows them")
    session.delete(row)
    record_event(session, "variable.deleted", actor=actor, when=when, detail={"key": key})


def rotate_secrets(session: Session, box: SecretBox, *, actor: str, when: datetime) -> int:
    """Re-encrypt every stored secret with the first key of `box`; how many values were re-encrypted."""
    count = 0
    for conn in session.scalars(select(ConnectionRecord)):
        for name in ("password", "extra"):
            token = getattr(conn, name)
            if token:
                setattr(conn, name, box.rotate(token, f"the {name} of connection {conn.conn_id!r}"))
                count += 1
    for var in session.scalars(select(VariableRecord)):
        var.val = box.rotate(var.val, f"variable {var.key!r}")
        count += 1
    record_event(session, "fernet_key.rotated", actor=actor, when=when, detail={"values": count})
    return count
