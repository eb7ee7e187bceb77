"""A property-based chaos test: trigger, tick, let time pass, make tasks fail or succeed, clear, kill the
scheduler (no shutdown: its job is left running, then found dead) and restart it, in any order.

Whatever the order, after each step: no try ran twice, no two tries of one instance overlapped, and every
instance's audit chain is continuous; at the end, once tasks are allowed to succeed and time passes,
every run reaches an end and nothing is left queued or running (`ledger.check_against_db`).

In process, on SQLite, with the fake clock and the inline executor (the scheduler harness): fast enough to
explore many orders. The real-process kills are in the other chaos tests.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from scheduling.harness import START, Harness, make_harness
from sqlalchemy import update

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import SchedulerJob
from dagrunner.persistence.schema import init_db
from dagrunner.scheduling.operations import clear, select_for_clear, trigger_run

from . import ledger

pytestmark = pytest.mark.slow

TASKS = ("a", "b", "c", "d")
DAG = (
    ledger.LEDGER_SNIPPET
    + """
import json, pathlib
import pendulum
from datetime import timedelta
from dagrunner import DAG, task

CONTROL = pathlib.Path(__file__).parent.parent / "control.json"

with DAG("chaos", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         default_args={"retries": 1, "retry_delay": timedelta(seconds=60)}):
    @task
    def step(ti=None, run_id=None):
        note("start", ti, run_id)
        failing = json.loads(CONTROL.read_text()) if CONTROL.exists() else []
        if ti.task_id in failing:
            note("end", ti, run_id)
            raise RuntimeError(f"{ti.task_id} told to fail")
        note("end", ti, run_id)

    a, b, c, d = (step.override(task_id=t)() for t in ("a", "b", "c", "d"))
    a >> [b, c] >> d
"""
)
DEAD_PID = 2**22 + 17  # above the kernel's pid_max default: no process has it


class DyingExecutor:
    """The scheduler's executor, except that once `dying` is set, work handed to it is lost: what a
    scheduler that dies between committing `queued` and handing the try to a worker leaves behind."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dying = False

    def submit(self, item: Any) -> None:
        if not self.dying:
            self.inner.submit(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SchedulerChaos(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.ledger_path = root / "ledger.txt"
        os.environ[ledger.ENV] = str(self.ledger_path)
        self.db_url = f"sqlite:///{root / 'chaos.db'}"
        self.engine = make_engine(self.db_url)
        init_db(self.engine)
        self._harness = make_harness(root, self.db_url, self.engine)
        self.h: Harness = next(self._harness)
        self.h.write_dag("chaos.py", DAG)
        self.control = root / "control.json"
        self.failing: set[str] = set()
        self.runs = 0
        self._start()

    def _start(self) -> None:
        self.h.start()
        assert self.h.scheduler is not None
        self.h.scheduler.executor = DyingExecutor(self.h.scheduler.executor)  # type: ignore[assignment]

    # --- what can happen ------------------------------------------------------------------------------

    @rule()
    def trigger(self) -> None:
        if self.runs >= 4:
            return
        assert self.h.scheduler is not None
        dag = self.h.scheduler.dag_source.dags()["chaos"]
        with session_scope(self.engine) as session:
            trigger_run(session, dag, actor="chaos", now=self.h.clock.now(),
                        logical_date=START + timedelta(days=self.runs))  # fmt: skip
        self.runs += 1

    @rule(settle=st.booleans())
    def tick(self, settle: bool) -> None:
        self.h.tick(settle=settle)

    @rule(seconds=st.sampled_from([1, 30, 61, 300]))
    def time_passes(self, seconds: int) -> None:
        self.h.advance(seconds)

    @rule(task_id=st.sampled_from(TASKS), fail=st.booleans())
    def task_outcome(self, task_id: str, fail: bool) -> None:
        (self.failing.add if fail else self.failing.discard)(task_id)
        self.control.write_text(json.dumps(sorted(self.failing)))

    @rule(task_id=st.sampled_from(TASKS), only_failed=st.booleans())
    def clear_task(self, task_id: str, only_failed: bool) -> None:
        assert self.h.scheduler is not None
        dag = self.h.scheduler.dag_source.dags()["chaos"]
        with session_scope(self.engine) as session:
            tis = [ti for ti in select_for_clear(session, dag, downstream=True, only_failed=only_failed)
                   if ti.task_id == task_id]  # fmt: skip
            clear(session, dag, tis, actor="chaos", now=self.h.clock.now())

    @rule(mid_queue=st.booleans())
    def kill_and_restart(self, mid_queue: bool) -> None:
        """The scheduler dies without shutting down (`mid_queue`: in a tick, after committing `queued` and
        before its executor got the tries); a new one finds its job dead and recovers what it left."""
        old = self.h.scheduler
        assert old is not None and old.job_id is not None
        if mid_queue:
            old.executor.dying = True  # type: ignore[attr-defined]
            self.h.tick(settle=False)
        with session_scope(self.engine) as session:  # what a dead process looks like to another one
            session.execute(update(SchedulerJob).where(SchedulerJob.id == old.job_id).values(pid=DEAD_PID))
        self.h.scheduler = None
        self._start()

    @rule()
    def stop_and_restart(self) -> None:
        assert self.h.scheduler is not None
        self.h.scheduler.shutdown(1.0)
        self.h.scheduler = None
        self._start()

    # --- what must always hold ------------------------------------------------------------------------

    @invariant()
    def no_try_twice_and_a_continuous_audit(self) -> None:
        entries = ledger.read(self.ledger_path)
        starts = [(e.instance, e.try_number) for e in entries if e.event == "start"]
        assert len(starts) == len(set(starts)), "a try ran twice"
        assert ledger._overlaps(entries) == []
        with session_scope(self.engine, readonly=True) as session:
            assert ledger._audit_gaps(session) == []

    def teardown(self) -> None:
        try:
            self.control.write_text("[]")
            for _ in range(12):  # let every retry come due and every run finish
                self.h.advance(301)
            assert ledger.check_against_db(self.db_url, self.ledger_path) == []
        finally:
            try:
                next(self._harness, None)  # shuts the scheduler down
            finally:
                self.engine.dispose()
                os.environ.pop(ledger.ENV, None)
                self.tmp.cleanup()


TestSchedulerChaos = SchedulerChaos.TestCase
TestSchedulerChaos.settings = settings(
    max_examples=int(os.environ.get("DAGRUNNER_CHAOS_EXAMPLES", "12")),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
