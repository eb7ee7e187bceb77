"""A `reschedule` sensor through a real `dagrunner scheduler` (local executor) on SQLite and PostgreSQL.

With `--parallelism 1` the sensor waits for a file that only the other task of the run creates. Had the
waiting sensor held the one slot (poke mode), that task could never run and the sensor would time out;
in reschedule mode the slot is free between pokes, so the other task runs and the sensor then sees the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import TaskTry

from .procs import db_states, project, run

pytestmark = pytest.mark.slow

WAIT_FOR_FILE = """
import os, time
import pendulum
from pathlib import Path
from dagrunner import DAG, task
from dagrunner.sensors import PythonSensor

ROOT = Path(__file__).parent.parent
FLAG = ROOT / "arrived.flag"

def note(line):
    with (ROOT / "sensor.ledger").open("a") as fh:
        fh.write(f"{line} {time.time()}\\n")

def arrived(ti):
    note(f"poke{ti.try_number}")
    return FLAG.exists()

with DAG("wait_for_file", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonSensor(task_id="wait", python_callable=arrived, mode="reschedule", poke_interval=0.5, timeout=120,
                 priority_weight=10)

    @task(priority_weight=1)
    def produce():
        note("produce-start")
        time.sleep(2)
        FLAG.write_text("x")
        note("produce-end")

    produce()
"""


def _ledger(root: Path) -> list[tuple[str, float]]:
    return [
        (name, float(when))
        for name, when in (line.split() for line in (root / "sensor.ledger").read_text().splitlines())
    ]


def _tries(db_url: str) -> list[TaskTry]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            return list(s.scalars(select(TaskTry).order_by(TaskTry.start_date)))
    finally:
        engine.dispose()


def test_a_waiting_sensor_leaves_the_only_slot_to_the_task_that_makes_it_true(tmp_path: Path, db_url: str) -> None:
    root = project(tmp_path, examples=False)
    (root / "dags" / "wait_for_file.py").write_text(WAIT_FOR_FILE)
    assert run(root, db_url, "dags", "trigger", "wait_for_file", "--run-id", "r1").returncode == 0
    proc = run(root, db_url, "scheduler", "--parallelism", "1", "--num-runs", "1", timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs, tis = db_states(db_url)
    assert runs == {"wait_for_file/r1": "success"}
    assert tis == {("wait_for_file/r1", "wait"): "success", ("wait_for_file/r1", "produce"): "success"}

    names = [name for name, _ in _ledger(root)]
    assert names[:2] == ["poke1", "produce-start"], names  # the sensor poked first, then gave up the slot
    assert names[-1].startswith("poke") and names[-2] == "produce-end", names
    tries = _tries(db_url)
    wait_tries = [t for t in tries if t.task_id == "wait"]
    assert [t.state.value for t in wait_tries[:-1]] == ["up_for_reschedule"] * (len(wait_tries) - 1)
    assert wait_tries[-1].state.value == "success"
    assert [t.try_number for t in wait_tries] == list(range(1, len(wait_tries) + 1))
    # One slot: no two tries overlapped in time, and `produce` ran between the sensor's pokes.
    spans = sorted((t.start_date, t.end_date) for t in tries)
    assert all(end is not None for _, end in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), spans  # type: ignore[operator]
    (produce,) = [t for t in tries if t.task_id == "produce"]
    assert wait_tries[0].end_date <= produce.start_date and produce.end_date <= wait_tries[-1].start_date  # type: ignore[operator]
