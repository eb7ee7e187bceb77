"""Two processes writing the same new parse results at once (two schedulers starting together on
PostgreSQL): the second waits for the first and updates its rows instead of dying of a unique violation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from polling import wait_until
from sqlalchemy import func, select, text

from dagrunner.loading.sync import make_dagbag, write_parse_results
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import AuditLog, Dag, DagFile
from dagrunner.persistence.schema import init_db
from dagrunner.settings import Settings

pytestmark = pytest.mark.postgres

DAG = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("fresh", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="a")
"""


def test_a_second_writer_of_the_same_new_files_waits_and_updates(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "fresh.py").write_text(DAG)
    settings = Settings.load({"db_url": pg_url}, environ={}, home=tmp_path)
    engine = make_engine(pg_url)
    init_db(engine)
    bags = [make_dagbag(settings) for _ in range(2)]
    reports = [bag.refresh() for bag in bags]
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with session_scope(engine) as session:
                write_parse_results(session, bags[1], reports[1], actor="second")
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    try:
        with session_scope(engine) as session:
            write_parse_results(session, bags[0], reports[0], actor="first")
            session.flush()  # the first writer's rows exist, uncommitted
            thread = threading.Thread(target=second)
            thread.start()
            waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = :db")

            def second_waits() -> int:
                # a transaction of its own per look: within one, PostgreSQL serves pg_stat_activity from a
                # snapshot taken at the first read, so a later wait would never be seen
                with engine.connect() as conn:
                    return int(conn.execute(waiting, {"db": engine.url.database}).scalar() or 0)

            wait_until(second_waits, what="the 2nd waiting")
        thread.join(10)
        assert errors == []
        with session_scope(engine, readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(DagFile)) == 1
            assert s.scalars(select(Dag.dag_id)).all() == ["fresh"]
            registered = s.scalars(select(AuditLog.actor).where(AuditLog.event == "dag.registered")).all()
            assert registered == ["first"]
    finally:
        engine.dispose()
