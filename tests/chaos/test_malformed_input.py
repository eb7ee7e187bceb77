"""The malformed-input list of issue #10: each input is refused with one line (no traceback), a non-zero
exit code, and a database exactly as it was, on SQLite and on PostgreSQL.

Run through the real click tree in-process (CliRunner), so it is quick; the same commands as a user types.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, select

from dagrunner.cli.main import cli
from dagrunner.persistence.engine import make_engine

REPO = Path(__file__).resolve().parents[2]
DEEP = '{"x": ' + "[" * 50_000 + "]" * 50_000 + "}"

# name -> (argv, extra environment)
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "clear, a regex that does not compile": (["tasks", "clear", "etl_daily_sales", "-t", "([a-z", "--yes"], {}),
    "audit, a span before year 1": (["audit", "--since", "99999999d"], {}),
    "audit, a span of 5000 digits": (["audit", "--since", "9" * 5000 + "d"], {}),
    "trigger, conf nested 50,000 deep": (["dags", "trigger", "etl_daily_sales", "--conf", DEEP], {}),
    "trigger, conf with NaN": (["dags", "trigger", "etl_daily_sales", "--conf", '{"x": NaN}'], {}),
    "trigger, conf with -Infinity": (["dags", "trigger", "etl_daily_sales", "--conf", '{"x": {"y": -Infinity}}'], {}),
    "trigger, conf with 1e999": (["dags", "trigger", "etl_daily_sales", "--conf", '{"x": [1e999]}'], {}),
    "backfill, conf with NaN": (
        ["backfill", "etl_daily_sales", "-s", "2026-01-01", "-e", "2026-01-02", "--conf", '{"x": NaN}', "--yes"],
        {},
    ),
    "logs of an unknown DAG": (["tasks", "logs", "nosuchdag", "x", "y"], {}),
    "heartbeat longer than the zombie threshold": (
        ["dags", "trigger", "etl_daily_sales"],
        # the adoption rule (its own line) holds, so the zombie threshold's is the one line
        {
            "DAGRUNNER_SCHEDULER_HEARTBEAT_SEC": "600",
            "DAGRUNNER_ZOMBIE_THRESHOLD_SEC": "5",
            "DAGRUNNER_SCHEDULER_ADOPT_AFTER_SEC": "1200",
        },
    ),
    "a pool of no slots": (["dags", "trigger", "etl_daily_sales"], {"DAGRUNNER_DEFAULT_POOL_SLOTS": "0"}),
}


@pytest.fixture
def project(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example DAGs, parsed once into an empty database of each dialect, so every DAG is known."""
    shutil.copytree(REPO / "dags", tmp_path / "dags")
    shutil.copytree(REPO / "plugins", tmp_path / "plugins")
    for name in ("DAGRUNNER_DB_URL", "DAGRUNNER_DAGS_FOLDER", "DAGRUNNER_CREATE_CRON_DATA_INTERVALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGRUNNER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGRUNNER_DB_URL", db_url)
    monkeypatch.setenv("DAGRUNNER_DAGBAG_IMPORT_TIMEOUT", "10")
    parsed = CliRunner().invoke(cli, ["dags", "errors"], catch_exceptions=False)
    assert parsed.exit_code == 0, parsed.output  # every example DAG is known: a refusal is the input's doing
    yield tmp_path


def _snapshot(db_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order: what must not move."""
    engine = make_engine(db_url, busy_timeout=5.0)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
                for name, table in meta.tables.items()
            }
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_is_one_line_and_changes_nothing(
    project: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    argv, env = CASES[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = _snapshot(db_url)
    result: Result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    lines = result.output.strip().splitlines()
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output[:2000]
    assert _snapshot(db_url) == before
