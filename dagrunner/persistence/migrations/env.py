"""Alembic environment for dagrunner's metadata database.

dagrunner drives Alembic from code (`persistence.schema`), handing over an open connection whose
transaction it owns: the whole upgrade commits or rolls back as one, on SQLite too (our engine emits a
real BEGIN, so SQLite DDL is transactional). For developers writing a new revision, the same file also
works from the command line:

    alembic -c dagrunner/persistence/alembic.ini revision --autogenerate -m "add x"

which connects to `-x url=...`, else `$DAGRUNNER_DB_URL`, else the project's configured database.

SQLite cannot ALTER most things, so migrations run in batch mode there (copy-and-move tables). A future
batch migration that rebuilds a table referenced by foreign keys must not run with `PRAGMA foreign_keys=ON`
inside its transaction; such a revision has to say how it handles that.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from dagrunner.persistence.models import Base


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_command_line() -> None:
    from dagrunner.persistence.engine import make_engine
    from dagrunner.settings import Settings

    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DAGRUNNER_DB_URL")
    engine = make_engine(url or Settings.load().db_url)
    try:
        with engine.begin() as connection:
            _configure_and_run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("dagrunner migrations run online only (no --sql); use `dagrunner db upgrade`")

_connection = context.config.attributes.get("connection")
if _connection is not None:
    _configure_and_run(_connection)
else:
    _run_from_command_line()
