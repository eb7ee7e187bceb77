"""Fixtures every test folder may use: a real, empty metadata database on SQLite and on PostgreSQL.

`db_url` is parametrized over both dialects, so a test that takes it (or `engine` / `migrated_engine`)
runs twice. The PostgreSQL run needs `DAGRUNNER_TEST_PG_URL` (a server where the user may CREATE
DATABASE; CI sets it) and is skipped without it. Each PostgreSQL test gets a database of its own, created
from template0 and dropped with FORCE afterwards (~50 ms): full isolation, nothing to clean up by hand,
and tests of `reset_db` or DDL cannot disturb each other.

`migrated_engine` does not run the migrations for every test (~0.1 s on SQLite, ~0.25 s on PostgreSQL,
a third of the suite's time when it did): the schema is built once per session by the real `init_db`
into a template, and each test gets a copy of it (SQLite: the file is copied; PostgreSQL: `CREATE
DATABASE ... TEMPLATE`). Each session builds its own templates from the migrations it has, so a new or
edited migration is always in them. Tests of the migrations themselves take `engine` (an empty database)
and call `init_db`/`upgrade_db` as production does.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

from dagrunner.persistence.engine import make_engine, sqlite_path
from dagrunner.persistence.schema import init_db

PG_ENV = "DAGRUNNER_TEST_PG_URL"
#: Set on a test's node when its PostgreSQL database was cloned from the migrated template.
_PREMIGRATED = pytest.StashKey[bool]()


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
def pg_url(pg_admin: Engine, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a brand-new, empty PostgreSQL database, dropped after the test.

    When the test also takes `migrated_engine`, the database is cloned from the migrated template instead,
    and `migrated_engine` has nothing left to do.
    """
    name = f"dr_test_{uuid.uuid4().hex[:12]}"
    callspec = getattr(request.node, "callspec", None)
    premigrated = (
        "migrated_engine" in request.fixturenames
        and callspec is not None
        and callspec.params.get("db_url") == "postgres"
    )
    template = str(request.getfixturevalue("pg_template")) if premigrated else "template0"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    request.node.stash[_PREMIGRATED] = premigrated
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
def migrated_engine(engine: Engine, request: pytest.FixtureRequest) -> Engine:
    """`engine` with the schema created at head (a copy of the session's migrated template)."""
    if engine.dialect.name == "sqlite":
        path = sqlite_path(engine.url)
        if path is not None and not path.exists():  # nothing has opened it yet: the copy is all it needs
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            return engine
    elif request.node.stash.get(_PREMIGRATED, False):
        return engine
    init_db(engine)  # a database something else created first: migrate it the ordinary way
    return engine


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head by `init_db`, for `migrated_engine` to copy (one per session)."""
    path = tmp_path_factory.mktemp("template") / "dagrunner.db"
    template = make_engine(f"sqlite:///{path}")
    try:
        init_db(template)
    finally:
        template.dispose()  # the last connection checkpoints the WAL into the file and removes it
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the SQLite template is not self-contained: {leftovers}"
    return path


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine) -> Iterator[str]:
    """A PostgreSQL database migrated to head by `init_db`, for `pg_url` to clone; dropped at the end.

    Its name is unique, so pytest processes running at once (xdist workers, other checkouts on the same
    server) each build and drop their own. It refuses connections: PostgreSQL cannot clone a database
    that anyone is connected to.
    """
    name = f"dr_template_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        template = make_engine(pg_admin.url.set(database=name).render_as_string(hide_password=False))
        try:
            init_db(template)
        finally:
            template.dispose()
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        yield name
    finally:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psycopg(url: str) -> str:
    sa_url = make_url(url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    return sa_url.render_as_string(hide_password=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cases that do not apply are not collected (deselected), rather than collected and skipped:
    `@pytest.mark.only_db("sqlite")` keeps only those `db_url` parametrizations, and the celery executor's
    contract (tests/execution) runs on SQLite only: its DB side is the local executor's own code, which the
    celery worker runs, covered on PostgreSQL by the local half (celery on PostgreSQL:
    tests/execution/test_celery_executor.py)."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        db = params.get("db_url")
        marker = item.get_closest_marker("only_db")
        wrong_db = marker is not None and db is not None and db not in marker.args
        celery_on_pg = params.get("executor") == "celery" and db == "postgres"
        (drop if wrong_db or celery_on_pg else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
