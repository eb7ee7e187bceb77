"""A custom operator shipped as a plugin: DAG files import it as `from sqlite_checks import ...`.

The plugins folder is put on `sys.path` for every DAG import and every task run, as in Airflow.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from dagrunner import BaseOperator, FailTask


class SqliteRowCountCheckOperator(BaseOperator):
    """Fail the task unless `sql` returns at least `min_rows` rows' worth of count from a SQLite file.

    `sql` and `database` are templated, so the check can be scoped to the run's data interval:
    `sql="SELECT count(*) FROM sales WHERE day = '{{ ds }}'"`.
    """

    template_fields = ("sql", "database")

    def __init__(self, *, database: str, sql: str, min_rows: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.sql = sql
        self.min_rows = min_rows

    def execute(self, context: dict[str, Any]) -> int:  # noqa: ARG002 - the operator interface (Airflow's)
        with sqlite3.connect(self.database) as conn:
            (count,) = conn.execute(self.sql).fetchone()
        print(f"{self.sql!r} -> {count} (need at least {self.min_rows})")
        if count < self.min_rows:
            raise FailTask(f"row count {count} is below {self.min_rows} for {self.sql!r}")
        return int(count)
