"""docs/tutorial.md, step by step: its DAG (taken from the page itself) and its commands, in a fresh project,
give what the page says they give. Slow: loading the DAG folder and the backfill's workers are processes."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dagrunner.cli.main import cli

pytestmark = pytest.mark.slow

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"


def test_the_tutorial_does_what_it_says(tmp_path: Path) -> None:
    dag_source = re.search(r"```python\n(.*?)```", TUTORIAL.read_text(), re.S)
    assert dag_source, "docs/tutorial.md lost its DAG"
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "daily_sales.py").write_text(dag_source.group(1))
    env = {"DAGRUNNER_HOME": str(tmp_path), "DAGRUNNER_DB_URL": None, "DAGRUNNER_DAGS_FOLDER": None,
           "DAGRUNNER_CREATE_CRON_DATA_INTERVALS": None}  # fmt: skip

    def dagrunner(*args: str) -> Result:
        result = CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, f"dagrunner {' '.join(args)}:\n{result.output}"
        return result

    assert "No import errors." in dagrunner("dags", "errors").output
    assert "extract ──▶ total" in dagrunner("dags", "show", "daily_sales").output
    assert (
        "2026-01-03T00:00:00+00:00"
        in dagrunner("dags", "next-runs", "daily_sales", "-n", "3", "--from", "2026-01-01").output
    )
    assert "sales_2026-01-05.csv" in dagrunner("tasks", "render", "daily_sales", "extract", "2026-01-05").output
    assert "XCom 'return_value'" in dagrunner("tasks", "test", "daily_sales", "extract", "2026-01-05").output
    assert "manual__2026-01-05T00:00:00+00:00: success" in dagrunner("dags", "test", "daily_sales", "2026-01-05").output
    run_id = "manual__2026-01-05T00:00:00+00:00"
    dagrunner("tasks", "logs", "daily_sales", "total", run_id)
    dagrunner("tasks", "why", "daily_sales", "load", run_id)
    assert (
        "7 date(s), 6 to run"
        in dagrunner("backfill", "daily_sales", "-s", "2026-01-01", "-e", "2026-01-07", "--dry-run").output
    )
    assert "6 succeeded, 0 failed, 0 unfinished" in dagrunner("backfill", "daily_sales", "-s", "2026-01-01", "-e", "2026-01-07").output  # fmt: skip
    with sqlite3.connect(tmp_path / "data" / "warehouse.db") as db:
        rows = db.execute("select * from daily_sales order by day").fetchall()
    assert rows == [(f"2026-01-0{day}", 5 + day) for day in range(1, 8)]
