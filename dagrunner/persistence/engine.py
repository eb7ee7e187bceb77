"""Engines and sessions for the metadata database, and the translation of driver errors into ours.

SQLite transactions: every write transaction starts with `BEGIN IMMEDIATE`. Python's sqlite3 driver
(legacy transaction control, the default through Python 3.15) starts no transaction for a SELECT and a
deferred one for the first write. In WAL mode a transaction that read first and then tries to write,
after another process committed in between, fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT):
the busy timeout is never consulted, because waiting cannot help a stale snapshot. Taking the write lock
at BEGIN makes such a transaction wait up to the busy timeout instead, and makes every read inside it see
the latest data. So: the driver's own BEGIN handling is switched off (`isolation_level = None`) and a
"begin" event emits `BEGIN IMMEDIATE` (the recipe in SQLAlchemy's pysqlite docs, "Serializable isolation /
Savepoints / Transactional DDL"), which also makes DDL and SAVEPOINTs transactional. Read-only sessions
(`session_scope(engine, readonly=True)`, or a connection with the `READONLY_OPTION` execution option) use
a plain deferred `BEGIN`: in WAL mode they never wait for a writer and see one consistent snapshot. Any
other transaction, including a bare `engine.connect()`, takes the write lock, so reads that may run beside
a busy scheduler should say they are read-only. Write transactions must stay short: they serialize all
writers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session

from dagrunner.errors import (
    DatabaseLockedError,
    DatabaseOutageTimeoutError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
    PersistenceError,
)
from dagrunner.settings import mask_url

#: Execution option that marks a connection's transactions as read-only (deferred BEGIN on SQLite).
READONLY_OPTION = "dagrunner_readonly"

#: The errors of a database outage, which waiting may cure: the connection was lost or cannot be made,
#: the SQLite write lock is held elsewhere, or the database refuses writes. A transaction that raised one
#: wrote nothing (it rolled back), so long-running processes retry it (`Outage`) instead of exiting.
OUTAGE_ERRORS: tuple[type[PersistenceError], ...] = (
    DatabaseUnavailableError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
)

#: PostgreSQL SQLSTATEs that mean the connection is gone or cannot be made yet (class 08: connection
#: exception; 57P01-03: terminated by an administrator, crash shutdown, starting up).
_PG_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")
#: read_only_sql_transaction: a standby, or `default_transaction_read_only`.
_PG_READ_ONLY_STATE = "25006"


def make_engine(url: str, *, busy_timeout: float = 30.0) -> Engine:
    """An Engine for `url` (SQLite file or PostgreSQL via psycopg 3) with our pragmas and error handling.

    `busy_timeout` (seconds, SQLite only) is how long a write waits for another process's write lock
    before `DatabaseLockedError`. A plain `postgresql://` URL is given the psycopg 3 driver.
    """
    try:
        sa_url = make_url(url)
    except ArgumentError as exc:
        raise PersistenceError(
            f"database URL {mask_url(url)!r} is not valid ({exc}); expected e.g. sqlite:///path/dagrunner.db "
            "or postgresql+psycopg://user:password@host:5432/dbname"
        ) from exc
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    try:
        if sa_url.get_backend_name() == "sqlite":
            engine = _sqlite_engine(sa_url, busy_timeout)
        else:
            engine = create_engine(sa_url, pool_pre_ping=True)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise PersistenceError(
            f"no database driver for {mask_url(url)!r} ({exc}); for PostgreSQL install "
            "`dagrunner[postgres]` and use a postgresql+psycopg:// URL"
        ) from exc
    _install_error_translation(engine, busy_timeout)
    return engine


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailableError(
                f"cannot create the directory {path.parent} for the SQLite database {path}: {exc}; "
                "set DAGRUNNER_STATE_FOLDER or DAGRUNNER_DB_URL to a writable location"
            ) from exc
    engine = create_engine(url, connect_args={"timeout": busy_timeout})
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver stops emitting BEGIN; _on_begin does it
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")  # first, so the next ones wait too
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")  # readers and one writer at the same time
            cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; no fsync per commit
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get(READONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def sqlite_path(url: URL | str) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    url = make_url(url) if isinstance(url, str) else url
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


@contextmanager
def session_scope(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """A Session whose transaction commits when the block ends and rolls back if it raises.

    `readonly=True` never commits and, on SQLite, does not take the write lock (see the module
    docstring); on PostgreSQL the transaction is READ ONLY. Objects stay usable after the block
    (`expire_on_commit=False`), so callers can render what they loaded.
    """
    bind = engine.execution_options(**{READONLY_OPTION: True, "postgresql_readonly": True}) if readonly else engine
    session = Session(bind=bind, expire_on_commit=False)
    try:
        yield session
        if not readonly:
            session.commit()
        # read-only: close() below ends the transaction without expiring what was loaded
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- errors ------------------------------------------------------------------------------------------


def translate_error(
    exc: BaseException, url: URL | str, *, unreachable: bool = False, busy_timeout: float | None = None
) -> PersistenceError | None:
    """Our error for a driver error, or None when it is not one we explain (e.g. an IntegrityError).

    `unreachable` says the error happened while connecting or lost the connection, so it means the
    database cannot be reached, whatever the driver's wording.
    """
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    message = str(original).strip()
    url = make_url(url) if isinstance(url, str) else url
    if url.get_backend_name() == "sqlite":
        return _translate_sqlite(message, url, busy_timeout)
    sqlstate = str(getattr(original, "sqlstate", None) or "")
    if sqlstate == _PG_READ_ONLY_STATE:
        return DatabaseReadOnlyError(
            f"the metadata database at {mask_url(url.render_as_string(hide_password=False))} refuses writes "
            f"({message.splitlines()[0] if message else sqlstate}): it is a standby or read-only; point "
            "DAGRUNNER_DB_URL at the primary, or make it writable again"
        )
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if unreachable or lost or sqlstate.startswith(_PG_UNREACHABLE_STATES):
        first_line = message.splitlines()[0] if message else type(original).__name__
        return DatabaseUnavailableError(
            f"cannot reach the metadata database at {mask_url(url.render_as_string(hide_password=False))}: "
            f"{first_line}. Check that the server is running, that host, port, user and database name in "
            "DAGRUNNER_DB_URL are right, and that the database exists"
        )
    return None


def _translate_sqlite(message: str, url: URL, busy_timeout: float | None) -> PersistenceError | None:
    where = str(sqlite_path(url) or "(in-memory database)")
    lowered = message.lower()
    if "database is locked" in lowered or "database table is locked" in lowered:
        waited = f"for longer than the busy timeout ({busy_timeout:g}s)" if busy_timeout else "too long"
        return DatabaseLockedError(
            f"the SQLite database {where} is locked: another process (a scheduler, a backfill or another "
            f"dagrunner command) has held its write lock {waited}. Wait for it to finish and retry, stop "
            "the other process, or raise the `sqlite_busy_timeout` setting; to run several schedulers at "
            "once use PostgreSQL"
        )
    if "readonly database" in lowered or "read-only database" in lowered:
        return DatabaseReadOnlyError(
            f"the SQLite database {where} refuses writes ({message}): the file, its directory or its "
            "file system is read-only (or immutable); make it writable again, or point DAGRUNNER_DB_URL elsewhere"
        )
    if "unable to open database file" in lowered:
        return DatabaseUnavailableError(
            f"cannot open the SQLite database {where} ({message}); check that its directory exists and "
            "is writable, or point DAGRUNNER_DB_URL elsewhere"
        )
    if "file is not a database" in lowered or "malformed" in lowered:
        return DatabaseUnavailableError(
            f"{where} is not a usable SQLite database ({message}); move it aside and run "
            "`dagrunner db init`, or point DAGRUNNER_DB_URL at the right file"
        )
    return None


def _install_error_translation(engine: Engine, busy_timeout: float) -> None:
    """Raise our errors instead of the driver's, for every statement, commit and connect on `engine`."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if context.is_pre_ping:  # the pool's liveness probe must see the raw error to reconnect
            return
        ours = translate_error(
            context.sqlalchemy_exception or context.original_exception,
            engine.url,
            unreachable=context.connection is None or context.is_disconnect,
            busy_timeout=busy_timeout,
        )
        if isinstance(ours, DatabaseReadOnlyError) and _asked_readonly(context):
            return  # a write in a session that said it would not write: a bug of ours, not an outage
        if ours is not None:
            raise ours from context.original_exception


def _asked_readonly(context: ExceptionContext) -> bool:
    conn = context.connection
    return conn is not None and bool(conn.get_execution_options().get(READONLY_OPTION, False))


# --- outages -----------------------------------------------------------------------------------------


class Outage:
    """When to retry through a database outage (one of `OUTAGE_ERRORS`), and when to give up.

    Bounded exponential backoff: `first_delay_s`, doubling, at most `max_delay_s`, so a short outage
    (a failover, a restart) costs a fraction of a second and a long one polls the server gently. Past
    `timeout_s` since its first failure the outage is final: `failed` raises DatabaseOutageTimeoutError.
    Time is an argument, so a fake clock steps through an outage without sleeping.
    """

    def __init__(self, timeout_s: float, *, first_delay_s: float = 0.2, max_delay_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.started: datetime | None = None
        self.first_error: PersistenceError | None = None
        self.failures = 0
        #: What the outage was last said to be (`describe_outage`): a change of kind is said again.
        self.described: str | None = None

    @property
    def active(self) -> bool:
        return self.started is not None

    def failed(self, error: PersistenceError, now: datetime) -> float:
        """Another failure at `now`: the seconds to wait before retrying. The first failure of an outage
        is the one to log (`failures == 1` afterwards)."""
        if self.started is None:
            self.started, self.first_error = now, error
        elapsed = (now - self.started).total_seconds()
        if elapsed >= self.timeout_s:
            raise DatabaseOutageTimeoutError(
                f"gave up after the metadata database was unusable for {elapsed:.0f}s (the "
                f"db_unreachable_timeout_sec setting is {self.timeout_s:g}s): {error}"
            ) from error
        delay = min(self.max_delay_s, self.first_delay_s * 2**self.failures, self.timeout_s - elapsed)
        self.failures += 1
        return max(0.0, delay)

    def recovered(self, now: datetime) -> float | None:
        """A transaction worked at `now`: the outage's length in seconds, or None when there was none."""
        if self.started is None:
            return None
        length = (now - self.started).total_seconds()
        self.started, self.first_error, self.failures, self.described = None, None, 0, None
        return length

    def worth_saying(self, error: PersistenceError) -> str | None:
        """The words for `error` when they are news (the outage began, or turned into another kind, e.g.
        a cut connection that comes back read-only); None when they were said already."""
        words = describe_outage(error)
        if words == self.described:
            return None
        self.described = words
        return words


def describe_outage(error: PersistenceError) -> str:
    """A few words on what kind of outage `error` is, for the one line logged when it begins."""
    if isinstance(error, DatabaseReadOnlyError):
        return "the metadata database refuses writes"
    if isinstance(error, DatabaseLockedError):
        return "the metadata database is locked by another process"
    return "the metadata database cannot be reached"
