"""Engines: SQLite pragmas, sessions that commit or roll back, and driver errors told in our words."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from pathlib import Path

import pytest
from db_factories import new_run
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from dagrunner.errors import DatabaseUnavailableError, PersistenceError
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import Pool
from dagrunner.persistence.schema import check_db, init_db


def test_sqlite_engine_creates_the_directory_and_sets_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url, busy_timeout=2.5)
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 2500}
    assert Path(sqlite_url.removeprefix("sqlite:///")).is_file()


def test_sqlite_write_transactions_begin_immediate(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    statements: list[str] = []
    try:
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        with session_scope(engine) as session:
            session.execute(select(1))
        with session_scope(engine, readonly=True) as session:
            session.execute(select(1))
    finally:
        engine.dispose()
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


def test_session_scope_commits_on_success_and_rolls_back_on_error(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        session.add(Pool(name="kept", slots=1))
    with pytest.raises(RuntimeError), session_scope(migrated_engine) as session:
        session.add(Pool(name="dropped", slots=1))
        session.flush()
        raise RuntimeError("boom")

    with session_scope(migrated_engine, readonly=True) as session:
        names = set(session.scalars(select(Pool.name)))
    assert names == {"default_pool", "kept"}


def test_readonly_session_objects_stay_usable(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine, readonly=True) as session:
        pool = session.scalars(select(Pool)).one()
    assert (pool.name, pool.slots) == ("default_pool", 128)


def test_integrity_errors_are_left_to_the_caller(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        session.add(new_run(run_id="same"))
    with pytest.raises(IntegrityError), session_scope(migrated_engine) as session:
        session.add(new_run(run_id="same", day=1))


# --- unreachable or unusable databases -------------------------------------------------------------------


def test_unreachable_postgres_names_the_url_with_the_password_masked() -> None:
    engine = make_engine("postgresql+psycopg://bob:s3cret@127.0.0.1:1/meta")
    with pytest.raises(DatabaseUnavailableError) as caught:
        check_db(engine)
    message = str(caught.value)
    assert "postgresql+psycopg://bob:***@127.0.0.1:1/meta" in message
    assert "s3cret" not in message
    assert "DAGRUNNER_DB_URL" in message


@pytest.mark.postgres
def test_missing_postgres_database_is_explained(pg_admin: Engine) -> None:
    url = pg_admin.url.set(database=f"dr_missing_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url.render_as_string(hide_password=False))
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        check_db(engine)


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert make_engine("postgresql://u@localhost/db").url.drivername == "postgresql+psycopg"


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(DatabaseUnavailableError, match="cannot create the directory .*not_a_dir"):
        make_engine(f"sqlite:///{blocker / 'state' / 'dagrunner.db'}")


def test_a_file_that_is_not_a_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "dagrunner.db"
    path.write_bytes(b"this is not a database, it is a text file that is long enough" * 20)
    engine = make_engine(f"sqlite:///{path}")
    with pytest.raises(DatabaseUnavailableError, match=f"{path} is not a usable SQLite database"):
        check_db(engine)


def test_an_invalid_url() -> None:
    with pytest.raises(PersistenceError, match="is not valid"):
        make_engine("not a url at all")


def test_a_readonly_session_never_commits(migrated_engine: Engine) -> None:
    """SQLite lets the write happen and drops it at the end; PostgreSQL refuses it (READ ONLY)."""
    refused = migrated_engine.dialect.name == "postgresql"
    with (
        pytest.raises(DBAPIError) if refused else nullcontext(),
        session_scope(migrated_engine, readonly=True) as s,
    ):
        s.add(Pool(name="sneaky", slots=1))
        s.flush()
    with session_scope(migrated_engine, readonly=True) as session:
        assert session.scalars(select(Pool.name)).all() == ["default_pool"]


def test_in_memory_sqlite_works_for_quick_tests() -> None:
    engine = make_engine("sqlite://")
    try:
        assert init_db(engine).is_current
        with session_scope(engine) as session:
            session.add(Pool(name="p", slots=2))
        with session_scope(engine, readonly=True) as session:
            assert len(session.scalars(select(Pool)).all()) == 2
    finally:
        engine.dispose()


# --- outages ---------------------------------------------------------------------------------------


def test_outage_backs_off_exponentially_within_bounds_and_reports_its_length() -> None:
    from datetime import UTC, datetime

    from dagrunner.clock import FakeClock
    from dagrunner.persistence.engine import Outage

    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    outage = Outage(60.0, first_delay_s=0.5, max_delay_s=4.0)
    assert outage.recovered(clock.now()) is None  # no outage: nothing to report
    error = DatabaseUnavailableError("connection lost")
    delays = []
    for _ in range(6):
        delays.append(outage.failed(error, clock.now()))
        clock.advance(delays[-1])
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert outage.failures == 6 and outage.first_error is error
    assert outage.recovered(clock.now()) == pytest.approx(15.5)
    assert not outage.active and outage.failed(error, clock.now()) == 0.5  # a new outage starts afresh


def test_outage_past_the_timeout_stops_with_one_clear_line() -> None:
    from datetime import UTC, datetime

    from dagrunner.clock import FakeClock
    from dagrunner.errors import DatabaseOutageTimeoutError
    from dagrunner.persistence.engine import Outage

    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    outage = Outage(10.0, first_delay_s=1.0, max_delay_s=8.0)
    error = DatabaseUnavailableError("cannot reach the metadata database at x: terminated")
    while True:
        try:
            delay = outage.failed(error, clock.now())
        except DatabaseOutageTimeoutError as exc:
            message = str(exc)
            break
        assert outage.started is not None
        assert (clock.now() - outage.started).total_seconds() + delay <= 10.0  # never waits past the timeout
        clock.advance(delay)
    assert "\n" not in message
    assert message.startswith("gave up after the metadata database was unusable for 10s")
    assert "db_unreachable_timeout_sec" in message and "terminated" in message


def test_a_sqlite_database_that_refuses_writes_is_classified(tmp_path: Path) -> None:
    """An immutable file (root ignores permissions, not `chattr +i`): new connections may read, not write."""
    import subprocess

    from dagrunner.errors import DatabaseReadOnlyError
    from dagrunner.persistence.engine import OUTAGE_ERRORS

    url = f"sqlite:///{tmp_path / 'ro.db'}"
    engine = make_engine(url, busy_timeout=1.0)
    init_db(engine)
    engine.dispose()
    if subprocess.run(["chattr", "+i", str(tmp_path / "ro.db")], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        engine = make_engine(url, busy_timeout=1.0)
        with session_scope(engine, readonly=True) as session:
            assert session.scalars(select(Pool.name)).all() == ["default_pool"]
        with pytest.raises(DatabaseReadOnlyError, match="refuses writes") as raised, session_scope(engine) as s:
            s.add(Pool(name="p", slots=1))
        assert isinstance(raised.value, OUTAGE_ERRORS)
        engine.dispose()
    finally:
        subprocess.run(["chattr", "-i", str(tmp_path / "ro.db")], check=True)


def test_a_postgres_database_that_refuses_writes_is_classified(pg_url: str) -> None:
    from dagrunner.errors import DatabaseReadOnlyError

    engine = make_engine(pg_url)
    init_db(engine)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET default_transaction_read_only = on")  # as on a standby
            conn.commit()  # the next transaction is read-only
            with pytest.raises(DatabaseReadOnlyError, match="refuses writes"):
                conn.exec_driver_sql("INSERT INTO pool (name, slots) VALUES ('p', 1)")
    finally:
        engine.dispose()


def test_an_outage_is_said_once_per_kind() -> None:
    """A cut connection that comes back read-only is said again (the scheduler's log then says the
    database refuses writes); the same kind again is not."""
    from datetime import UTC, datetime

    from dagrunner.errors import DatabaseReadOnlyError
    from dagrunner.persistence.engine import Outage

    outage = Outage(60.0)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cut, read_only = DatabaseUnavailableError("gone"), DatabaseReadOnlyError("read-only")
    said = []
    for error in (cut, cut, read_only, read_only, cut):
        outage.failed(error, now)
        said.append(outage.worth_saying(error))
    assert said == [
        "the metadata database cannot be reached",
        None,
        "the metadata database refuses writes",
        None,
        "the metadata database cannot be reached",
    ]
    outage.recovered(now)
    assert outage.worth_saying(cut) == "the metadata database cannot be reached"  # a new outage
