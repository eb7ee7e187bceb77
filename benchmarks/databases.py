"""A fresh, empty metadata database per repetition: a SQLite file in the project, or a new PostgreSQL database.

PostgreSQL: the server comes from DAGRUNNER_BENCH_PG_URL, else DAGRUNNER_TEST_PG_URL, else a local
default. A database is created from template0 on an autocommit connection and dropped (FORCE) afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

DB_KINDS = ("sqlite", "postgres")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_server_url() -> str:
    url = os.environ.get("DAGRUNNER_BENCH_PG_URL") or os.environ.get("DAGRUNNER_TEST_PG_URL") or DEFAULT_PG_URL
    sa_url = make_url(url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    return sa_url.render_as_string(hide_password=False)


@contextmanager
def fresh_database(kind: str, root: Path, name: str = "dagrunner") -> Iterator[str]:
    """The URL of an empty database of `kind` that exists for the duration of the block.

    SQLite: the file `<root>/.dagrunner/<name>.db` (a second `name` gives a second database).
    """
    if kind == "sqlite":
        yield f"sqlite:///{root / '.dagrunner' / f'{name}.db'}"
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}; choose one of {', '.join(DB_KINDS)}")
    admin = create_engine(pg_server_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"dr_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            yield admin.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def describe(url: str) -> str:
    """The URL without its password, for the report."""
    return make_url(url).render_as_string(hide_password=True)
