"""A scheduler on a real database, a real DAG folder, the inline executor and a fake clock.

Tests write DAG files, then step time by hand with `h.tick(at)`: no threads, no sleeping.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from dagrunner.clock import FakeClock
from dagrunner.execution import make_executor
from dagrunner.execution.worker_config import WorkerConfig
from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, DagRun, TaskInstance, TaskTry
from dagrunner.scheduling.dag_source import DagSource, FixedDagSource
from dagrunner.scheduling.scheduler import Scheduler, SchedulerEvent, SchedulerOptions
from dagrunner.settings import Settings

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PARALLELISM = 4


@dataclass
class Harness:
    root: Path
    settings: Settings
    engine: Engine
    clock: FakeClock
    scheduler: Scheduler | None = None
    events: list[SchedulerEvent] | None = None

    def write_dag(self, name: str, body: str) -> Path:
        path = self.settings.dags_folder / name
        path.write_text(textwrap.dedent(body))
        return path

    def start(
        self, *, options: SchedulerOptions | None = None, dag_source: DagSource | None = None, callbacks: bool = True
    ) -> Scheduler:
        """Start a scheduler whose clock is `self.clock`, on `dag_source` (default: the folder parsed now).

        With `callbacks` it runs DAG-level callbacks in processes of their own (real ones, as the daemon
        does); without, it only requests them (as a scheduler killed right after a run's commit would).

        How many tries run at once is the inline executor's `slots_free`: the settings' parallelism
        (`PARALLELISM`), which limits the tries queued in one tick.
        """
        if dag_source is None:
            bag = load_dagbag(self.settings, self.engine)
            assert not bag.failures, bag.failures
            dag_source = FixedDagSource(bag.dags)
        self.events = []
        executor = make_executor("inline", self.settings, actor="test", clock=self.clock)
        self.scheduler = Scheduler(
            engine=self.engine,
            executor=executor,
            dag_source=dag_source,
            clock=self.clock,
            actor="scheduler-test",
            options=options,
            on_event=self.events.append,
            callbacks=WorkerConfig.from_settings(self.settings, actor="callback-test") if callbacks else None,
        )
        self.scheduler.start()
        return self.scheduler

    def tick(self, at: datetime | None = None, *, settle: bool = True) -> None:
        """Tick at `at` (the clock moves there); with settle, tick again until nothing more happens."""
        assert self.scheduler is not None
        if at is not None:
            self.clock.set(at)
        for _ in range(200):
            report = self.scheduler.tick(self.clock.now())
            self.scheduler.bookkeeping.check()
            if not settle or (not report.did_work and not self.scheduler.has_pending_work):
                return
        raise AssertionError("the scheduler kept working for 200 ticks at one instant")

    def advance(self, seconds: float) -> None:
        self.tick(self.clock.now() + timedelta(seconds=seconds))

    # --- reading the database -------------------------------------------------------------------

    def runs(self, dag_id: str) -> list[DagRun]:
        with session_scope(self.engine, readonly=True) as s:
            return list(s.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.logical_date)))

    def states(self, dag_id: str, run_id: str | None = None) -> dict[str, str]:
        """task_id (task_id[i] when mapped) -> state, for one run (the only run when not given)."""
        if run_id is None:
            (run,) = self.runs(dag_id)
            run_id = run.run_id
        with session_scope(self.engine, readonly=True) as s:
            tis = s.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            ).all()
            return {(f"{t.task_id}[{t.map_index}]" if t.map_index >= 0 else t.task_id): t.state.value for t in tis}

    def tries(self, dag_id: str, task_id: str) -> list[TaskTry]:
        with session_scope(self.engine, readonly=True) as s:
            q = select(TaskTry).where(TaskTry.dag_id == dag_id, TaskTry.task_id == task_id).order_by(TaskTry.id)
            return list(s.scalars(q))

    def audit(self, **filters: str) -> list[AuditLog]:
        with session_scope(self.engine, readonly=True) as s:
            q = select(AuditLog).order_by(AuditLog.id)
            for name, value in filters.items():
                q = q.where(getattr(AuditLog, name) == value)
            return list(s.scalars(q))


def make_harness(root: Path, db_url: str, engine: Engine) -> Iterator[Harness]:
    (root / "dags").mkdir()
    settings = Settings.load(
        {"db_url": db_url, "dagbag_import_timeout": 20, "parallelism": PARALLELISM}, environ={}, home=root
    )
    h = Harness(root, settings, engine, FakeClock(START))
    yield h
    if h.scheduler is not None:
        h.scheduler.shutdown(1.0)
