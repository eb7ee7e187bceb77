"""Reading the metadata database from outside the processes under test: polls, timings, correctness.

Every read is a short read-only transaction (a deferred BEGIN on SQLite, so it never waits for or blocks
the scheduler's writes), so each poll sees what was committed just before it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Executable

from benchmarks.errors import BenchTimeout, CorrectnessError
from dagrunner.persistence.engine import READONLY_OPTION, make_engine
from dagrunner.persistence.models import DagRun, SchedulerJob, TaskInstance, TaskTry

T = TypeVar("T")
POLL_S = 0.005


class DbProbe:
    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url, busy_timeout=30.0)

    def close(self) -> None:
        self.engine.dispose()

    def rows(self, stmt: Executable) -> list[Any]:
        with self.engine.connect().execution_options(**{READONLY_OPTION: True, "postgresql_readonly": True}) as conn:
            return list(conn.execute(stmt))

    def scalar(self, stmt: Executable) -> Any:
        rows = self.rows(stmt)
        return rows[0][0] if rows else None

    # --- waiting ----------------------------------------------------------------------------------

    def scheduler_registered(self) -> bool:
        return bool(self.scalar(select(func.count()).select_from(SchedulerJob).where(SchedulerJob.ended_at.is_(None))))

    def schedulers_running(self) -> int:
        """Registered scheduler jobs that have not ended (the daemon's, not backfills' or workers')."""
        return self.count(SchedulerJob, SchedulerJob.ended_at.is_(None), SchedulerJob.job_type == "scheduler")

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        state = self.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        return None if state is None else str(state.value)

    def count(self, model: Any, *where: Any) -> int:
        return int(self.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    # --- timings from the database's own timestamps -------------------------------------------------

    def span(self) -> tuple[datetime, datetime]:
        """(first try start, last run end) over the whole database."""
        first = self.scalar(select(func.min(TaskTry.start_date)))
        last = self.scalar(select(func.max(DagRun.end_date)))
        if first is None or last is None:
            raise CorrectnessError("no task try started or no run ended: nothing was executed")
        return first, last

    def tries(self, dag_id: str, run_id: str) -> dict[str, tuple[datetime, datetime]]:
        """task_id -> (start, end) of its try in one run."""
        rows = self.rows(
            select(TaskTry.task_id, TaskTry.start_date, TaskTry.end_date).where(
                TaskTry.dag_id == dag_id, TaskTry.run_id == run_id
            )
        )
        return {task_id: (start, end) for task_id, start, end in rows}

    def run_row(self, dag_id: str, run_id: str) -> Any:
        rows = self.rows(
            select(DagRun.queued_at, DagRun.start_date, DagRun.end_date).where(
                DagRun.dag_id == dag_id, DagRun.run_id == run_id
            )
        )
        return rows[0]

    # --- correctness ---------------------------------------------------------------------------------

    def assert_all_succeeded(self, *, runs: int, task_instances: int) -> None:
        """Every run success, every task instance success, exactly one task_try (success) per instance.

        Raises CorrectnessError naming what is wrong, with examples and the tries' errors: that is a
        bug in dagrunner to report, never something a benchmark works around.
        """
        problems: list[str] = []
        run_states = Counter(str(s.value) for (s,) in self.rows(select(DagRun.state)))
        if run_states != Counter({"success": runs}):
            problems.append(f"expected {runs} run(s), all success; found {dict(run_states)}")
        ti_states = Counter(str(s.value) for (s,) in self.rows(select(TaskInstance.state)))
        if ti_states != Counter({"success": task_instances}):
            problems.append(f"expected {task_instances} task instance(s), all success; found {dict(ti_states)}")
        problems += self._try_problems()
        if problems:
            raise CorrectnessError("; ".join(problems) + self._examples())

    def _try_problems(self) -> list[str]:
        problems = []
        per_ti = self.rows(select(TaskTry.ti_id, func.count()).group_by(TaskTry.ti_id).having(func.count() != 1))
        if per_ti:
            problems.append(f"{len(per_ti)} task instance(s) have more than one try (retries or a double start)")
        no_try = self.count(TaskInstance, ~TaskInstance.id.in_(select(TaskTry.ti_id)))
        if no_try:
            problems.append(f"{no_try} task instance(s) have no task_try row")
        retried = self.count(TaskInstance, TaskInstance.try_number != 1)
        if retried:
            problems.append(f"{retried} task instance(s) have try_number != 1")
        bad_tries = Counter(str(s.value) for (s,) in self.rows(select(TaskTry.state).where(TaskTry.state != "success")))
        if bad_tries:
            problems.append(f"tries not successful: {dict(bad_tries)}")
        open_tries = self.count(TaskTry, TaskTry.end_date.is_(None))
        if open_tries:
            problems.append(f"{open_tries} task_try row(s) never closed (no end_date)")
        return problems

    def _examples(self) -> str:
        rows = self.rows(
            select(TaskTry.dag_id, TaskTry.run_id, TaskTry.task_id, TaskTry.try_number, TaskTry.state, TaskTry.error)
            .where(TaskTry.state != "success")
            .limit(3)
        )
        ti_rows = self.rows(
            select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state,
                   TaskInstance.try_number)
            .where(TaskInstance.state != "success")
            .limit(3)
        )  # fmt: skip
        lines = [f"\n  try {r[0]}/{r[1]}/{r[2]} #{r[3]}: {r[4].value}: {(r[5] or '')[:300]}" for r in rows]
        lines += [f"\n  instance {r[0]}/{r[1]}/{r[2]}: {r[3].value} (try_number {r[4]})" for r in ti_rows]
        return "".join(lines)


def wait_until(condition: Callable[[], T], *, timeout: float, what: str, interval: float = POLL_S,
               check: Callable[[], None] | None = None) -> T:  # fmt: skip
    """Poll `condition` every `interval` until it returns something truthy (bounded by `timeout`).

    `check` runs on each poll too (e.g. "the scheduler is still alive") and may raise.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() >= deadline:
            raise BenchTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
