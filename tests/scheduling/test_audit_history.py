"""The audit log alone rebuilds the whole history: every run and task state, every try."""

from __future__ import annotations

from sqlalchemy import select

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRun, TaskInstance, TaskTry
from dagrunner.scheduling.operations import clear, select_for_clear, trigger_run

from .harness import START, Harness

STORY = """
import pendulum
from pathlib import Path
from dagrunner import DAG, SkipTask, task
from dagrunner.operators import EmptyOperator

HERE = Path({root!r})

with DAG("story", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task.branch
    def pick():
        return "left"

    @task(retries=1, retry_delay=10)
    def flaky():
        marker = HERE / "flaky.once"
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("first try fails")

    @task
    def broken():
        if not (HERE / "fixed").exists():
            raise ValueError("broken until fixed")

    @task
    def skipper():
        raise SkipTask("nothing to do today")

    left = EmptyOperator(task_id="left")
    right = EmptyOperator(task_id="right")
    after_broken = EmptyOperator(task_id="after_broken")
    pick() >> [left, right]
    left >> flaky()
    broken() >> after_broken
    skipper()
"""


def replay(rows: list) -> tuple[dict, dict, dict]:
    """Fold audit rows into (run states, task states, tries started), checking every old state."""
    runs: dict = {}
    tasks: dict = {}
    started: dict = {}
    for row in rows:
        if row.event == "run.created":
            runs[row.run_id] = row.new_state
        elif row.event == "run.state":
            assert runs[row.run_id] == row.old_state, row.__dict__
            runs[row.run_id] = row.new_state
        elif row.event in ("task.created", "task.state"):
            key = (row.run_id, row.task_id, row.map_index)
            if row.event == "task.state":
                assert tasks[key] == row.old_state, (key, row.old_state, row.new_state)
                if row.new_state == "running":
                    started[key] = started.get(key, 0) + 1
            tasks[key] = row.new_state
    return runs, tasks, started


def test_history_rebuilt_from_the_audit_log_matches_the_tables(h: Harness) -> None:
    h.write_dag("story.py", STORY.format(root=str(h.root)))
    sched = h.start()
    dag = sched.dag_source.dags()["story"]
    with session_scope(h.engine) as s:
        run = trigger_run(s, dag, actor="test", now=START)
    h.tick()
    h.advance(11)  # flaky's retry delay
    assert h.states("story") == {
        "pick": "success", "left": "success", "right": "skipped", "flaky": "success",
        "broken": "failed", "after_broken": "upstream_failed", "skipper": "skipped",
    }  # fmt: skip
    (h.root / "fixed").write_text("yes")
    with session_scope(h.engine) as s:
        clear(s, dag, select_for_clear(s, dag, task_regex="^broken$", downstream=True), actor="test",
              now=h.clock.now())  # fmt: skip
    h.advance(sched.options.full_scan_s + 1)
    assert h.states("story")["broken"] == "success" and h.states("story")["after_broken"] == "success"

    runs, tasks, started = replay(h.audit())
    with session_scope(h.engine, readonly=True) as s:
        table_runs = {r.run_id: r.state.value for r in s.scalars(select(DagRun))}
        table_tis = {(t.run_id, t.task_id, t.map_index): t for t in s.scalars(select(TaskInstance))}
        tries = list(s.scalars(select(TaskTry)))
    assert runs == table_runs == {run.run_id: "success"}
    assert tasks == {k: ti.state.value for k, ti in table_tis.items()}
    for key, ti in table_tis.items():
        assert started.get(key, 0) == ti.try_number, key  # one audited start per try
        assert sum(1 for t in tries if (t.run_id, t.task_id, t.map_index) == key) == ti.try_number
    assert all(t.end_date is not None for t in tries)  # every try closed
    assert started[(run.run_id, "flaky", -1)] == 2 and started[(run.run_id, "broken", -1)] == 2
    events = {r.event for r in h.audit()}
    assert {"run.created", "run.state", "task.created", "task.state", "tasks.cleared"} <= events
