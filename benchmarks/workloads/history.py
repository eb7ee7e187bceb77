"""W5 history: the scheduler's tick cost with an empty database vs one holding a million finished task instances.

Measured in-process (no subprocess noise): a real `Scheduler` over a real DAG folder and database, with
the inline executor and a FakeClock (as tests/scheduling/harness.py builds it). The DAG has one active
run of 10 independent tasks in a pool of 0 slots, so every tick does the whole evaluation path (load the
active runs and their instances, decide readiness, read the slot limits, allocate, find every task
blocked) and the run stays active for as long as we measure. A full scan and the zombie check are
forced on every tick (`full_scan_s=0`, `zombie_check_s=0`).

Two databases per repetition, one empty and one with the history, each with its own scheduler; their
ticks are measured in alternating blocks, so that a change in the (shared, noisy) machine's load hits
both alike and the ratio is not skewed by when each side happened to be measured.

History: finished scheduled runs of the same DAG with finished task instances, inserted in bulk by SQL
(a recursive CTE on SQLite, generate_series on PostgreSQL; PostgreSQL is ANALYZEd afterwards, as its
autovacuum would soon do; SQLite is not, as nothing does that for a dagrunner user). task_try and
audit_log history is not generated: no query of the tick reads those tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, text

from benchmarks.dagfiles import wide_dag
from benchmarks.databases import fresh_database
from benchmarks.errors import CorrectnessError
from benchmarks.project import Project, project_with_db
from benchmarks.spec import Metric, Sizes, Target
from benchmarks.stats import median, percentile
from benchmarks.workloads.base import Details, Figures, Workload
from dagrunner.clock import FakeClock
from dagrunner.execution import make_executor
from dagrunner.loading.dagbag import DagBag
from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import DagRun, Pool, TaskInstance
from dagrunner.persistence.schema import init_db
from dagrunner.scheduling.dag_source import FixedDagSource
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.scheduler import Scheduler, SchedulerOptions
from dagrunner.settings import Settings

DAG_ID = "active"
PARKED_POOL = "bench_parked"  # 0 slots: the active run's tasks are ready but never queued
NOW = datetime(2060, 1, 1, tzinfo=UTC)  # after every history date (2000-01-01 + up to ~55 years)
WARMUP_TICKS = 10
BLOCK = 10  # ticks per side before switching to the other database


class History(Workload):
    name = "W5"
    title = "history: scheduler tick, empty DB vs 1,000,000 finished task instances"
    metrics = (
        Metric("tick_empty_ms", "median tick, empty DB (one active run of 10 tasks)", "ms"),
        Metric("tick_history_ms", "median tick, with the history", "ms"),
        Metric("tick_ratio", "tick with history / tick empty", "x", Target(1.2, "<=", scales_on_pg=False)),
        Metric("wakeup_empty_ms", "median next_wakeup(), empty DB", "ms"),
        Metric("wakeup_history_ms", "median next_wakeup(), with the history", "ms"),
        Metric("history_build_s", "bulk insert of the history (runs + task instances)", "s",
               Target(60.0, "<=", scales_on_pg=False)),
    )  # fmt: skip

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        with project_with_db(db) as project, fresh_database(db, project.root, name="history") as history_url:
            project.write_dag("active.py", wide_dag(DAG_ID, sizes.w5_active_tasks, pool=PARKED_POOL))
            empty, history = Side(project, project.db_url, sizes), Side(project, history_url, sizes)
            try:
                began = time.monotonic()
                fill_history(history.engine, sizes.w5_runs, sizes.w5_tis_per_run)
                build_s = time.monotonic() - began
                measure_interleaved([empty, history], sizes.w5_ticks)
                _check(empty.engine, sizes, history_runs=0)
                _check(history.engine, sizes, history_runs=sizes.w5_runs)
            finally:
                empty.close()
                history.close()
        figures = {
            "tick_empty_ms": median(empty.ticks) * 1000,
            "tick_history_ms": median(history.ticks) * 1000,
            "tick_ratio": median(history.ticks) / median(empty.ticks),
            "wakeup_empty_ms": median(empty.wakeups) * 1000,
            "wakeup_history_ms": median(history.wakeups) * 1000,
            "history_build_s": build_s,
        }
        details = {"history_task_instances": sizes.w5_runs * sizes.w5_tis_per_run, "ticks": sizes.w5_ticks,
                   "tick_empty_p90_ms": percentile(empty.ticks, 90) * 1000,
                   "tick_history_p90_ms": percentile(history.ticks, 90) * 1000}  # fmt: skip
        return figures, details


class Side:
    """One database (empty, or with the history) and a scheduler over it, with its timings."""

    def __init__(self, project: Project, url: str, sizes: Sizes) -> None:
        settings = Settings.load({"db_url": url, "parallelism": sizes.parallelism}, environ={}, home=project.root)
        self.engine = make_engine(url)
        bag = _prepare(self.engine, settings)
        self.clock = FakeClock(NOW)
        self.scheduler = Scheduler(
            engine=self.engine,
            executor=make_executor("inline", settings, actor="benchmark", clock=self.clock),
            dag_source=FixedDagSource(bag.dags),
            clock=self.clock,
            actor="benchmark",
            options=SchedulerOptions(full_scan_s=0.0, zombie_check_s=0.0),
        )
        self.started = False
        self.ticks: list[float] = []
        self.wakeups: list[float] = []

    def step(self, *, record: bool) -> None:
        """One tick and the loop's next_wakeup() after it, the clock 1 ms further."""
        if not self.started:
            self.scheduler.start()
            self.started = True
        now = self.clock.advance(timedelta(milliseconds=1))
        took = _timed(self.scheduler.tick, now)
        waited = _timed(self.scheduler.next_wakeup, now)
        if record:
            self.ticks.append(took)
            self.wakeups.append(waited)

    def close(self) -> None:
        if self.started:
            self.scheduler.shutdown(1.0)
        self.engine.dispose()


def measure_interleaved(sides: list[Side], ticks: int) -> None:
    """Warm up each side, then alternate blocks of BLOCK ticks between them until each has `ticks` timed
    ticks, so a change in the machine's load hits both sides alike and the ratio stays meaningful."""
    for side in sides:
        for _ in range(WARMUP_TICKS):
            side.step(record=False)
    done = 0
    while done < ticks:
        block = min(BLOCK, ticks - done)
        for side in sides:
            for _ in range(block):
                side.step(record=True)
        done += block


def _prepare(engine: Engine, settings: Settings) -> DagBag:
    """Schema, the 0-slot pool, the parsed folder, and the one active (manual) run."""
    init_db(engine)
    with session_scope(engine) as session:
        session.add(Pool(name=PARKED_POOL, slots=0, description="benchmark W5: tasks wait here forever"))
    bag = load_dagbag(settings, engine)
    if bag.failures:
        raise CorrectnessError(f"the W5 DAG failed to import: {bag.failures}")
    with session_scope(engine) as session:
        trigger_run(session, bag.dags[DAG_ID], actor="benchmark", now=NOW)
    return bag


def _timed(call: Callable[[datetime], object], now: datetime) -> float:
    began = time.perf_counter()
    call(now)
    return time.perf_counter() - began


# --- the history ---------------------------------------------------------------------------------------

_SQLITE_RUNS = """
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < :runs),
days(d) AS (SELECT datetime('2000-01-01', '+' || i || ' days') FROM seq)
INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, data_interval_start, data_interval_end, run_after,
                     state, conf, created_by, queued_at, start_date, end_date, updated_at)
SELECT :dag_id, 'scheduled__' || replace(d, ' ', 'T') || '+00:00', 'scheduled', d || '.000000', d || '.000000',
       datetime(d, '+1 day') || '.000000', datetime(d, '+1 day') || '.000000', 'success', '{}', 'benchmark',
       datetime(d, '+1 day') || '.000000', datetime(d, '+1 day', '+1 second') || '.000000',
       datetime(d, '+1 day', '+60 seconds') || '.000000', datetime(d, '+1 day', '+60 seconds') || '.000000'
FROM days
"""
_SQLITE_TIS = """
WITH RECURSIVE seq(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM seq WHERE j + 1 < :per_run)
INSERT INTO task_instance (dag_id, run_id, task_id, map_index, state, try_number, max_tries, operator, queue,
                           pool, pool_slots, priority_weight, queued_at, start_date, end_date, hostname, updated_at)
SELECT r.dag_id, r.run_id, 'h' || printf('%04d', seq.j), -1, 'success', 1, 0, 'PythonOperator', 'default',
       'default_pool', 1, 1, r.queued_at, r.start_date, r.end_date, 'benchmark', r.end_date
FROM dag_run r CROSS JOIN seq
WHERE r.dag_id = :dag_id AND r.run_type = 'scheduled'
ORDER BY r.id, seq.j
"""
_PG_RUNS = """
INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, data_interval_start, data_interval_end, run_after,
                     state, conf, created_by, queued_at, start_date, end_date, updated_at)
SELECT :dag_id, 'scheduled__' || to_char(d AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00', 'scheduled',
       d, d, d + interval '1 day', d + interval '1 day', 'success', '{}'::jsonb, 'benchmark',
       d + interval '1 day', d + interval '1 day 1 second', d + interval '1 day 60 seconds',
       d + interval '1 day 60 seconds'
FROM generate_series(0, :runs - 1) AS i,
     LATERAL (SELECT timestamptz '2000-01-01 00:00:00+00' + i * interval '1 day' AS d) AS days
"""
_PG_TIS = """
INSERT INTO task_instance (dag_id, run_id, task_id, map_index, state, try_number, max_tries, operator, queue,
                           pool, pool_slots, priority_weight, queued_at, start_date, end_date, hostname, updated_at)
SELECT r.dag_id, r.run_id, 'h' || lpad(j::text, 4, '0'), -1, 'success', 1, 0, 'PythonOperator', 'default',
       'default_pool', 1, 1, r.queued_at, r.start_date, r.end_date, 'benchmark', r.end_date
FROM dag_run r CROSS JOIN generate_series(0, :per_run - 1) AS j
WHERE r.dag_id = :dag_id AND r.run_type = 'scheduled'
ORDER BY r.id, j
"""


def fill_history(engine: Engine, runs: int, per_run: int) -> None:
    """`runs` finished scheduled runs of the DAG, each with `per_run` finished task instances.

    PostgreSQL: dag_run is ANALYZEd between the two inserts. Otherwise the foreign-key check of every
    task_instance row is planned for the empty dag_run table the schema started with (a sequential
    scan), and the insert takes tens of minutes instead of seconds.
    """
    params = {"dag_id": DAG_ID, "runs": runs, "per_run": per_run}
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(text(_PG_RUNS if postgres else _SQLITE_RUNS), params)
    _analyze(engine, "dag_run")
    with engine.begin() as conn:
        conn.execute(text(_PG_TIS if postgres else _SQLITE_TIS), params)
    _analyze(engine, "task_instance")


def _analyze(engine: Engine, table: str) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"ANALYZE {table}")


def _check(engine: Engine, sizes: Sizes, *, history_runs: int) -> None:
    """The history is all there, nothing else happened, and the active run is still waiting on the pool."""
    with session_scope(engine, readonly=True) as session:
        runs = session.scalar(select(func.count()).select_from(DagRun))
        tis = session.scalar(select(func.count()).select_from(TaskInstance))
        active = dict(
            session.execute(
                select(TaskInstance.state, func.count())
                .where(TaskInstance.pool == PARKED_POOL)
                .group_by(TaskInstance.state)
            ).all()
        )
    expected_tis = history_runs * sizes.w5_tis_per_run + sizes.w5_active_tasks
    if runs != history_runs + 1 or tis != expected_tis:
        raise CorrectnessError(
            f"expected {history_runs + 1} runs and {expected_tis} task instances; found {runs}, {tis}"
        )
    if {str(k.value): v for k, v in active.items()} != {"scheduled": sizes.w5_active_tasks}:
        raise CorrectnessError(f"the active run's tasks should all wait (scheduled) on the 0-slot pool; found {active}")
