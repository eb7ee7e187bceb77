"""Create, check, upgrade and reset the metadata schema (Alembic, driven from code: no alembic.ini).

`ensure_schema` is what every command calls before it touches the database: it creates the schema of a
brand-new SQLite file on the spot (a laptop user never runs `db init`), and otherwise refuses to work
against a schema of another version, naming the command that fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from dagrunner.errors import DatabaseNotInitializedError, PersistenceError, SchemaNotCurrentError
from dagrunner.persistence.engine import READONLY_OPTION
from dagrunner.persistence.models import TABLE_NAMES
from dagrunner.settings import mask_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
#: Arbitrary constant: the PostgreSQL advisory lock that serializes concurrent migrations.
_PG_MIGRATION_LOCK = 0x6461_6772  # "dagr"


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema stands relative to this version of dagrunner."""

    current: str | None  # None: not initialized
    head: str
    is_current: bool
    #: False when `current` is a revision this dagrunner does not know (a newer dagrunner migrated it).
    is_known: bool = True
    #: dagrunner tables present (they can exist without a revision if created by other means).
    has_tables: bool = False


def alembic_config() -> Config:
    """The Alembic configuration, built in code so that an installed dagrunner needs no ini file."""
    config = Config()
    # configparser interpolation: a '%' in the install path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "dagrunner ships at least one migration"
    return head


def check_db(engine: Engine) -> SchemaStatus:
    """Read the schema revision of the database without changing anything (nor waiting for a writer)."""
    with engine.connect().execution_options(**{READONLY_OPTION: True}) as conn:
        return _status(conn)


def _status(conn: Connection) -> SchemaStatus:
    current = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    known = current is None or _is_known(current)
    has_tables = bool(TABLE_NAMES & set(inspect(conn).get_table_names()))
    return SchemaStatus(current, head, current == head, known, has_tables)


def _is_known(revision: str) -> bool:
    return any(rev.revision == revision for rev in _scripts().walk_revisions())


def upgrade_db(engine: Engine) -> SchemaStatus:
    """Migrate to head in one transaction (an empty database is created from scratch)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes migrating at once would both try to CREATE TABLE; the second now waits.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        _refuse_unmigratable(_status(conn), _where(engine))
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        return _status(conn)


def init_db(engine: Engine) -> SchemaStatus:
    """Create the schema; a database that is already current is left as it is."""
    return upgrade_db(engine)


def reset_db(engine: Engine) -> SchemaStatus:
    """Drop every dagrunner table and the revision marker, then create the schema afresh.

    Only dagrunner's own tables are dropped, so a database shared with other applications keeps theirs.
    """
    with engine.begin() as conn:
        existing = set(inspect(conn).get_table_names())
        drop = MetaData()
        drop.reflect(conn, only=sorted((TABLE_NAMES | {VERSION_TABLE}) & existing))
        drop.drop_all(conn)
    return init_db(engine)


def ensure_schema(engine: Engine, *, auto_init: bool) -> SchemaStatus:
    """Make sure the schema is usable by this dagrunner, creating it when allowed; else say what to run."""
    status = check_db(engine)
    action = schema_action(status, auto_init=auto_init, where=_where(engine))
    if action == "init":
        return init_db(engine)
    return status


def schema_action(status: SchemaStatus, *, auto_init: bool, where: str) -> Literal["ok", "init"]:
    """Decide from the status alone: "ok", "init", or raise the error that tells the user what to run."""
    if status.is_current:
        return "ok"
    _refuse_unmigratable(status, where)
    if status.current is None:
        if auto_init:
            return "init"
        raise DatabaseNotInitializedError(f"the database {where} has no dagrunner schema yet; run `dagrunner db init`")
    raise SchemaNotCurrentError(
        f"the database {where} is at schema revision {status.current} but this dagrunner needs "
        f"{status.head}; run `dagrunner db upgrade` (back the database up first)"
    )


def _refuse_unmigratable(status: SchemaStatus, where: str) -> None:
    """Raise for the two states no migration can fix: foreign tables, or a revision from the future."""
    if status.current is None and status.has_tables:
        raise PersistenceError(
            f"the database {where} has dagrunner tables but no schema revision ({VERSION_TABLE} is "
            "missing), so it cannot be migrated safely; run `dagrunner db reset` to start over "
            "(this deletes its contents)"
        )
    if not status.is_known:
        raise SchemaNotCurrentError(
            f"the database {where} is at schema revision {status.current}, which this dagrunner does not "
            f"know (its newest is {status.head}); a newer dagrunner migrated it: upgrade dagrunner"
        )


def _where(engine: Engine) -> str:
    return mask_url(engine.url.render_as_string(hide_password=False))
