"""`dagrunner connections add|get|list|delete` (Airflow's commands and flags; `--json` for scripts).

Passwords are stored encrypted (`persistence.fernet`) and never shown: `get` and `list` print `***` in
their place (in the URI too) unless `get --reveal` is given. Adding and deleting are audited.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from dagrunner.authoring.connection import Connection
from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.errors import InvalidConnectionError
from dagrunner.execution.masking import MASK


@click.group()
def connections() -> None:
    """Add, show, list and delete connections (passwords encrypted at rest)."""


@connections.command("add")
@click.argument("conn_id")
@click.option("--conn-uri", help="The connection as a URI: conn-type://login:password@host:port/schema?extra=value.")
@click.option("--conn-json", help='The connection as JSON: {"conn_type": ..., "host": ..., "extra": {...}}.')
@click.option("--conn-type", help="Type (postgres, http, ...), when no URI or JSON is given.")
@click.option("--conn-host")
@click.option("--conn-login")
@click.option("--conn-password", help="Prefer --conn-uri / --conn-json from a file or env: arguments land in history.")
@click.option("--conn-schema")
@click.option("--conn-port")
@click.option("--conn-extra", help="A JSON object.")
@click.option("--conn-description")
@pass_cli
def add(cli: CliContext, conn_id: str, conn_uri: str | None, conn_json: str | None, conn_type: str | None,
        conn_host: str | None, conn_login: str | None, conn_password: str | None, conn_schema: str | None,
        conn_port: str | None, conn_extra: str | None, conn_description: str | None) -> None:  # fmt: skip
    """Add connection CONN_ID from --conn-uri, --conn-json, or the --conn-* fields (audited)."""
    from dagrunner.persistence.secrets import add_connection

    fields_given = any(v is not None for v in (conn_type, conn_host, conn_login, conn_password, conn_schema,
                                                conn_port, conn_extra))  # fmt: skip
    if sum([conn_uri is not None, conn_json is not None, fields_given]) != 1:
        raise click.UsageError("give one of --conn-uri, --conn-json, or the --conn-* fields (with --conn-type)")
    if conn_uri is not None:
        conn = Connection.from_uri(conn_uri, conn_id=conn_id)
    elif conn_json is not None:
        conn = Connection.from_json(conn_json, conn_id=conn_id)
    else:
        if not conn_type:
            raise click.UsageError("--conn-type is required with the --conn-* fields")
        conn = Connection(conn_id=conn_id, conn_type=conn_type, host=conn_host, schema=conn_schema,
                          login=conn_login, password=conn_password, port=conn_port, extra=conn_extra)  # fmt: skip
    if conn_description is not None:
        conn.description = conn_description
    if not conn.conn_type:
        raise InvalidConnectionError(f"connection {conn_id!r}: conn_type is missing")
    fields = conn.to_dict(prune_empty=True)
    fields["extra"] = conn.extra
    with cli.session() as session:
        add_connection(session, conn_id, fields, _box(cli), actor=cli.actor, when=datetime.now(UTC))
    render.info(f"connection {conn_id} added")


@connections.command("get")
@click.argument("conn_id")
@click.option("--reveal", is_flag=True, help="Show the password and secret extras instead of ***.")
@json_option("the connection")
@pass_cli
def get(cli: CliContext, conn_id: str, reveal: bool, as_json: bool) -> None:
    """Show connection CONN_ID (the stored one; the environment's DAGRUNNER_CONN_* are not read here)."""
    from dagrunner.errors import NotFoundError
    from dagrunner.persistence.secrets import connection_fields

    with cli.read_session() as session:
        fields = connection_fields(session, conn_id, _box(cli))
    if fields is None:
        raise NotFoundError(f"no connection {conn_id!r}; `dagrunner connections list` shows them")
    conn = Connection.from_json(json.dumps(fields), conn_id=conn_id)
    shown = conn if reveal else masked(conn)
    data = {**shown.to_dict(prune_empty=True), "uri": shown.get_uri().replace("%2A%2A%2A", MASK)}
    if as_json:
        render.print_json(data)
        return
    render.table(f"connection {conn_id}", ["field", "value"], [(k, _text(v)) for k, v in data.items()])


@connections.command("list")
@json_option("the connections")
@pass_cli
def list_connections(cli: CliContext, as_json: bool) -> None:
    """Every stored connection, without secrets."""
    from dagrunner.persistence.secrets import list_connections as stored

    with cli.read_session() as session:
        rows = stored(session)
    if as_json:
        render.print_json([{**r.__dict__, "password": MASK if r.has_password else None} for r in rows])
        return
    render.table("connections", ["conn_id", "type", "host", "port", "schema", "login", "password", "description"],
                 [(r.conn_id, r.conn_type, r.host, r.port, r.schema, r.login, MASK if r.has_password else None,
                   r.description) for r in rows])  # fmt: skip


@connections.command("delete")
@click.argument("conn_id")
@pass_cli
def delete(cli: CliContext, conn_id: str) -> None:
    """Delete connection CONN_ID (audited)."""
    from dagrunner.persistence.secrets import delete_connection

    with cli.session() as session:
        delete_connection(session, conn_id, actor=cli.actor, when=datetime.now(UTC))
    render.info(f"connection {conn_id} deleted")


def masked(conn: Connection) -> Connection:
    """A copy with the password and the secret-looking extras replaced by ***."""
    extra = {k: (MASK if v not in (None, "") and str(v) in conn.secrets() else v) for k, v in conn.extra_dejson.items()}
    return Connection(conn_id=conn.conn_id, conn_type=conn.conn_type, description=conn.description, host=conn.host,
                      schema=conn.schema, login=conn.login, password=MASK if conn.password else None, port=conn.port,
                      extra=extra or None)  # fmt: skip


def _box(cli: CliContext):  # type: ignore[no-untyped-def]
    from dagrunner.persistence.fernet import secret_box

    return secret_box(cli.settings.state_folder)


def _text(value: object) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)
