"""W3 backfill: `dagrunner backfill DAG -s ... -e ... --yes --json` over daily dates of a chained no-op DAG."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta

from benchmarks.dagfiles import chain_dag
from benchmarks.errors import CorrectnessError
from benchmarks.probe import DbProbe
from benchmarks.project import project_with_db
from benchmarks.spec import Metric, Sizes, Target
from benchmarks.workloads.base import Details, Figures, Workload, seconds

FIRST_DATE = date(2025, 1, 1)


class Backfill(Workload):
    name = "W3"
    title = "backfill: @daily, 5 chained no-op tasks x 30 dates; 10 tasks x 365 dates"
    metrics = (
        Metric("backfill_s", "wall: backfill 30 dates x 5 tasks", "s", Target(1.0, "<=")),
        Metric("backfill_db_s", "DB: first try start -> last run end (30 x 5)", "s"),
        Metric("backfill_long_s", "wall: backfill 365 dates x 10 tasks", "s", Target(10.0, "<=")),
        Metric("backfill_long_db_s", "DB: first try start -> last run end (365 x 10)", "s"),
    )

    def unavailable(self) -> str | None:
        with tempfile.TemporaryDirectory(prefix="dagrunner-bench-") as home:
            try:
                proc = subprocess.run([sys.executable, "-m", "dagrunner", "backfill", "--help"], cwd=home,
                                      capture_output=True, text=True, timeout=60)  # fmt: skip
            except subprocess.TimeoutExpired:
                return "`dagrunner backfill --help` did not answer within 60s"
        if proc.returncode != 0:
            return f"`dagrunner backfill --help` exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-300:]}"
        return None

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        figures: Figures = {}
        details: Details = {"parallelism": sizes.parallelism}
        wall, span = one_backfill(db, sizes, dates=sizes.w3_dates, tasks=sizes.w3_tasks)
        figures.update(backfill_s=wall, backfill_db_s=span)
        if sizes.w3_long_dates is not None:
            wall, span = one_backfill(db, sizes, dates=sizes.w3_long_dates, tasks=sizes.w3_long_tasks)
            figures.update(backfill_long_s=wall, backfill_long_db_s=span)
        return figures, details


def one_backfill(db: str, sizes: Sizes, *, dates: int, tasks: int) -> tuple[float, float]:
    """Wall seconds of the backfill command, and the DB span of its work; the folder is parsed beforehand
    (`dags list`), as it is when a scheduler runs, so the command finds the parse results stored."""
    dag_id = f"backfill_{tasks}"
    last = FIRST_DATE + timedelta(days=dates - 1)
    with project_with_db(db) as project:
        project.write_dag(f"{dag_id}.py", chain_dag(dag_id, tasks, schedule="@daily", start="2024-01-01"))
        project.cli("db", "init")
        project.cli("dags", "list", "--json")
        before = time.monotonic()
        out = project.cli("backfill", dag_id, "-s", FIRST_DATE.isoformat(), "-e", last.isoformat(), "--yes",
                          "--json", "--parallelism", str(sizes.parallelism), timeout=sizes.backfill_timeout_s)  # fmt: skip
        wall = time.monotonic() - before
        summary = json.loads(out.stdout)
        probe = DbProbe(project.db_url)
        try:
            probe.assert_all_succeeded(runs=dates, task_instances=dates * tasks)
            if summary.get("state") != "success":
                raise CorrectnessError(f"the backfill's own summary says {summary.get('state')!r}")
            first, end = probe.span()
        finally:
            probe.close()
    return wall, seconds(end, first)
