"""Migrations create exactly the models' schema on both dialects; ensure/check/reset behave as promised."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from db_factories import add_run_with_tasks
from sqlalchemy import Engine, inspect, select, text

from dagrunner.errors import DatabaseNotInitializedError, PersistenceError, SchemaNotCurrentError
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import TABLE_NAMES, Base, Pool
from dagrunner.persistence.schema import (
    SchemaStatus,
    alembic_config,
    check_db,
    ensure_schema,
    head_revision,
    init_db,
    reset_db,
    schema_action,
    upgrade_db,
)

EXPECTED_TABLES = {
    "web_user",
    "api_token",
    "web_session",
    "dag",
    "dag_file",
    "dag_run",
    "task_instance",
    "task_try",
    "xcom",
    "pool",
    "audit_log",
    "scheduler_job",
    "backfill",
    "callback_request",
    "hitl_request",
    "dead_letter",  # #12 part B
    # #12 part A
    "asset",
    "asset_alias",
    "asset_event",
    "asset_dag_queue",
    "dag_run_asset_event",
    "outbox",  # issue #12 part C
    "outbox_sink",
    "connection",  # issue #15
    "variable",  # issue #15
}


def table_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_migration_on_an_empty_database_creates_every_table(engine: Engine) -> None:
    assert check_db(engine) == SchemaStatus(None, head_revision(), False, True, False)

    status = init_db(engine)

    assert status.is_current and status.current == head_revision()
    assert TABLE_NAMES == EXPECTED_TABLES
    assert table_names(engine) == EXPECTED_TABLES | {"alembic_version"}
    assert check_db(engine).is_current


def test_migrated_schema_equals_the_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_hot_path_indexes_exist(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        insp = inspect(conn)
        indexes = {table: {tuple(ix["column_names"]) for ix in insp.get_indexes(table)} for table in TABLE_NAMES}
        uniques = {
            table: {tuple(uq["column_names"]) for uq in insp.get_unique_constraints(table)} for table in TABLE_NAMES
        }
    assert ("state",) in indexes["task_instance"]
    assert ("dag_id", "run_id", "task_id", "map_index") in uniques["task_instance"]  # serves (dag_id, run_id)
    assert {("dag_id", "state"), ("state",), ("dag_id", "logical_date")} <= indexes["dag_run"]
    assert ("dag_id", "run_id") in uniques["dag_run"]
    assert ("dag_id", "ts") in indexes["audit_log"]
    assert ("dag_id", "run_id", "task_id", "map_index") in indexes["task_try"]


def test_default_pool_is_seeded(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine, readonly=True) as session:
        pools = session.scalars(select(Pool)).all()
    assert [(p.name, p.slots) for p in pools] == [("default_pool", 128)]


def test_init_twice_is_a_no_op(migrated_engine: Engine) -> None:
    assert init_db(migrated_engine).is_current
    with session_scope(migrated_engine, readonly=True) as session:
        assert len(session.scalars(select(Pool)).all()) == 1


def test_concurrent_inits_all_succeed(engine: Engine) -> None:
    errors: list[BaseException] = []

    def init() -> None:
        try:
            init_db(engine)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=init) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert check_db(engine).is_current


def test_downgrade_to_base_and_back(migrated_engine: Engine) -> None:
    config = alembic_config()
    with migrated_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert table_names(migrated_engine) & TABLE_NAMES == set()
    assert check_db(migrated_engine).current is None
    assert upgrade_db(migrated_engine).is_current


# --- ensure_schema -------------------------------------------------------------------------------------


def test_ensure_schema_initializes_an_empty_database_when_allowed(engine: Engine) -> None:
    assert ensure_schema(engine, auto_init=True).is_current
    assert check_db(engine).is_current


def test_ensure_schema_refuses_an_empty_database_otherwise(engine: Engine) -> None:
    with pytest.raises(DatabaseNotInitializedError, match="run `dagrunner db init`"):
        ensure_schema(engine, auto_init=False)
    assert table_names(engine) & TABLE_NAMES == set()


def test_ensure_schema_accepts_a_current_database(migrated_engine: Engine) -> None:
    assert ensure_schema(migrated_engine, auto_init=False).is_current


def test_a_revision_newer_than_this_dagrunner_is_refused(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))

    with pytest.raises(SchemaNotCurrentError, match="f00d.*upgrade dagrunner"):
        ensure_schema(migrated_engine, auto_init=True)
    with pytest.raises(SchemaNotCurrentError, match="upgrade dagrunner"):
        upgrade_db(migrated_engine)
    assert check_db(migrated_engine) == SchemaStatus("f00d", head_revision(), False, False, True)


def test_tables_without_a_revision_need_a_reset(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))

    with pytest.raises(PersistenceError, match="dagrunner db reset"):
        ensure_schema(migrated_engine, auto_init=True)
    with pytest.raises(PersistenceError, match="dagrunner db reset"):
        init_db(migrated_engine)
    assert reset_db(migrated_engine).is_current


@pytest.mark.parametrize(
    ("status", "auto_init", "outcome"),
    [
        (SchemaStatus("0001", "0001", True), False, "ok"),
        (SchemaStatus(None, "0001", False), True, "init"),
        (SchemaStatus(None, "0001", False), False, DatabaseNotInitializedError),
        (SchemaStatus(None, "0001", False, has_tables=True), True, PersistenceError),
        (SchemaStatus("0001", "0002", False), True, SchemaNotCurrentError),
        (SchemaStatus("0009", "0002", False, is_known=False), True, SchemaNotCurrentError),
    ],
)
def test_schema_action_decides_from_the_status(
    status: SchemaStatus, auto_init: bool, outcome: str | type[Exception]
) -> None:
    if isinstance(outcome, str):
        assert schema_action(status, auto_init=auto_init, where="db") == outcome
    else:
        with pytest.raises(outcome):
            schema_action(status, auto_init=auto_init, where="db")


def test_a_schema_behind_head_names_the_upgrade_command() -> None:
    with pytest.raises(
        SchemaNotCurrentError, match=r"at schema revision 0001 .* needs 0002; run `dagrunner db upgrade`"
    ):
        schema_action(SchemaStatus("0001", "0002", False), auto_init=True, where="sqlite:///x.db")


# --- reset_db ----------------------------------------------------------------------------------------------


def test_reset_db_drops_our_data_and_keeps_other_tables(migrated_engine: Engine) -> None:
    with session_scope(migrated_engine) as session:
        add_run_with_tasks(session, ["a", "b"])
        session.add(Pool(name="extra", slots=3))
    with migrated_engine.begin() as conn:
        conn.execute(text("CREATE TABLE not_ours (x INTEGER)"))
        conn.execute(text("INSERT INTO not_ours VALUES (7)"))

    status = reset_db(migrated_engine)

    assert status.is_current
    with migrated_engine.connect() as conn:
        for table in TABLE_NAMES - {"pool"}:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table
        assert conn.execute(text("SELECT name FROM pool")).scalars().all() == ["default_pool"]
        assert conn.execute(text("SELECT x FROM not_ours")).scalar_one() == 7
