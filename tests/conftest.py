"""Fixtures every test folder may use: a real, empty metadata database on SQLite and on PostgreSQL.

`db_url` is parametrized over both dialects, so a test that takes it (or `engine` / `migrated_engine`)
runs twice. The PostgreSQL run needs `DAGRUNNER_TEST_PG_URL` (a server where the user may CREATE
DATABASE; CI sets it) and is skipped without it. Each PostgreSQL test gets a database of its own, created
from template0 and dropped with FORCE afterwards (~50 ms): full isolation, nothing to clean up by hand,
and tests of `reset_db` or DDL cannot disturb each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

from dagrunner.persistence.engine import make_engine
from dagrunner.persistence.schema import init_db

PG_ENV = "DAGRUNNER_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An autocommit engine on the server named by DAGRUNNER_TEST_PG_URL (skips when unset)."""
    url = os.environ.get(PG_ENV)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{PG_ENV} is not set in CI: the PostgreSQL tests must run there, not be skipped")
    if not url:
        pytest.skip(f"{PG_ENV} is not set; PostgreSQL tests need a server (CI sets it)")
    admin = create_engine(_psycopg(url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield admin
    admin.dispose()


@pytest.fixture
def pg_url(pg_admin: Engine) -> Iterator[str]:
    """The URL of a brand-new, empty PostgreSQL database, dropped after the test."""
    name = f"dr_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield pg_admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file that does not exist yet (its directory does not either)."""
    return f"sqlite:///{tmp_path / 'state' / 'dagrunner.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty metadata database, once per dialect."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the empty `db_url` database (short busy timeout so a lock bug fails fast)."""
    eng = make_engine(db_url, busy_timeout=5.0)
    yield eng
    eng.dispose()


@pytest.fixture
def migrated_engine(engine: Engine) -> Engine:
    """`engine` with the schema created at head."""
    init_db(engine)
    return engine


def _psycopg(url: str) -> str:
    sa_url = make_url(url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    return sa_url.render_as_string(hide_password=False)
