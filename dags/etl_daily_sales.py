"""A real ETL a user can copy: extract a CSV -> validate -> transform -> load into SQLite -> check -> report.

Every step is idempotent and keyed by the run's data interval, so re-running a day (a retry, a clear, a
backfill) rewrites that day's partition instead of duplicating it. Data lands in $ETL_DATA_DIR (default:
`.dagrunner/data` beside the dags folder).
"""

from __future__ import annotations

import csv
import os
import random
import sqlite3
from pathlib import Path

import pendulum
from sqlite_checks import SqliteRowCountCheckOperator  # a custom operator from plugins/

from dagrunner import DAG, task

DATA_DIR = Path(os.environ.get("ETL_DATA_DIR", Path(__file__).resolve().parent.parent / ".dagrunner" / "data"))
WAREHOUSE = DATA_DIR / "warehouse.db"

with DAG(
    dag_id="etl_daily_sales",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": 30},
    max_active_runs=4,
    tags=["example", "etl"],
    doc_md=__doc__,
):

    @task
    def extract(ds: str | None = None) -> str:
        """Produce the day's raw sales file (a stand-in for a download), same rows for the same day."""
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path = DATA_DIR / f"sales_{ds}.csv"
        rng = random.Random(ds)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["order_id", "store", "amount"])
            for i in range(100):
                writer.writerow([f"{ds}-{i:04d}", rng.choice(["north", "south", "east"]), rng.randint(1, 500)])
        return str(path)

    @task
    def validate(path: str) -> str:
        """Refuse a file with a missing header, empty rows or negative amounts before anything is loaded."""
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise ValueError(f"{path} has no rows")
        bad = [r["order_id"] for r in rows if int(r["amount"]) < 0]
        if bad:
            raise ValueError(f"{path}: negative amounts in orders {bad[:5]}")
        return path

    @task(multiple_outputs=True)
    def transform(path: str) -> dict[str, dict[str, int]]:
        """Total the day's sales per store."""
        totals: dict[str, int] = {}
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                totals[row["store"]] = totals.get(row["store"], 0) + int(row["amount"])
        return {"totals": totals}

    @task
    def load(totals: dict[str, int], data_interval_start=None) -> int:
        """Upsert one row per (day, store): re-running a day replaces its rows, never duplicates them."""
        day = data_interval_start.date().isoformat()
        with sqlite3.connect(WAREHOUSE) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sales (day TEXT, store TEXT, amount INTEGER, PRIMARY KEY (day, store))"
            )
            conn.executemany(
                "INSERT INTO sales (day, store, amount) VALUES (?, ?, ?) "
                "ON CONFLICT (day, store) DO UPDATE SET amount = excluded.amount",
                [(day, store, amount) for store, amount in sorted(totals.items())],
            )
        return len(totals)

    check = SqliteRowCountCheckOperator(
        task_id="check_loaded",
        database=str(WAREHOUSE),
        sql="SELECT count(*) FROM sales WHERE day = '{{ ds }}'",
        min_rows=3,
    )

    @task
    def report(ds: str | None = None) -> str:
        with sqlite3.connect(WAREHOUSE) as conn:
            rows = conn.execute("SELECT store, amount FROM sales WHERE day = ? ORDER BY store", (ds,)).fetchall()
        summary = ", ".join(f"{store}={amount}" for store, amount in rows)
        print(f"sales for {ds}: {summary}")
        return summary

    totals = transform(validate(extract()))
    load(totals["totals"]) >> check >> report()
