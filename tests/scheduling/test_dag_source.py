"""The DAG folder as the scheduler sees it: parsed beside the tick, never inside it."""

from __future__ import annotations

import time
from datetime import timedelta

from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.dag_source import FolderDagSource

from .harness import START, Harness

GOOD = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("good", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

#: Sleeps far past the harness's dagbag_import_timeout (20 s) and the test's patience.
HANGS = """
import time
time.sleep(120)
"""

PATIENCE_S = 10.0


def test_a_dag_file_hanging_at_import_does_not_stall_scheduling(h: Harness) -> None:
    from dagrunner.scheduling.operations import trigger_run

    h.write_dag("good.py", GOOD)
    load_dagbag(h.settings, h.engine)  # stored, as an earlier scheduler or `dags list` left it
    h.write_dag("hangs.py", HANGS)
    source = FolderDagSource(h.settings, h.engine, actor="test")
    sched = h.start(dag_source=source)
    with session_scope(h.engine) as s:
        trigger_run(s, source.dags()["good"], actor="test", now=START)
    deadline = time.monotonic() + PATIENCE_S
    while not h.runs("good") or h.runs("good")[0].state.value != "success":
        assert time.monotonic() < deadline, f"the run did not finish in {PATIENCE_S:g}s: {h.states('good')}"
        started = time.monotonic()
        h.tick(h.clock.now() + timedelta(seconds=1), settle=False)
        assert time.monotonic() - started < 5.0, "a tick waited for the hanging import"
    assert source.parsing, "the hanging file's import should still be running"
    assert sched.has_pending_work  # `scheduler --once` would wait for the parse to end


def test_refresh_now_parses_in_the_callers_thread(h: Harness) -> None:
    source = FolderDagSource(h.settings, h.engine, actor="test")
    assert source.dags() == {}
    h.write_dag("good.py", GOOD)
    assert source.refresh_now(START)
    assert list(source.dags()) == ["good"] and not source.parsing
    assert not source.refresh_now(START + timedelta(seconds=1))  # unchanged
