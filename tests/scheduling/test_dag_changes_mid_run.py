"""A DAG whose tasks change while a run of it is unfinished (issue #10, item 5).

A task removed from the DAG leaves its unfinished instance `removed` (Airflow's state) and the run
finishes by the usual rules; a task added gets an instance and runs; `tasks why` explains a removed task.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from dagrunner.loading.serialization import SerializedDag
from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.operations import explain_instance, trigger_run

from .harness import START, Harness

V1 = """
from pathlib import Path
from dagrunner import DAG, task
from dagrunner.operators import EmptyOperator

with DAG("shrinks", schedule=None):
    @task(retries=1, retry_delay=600)
    def wait():
        marker = Path(__file__).with_suffix(".tried")
        if not marker.exists():  # the first try fails: the run waits 10 minutes for the second
            marker.write_text("x")
            raise RuntimeError("not yet")

    wait() >> EmptyOperator(task_id="b") >> EmptyOperator(task_id="c")
    EmptyOperator(task_id="side")
"""
#: `b` is gone (c now follows wait directly); `side` stays.
V2 = V1.replace(
    'wait() >> EmptyOperator(task_id="b") >> EmptyOperator(task_id="c")', 'wait() >> EmptyOperator(task_id="c")'
)
#: V1 plus a task `d` after c.
V3 = V1.replace('EmptyOperator(task_id="c")', 'EmptyOperator(task_id="c") >> EmptyOperator(task_id="d")')


class SwitchingDagSource:
    """A fixed set of DAGs that a test replaces by hand: a new version of a DAG file, loaded mid-run."""

    parsing = False
    next_look = None

    def __init__(self, dags: Mapping[str, SerializedDag]) -> None:
        self.current = dict(dags)

    def dags(self) -> Mapping[str, SerializedDag]:
        return self.current

    def refresh(self, now: datetime) -> bool:  # noqa: ARG002 - the DagSource interface
        return False

    def close(self) -> None:
        pass


def _load(h: Harness, body: str) -> dict[str, SerializedDag]:
    h.write_dag("shrinks.py", body)
    bag = load_dagbag(h.settings, h.engine)
    assert not bag.failures, bag.failures
    return dict(bag.dags)


def _trigger_and_start(h: Harness, body: str) -> tuple[SwitchingDagSource, str]:
    source = SwitchingDagSource(_load(h, body))
    h.start(dag_source=source)
    with session_scope(h.engine) as s:
        run_id = trigger_run(s, source.current["shrinks"], actor="test", now=START).run_id
    h.tick()
    assert h.states("shrinks") == {"wait": "up_for_retry", "b": "none", "c": "none", "side": "success"}
    return source, run_id


def test_a_task_removed_mid_run_becomes_removed_and_the_run_finishes(h: Harness) -> None:
    source, run_id = _trigger_and_start(h, V1)
    source.current = _load(h, V2)
    h.advance(5)  # the next full scan decides the run against the new version
    assert h.states("shrinks")["b"] == "removed"
    h.tick(START + timedelta(minutes=11))
    assert h.states("shrinks") == {"wait": "success", "b": "removed", "c": "success", "side": "success"}
    (run,) = h.runs("shrinks")
    assert run.state.value == "success"
    (removal,) = [a for a in h.audit(task_id="b") if a.new_state == "removed"]
    assert removal.reason == "the task is no longer in the DAG" and removal.old_state == "none"


def test_a_restart_with_the_new_version_settles_the_run(h: Harness) -> None:
    _trigger_and_start(h, V1)
    h.scheduler.shutdown(1.0)  # type: ignore[union-attr]
    h.write_dag("shrinks.py", V2)
    h.start()  # parses the folder: the new version
    h.tick(START + timedelta(minutes=11))
    assert h.states("shrinks")["b"] == "removed"
    assert h.runs("shrinks")[0].state.value == "success"


def test_tasks_why_says_the_task_is_no_longer_in_the_dag(h: Harness) -> None:
    source, run_id = _trigger_and_start(h, V1)
    source.current = _load(h, V2)
    seen = []
    for _ in range(2):  # before the scheduler has decided the run again, and after
        with session_scope(h.engine, readonly=True) as s:
            why = explain_instance(s, source.current["shrinks"], run_id, "b", -1, h.clock.now())
        assert any(not c.passed and "no longer in the DAG" in c.reason for c in why.checks), why
        seen.append(why.state.value)
        h.advance(5)
    assert seen == ["none", "removed"]


def test_a_task_added_mid_run_gets_an_instance_and_runs(h: Harness) -> None:
    source, _ = _trigger_and_start(h, V1)
    source.current = _load(h, V3)
    h.advance(5)
    assert h.states("shrinks")["d"] == "none"
    h.tick(START + timedelta(minutes=11))
    assert h.states("shrinks") == {"wait": "success", "b": "success", "c": "success", "d": "success", "side": "success"}
    assert h.runs("shrinks")[0].state.value == "success"
    (created,) = h.audit(task_id="d", event="task.created")
    assert created.reason == "the task was added to the DAG"


def test_a_removed_task_that_comes_back_waits_again(h: Harness) -> None:
    source, _ = _trigger_and_start(h, V1)
    source.current = _load(h, V2)
    h.advance(5)  # the next full scan decides the run against the new version
    assert h.states("shrinks")["b"] == "removed"
    source.current = _load(h, V1)  # the file back as it was (the runner imports it too)
    h.advance(5)
    assert h.states("shrinks")["b"] == "none"
    h.tick(START + timedelta(minutes=11))
    assert set(h.states("shrinks").values()) == {"success"}
