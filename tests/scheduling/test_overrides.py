"""Administrative overrides (Airflow's mark success/failed) through the library, with the fake clock: what
moves, what is cleared to run again, what the run does next, the audit rows, and the refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dagrunner.errors import InvalidOverrideError, NotFoundError, TaskNotFoundError
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.overrides import apply_run_state, apply_task_state, plan_run_state, plan_task_state

from .harness import START, Harness

ALICE = "alice@host: dagrunner tasks set-state"
#: extract >> load >> report, and an independent `side`; `load` fails while the file `broken` exists.
CHAIN = """
import pendulum
from pathlib import Path
from dagrunner import DAG, task

BROKEN = Path(__file__).parent / "broken"

@task
def step(ti=None):
    if ti.task_id == "load" and BROKEN.exists():
        raise RuntimeError("disk full")

with DAG("chain", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    step.override(task_id="extract")() >> step.override(task_id="load")() >> step.override(task_id="report")()
    step.override(task_id="side")()
"""


def _failed_run(h: Harness) -> str:
    h.write_dag("chain.py", CHAIN)
    (h.settings.dags_folder / "broken").touch()
    sched = h.start()
    with session_scope(h.engine) as s:
        run_id = trigger_run(s, sched.dag_source.dags()["chain"], actor="test", now=START).run_id
    h.tick(START)
    assert h.states("chain") == {"extract": "success", "load": "failed", "report": "upstream_failed", "side": "success"}
    assert h.runs("chain")[0].state == "failed"
    return run_id


def _waiting_run(h: Harness) -> str:
    """A run created but not decided yet: every instance `none`."""
    h.write_dag("chain.py", CHAIN)
    sched = h.start()
    with session_scope(h.engine) as s:
        return trigger_run(s, sched.dag_source.dags()["chain"], actor="test", now=START).run_id


def _mark_task(h: Harness, run_id: str, task_id: str, state: str, **kw: object) -> list[str]:
    dag = h.scheduler.dag_source.dags()["chain"]  # type: ignore[union-attr]
    with session_scope(h.engine) as s:
        plan = plan_task_state(s, dag, run_id, task_id, state, **kw)  # type: ignore[arg-type]
        apply_task_state(s, dag, plan, reason="the file was loaded by hand", actor=ALICE, now=h.clock.now())
        return plan.lines()


def test_marking_a_failed_task_success_resumes_its_downstream_and_the_run(h: Harness) -> None:
    run_id = _failed_run(h)
    (h.settings.dags_folder / "broken").unlink()
    h.clock.set(START + timedelta(minutes=5))
    lines = _mark_task(h, run_id, "load", "success")
    assert lines == [
        "load: failed -> success",
        "report: upstream_failed -> none (cleared, runs again)",
        f"run {run_id}: failed -> queued (decided again)",
    ]
    assert h.states("chain")["load"] == "success" and h.states("chain")["report"] == "none"
    h.tick()
    assert h.states("chain") == dict.fromkeys(("extract", "load", "report", "side"), "success")
    assert h.runs("chain")[0].state == "success"
    (marked,) = [r for r in h.audit(event="task.state", task_id="load") if r.new_state == "success"]
    assert (marked.actor, marked.reason, marked.old_state) == (
        ALICE, "marked by hand: the file was loaded by hand", "failed",
    )  # fmt: skip
    assert marked.ts == START + timedelta(minutes=5)
    (event,) = h.audit(event="tasks.marked")
    assert event.reason == "the file was loaded by hand" and event.detail["changed"][0]["old"] == "failed"


def test_mark_failed_with_downstream_fails_what_is_below(h: Harness) -> None:
    run_id = _waiting_run(h)
    _mark_task(h, run_id, "extract", "failed", downstream=True)
    assert h.states("chain") == {"extract": "failed", "load": "failed", "report": "failed", "side": "none"}
    h.tick(START)
    assert h.states("chain")["side"] == "success" and h.runs("chain")[0].state == "failed"


def test_mark_skipped_with_upstream_skips_what_is_above(h: Harness) -> None:
    run_id = _waiting_run(h)
    lines = _mark_task(h, run_id, "load", "skipped", upstream=True)
    assert sorted(lines) == ["extract: none -> skipped", "load: none -> skipped"]
    h.tick(START)
    assert h.states("chain") == {"extract": "skipped", "load": "skipped", "report": "skipped", "side": "success"}


def test_a_run_marked_success_marks_every_unsuccessful_instance(h: Harness) -> None:
    run_id = _failed_run(h)
    with session_scope(h.engine) as s:
        plan = plan_run_state(s, "chain", run_id, "success")
        apply_run_state(s, plan, reason="data fixed upstream", actor=ALICE, now=START)
    assert set(h.states("chain").values()) == {"success"}
    (run,) = h.runs("chain")
    assert run.state == "success"
    (row,) = h.audit(event="run.state", new_state="success")
    assert (row.old_state, row.actor, row.reason) == ("failed", ALICE, "marked by hand: data fixed upstream")


def test_a_run_marked_failed_fails_running_and_skips_unfinished_instances(h: Harness) -> None:
    run_id = _waiting_run(h)
    with session_scope(h.engine) as s:
        plan = plan_run_state(s, "chain", run_id, "failed")
        apply_run_state(s, plan, reason="wrong input file", actor=ALICE, now=START)
    assert set(h.states("chain").values()) == {"skipped"}
    assert h.runs("chain")[0].state == "failed"
    h.tick(START)  # the scheduler leaves a finished run alone
    assert set(h.states("chain").values()) == {"skipped"}


def test_overrides_that_make_no_sense_are_refused_and_change_nothing(h: Harness) -> None:
    run_id = _failed_run(h)
    dag = h.scheduler.dag_source.dags()["chain"]  # type: ignore[union-attr]
    before = h.states("chain")
    audit_rows = len(h.audit())
    with session_scope(h.engine) as s:
        with pytest.raises(NotFoundError, match="has no run 'gone'"):
            plan_task_state(s, dag, "gone", "load", "success")
        with pytest.raises(TaskNotFoundError, match="nope"):
            plan_task_state(s, dag, run_id, "nope", "success")
        with pytest.raises(InvalidOverrideError, match="load in run .* is failed already"):
            plan_task_state(s, dag, run_id, "load", "failed")
        with pytest.raises(InvalidOverrideError, match="not 'running'"):
            plan_task_state(s, dag, run_id, "load", "running")
        with pytest.raises(NotFoundError, match="no instance of load with map index 3"):
            plan_task_state(s, dag, run_id, "load", "success", map_index=3)
        with pytest.raises(InvalidOverrideError, match="is failed already"):
            plan_run_state(s, "chain", run_id, "failed")
        with pytest.raises(InvalidOverrideError, match="success or failed, not 'queued'"):
            plan_run_state(s, "chain", run_id, "queued")
        with pytest.raises(NotFoundError, match="has no run 'gone'"):
            plan_run_state(s, "chain", "gone", "success")
        plan = plan_task_state(s, dag, run_id, "load", "success")
        with pytest.raises(InvalidOverrideError, match="--reason is empty"):
            apply_task_state(s, dag, plan, reason="  ", actor=ALICE, now=START)
    assert h.states("chain") == before and len(h.audit()) == audit_rows


def test_a_removed_instance_may_not_be_marked(h: Harness) -> None:
    from dagrunner.persistence.audit import TASK, Change, transition
    from dagrunner.persistence.models import TaskInstance
    from dagrunner.states import TaskInstanceState

    run_id = _waiting_run(h)
    with session_scope(h.engine) as s:
        ti = s.query(TaskInstance).filter_by(dag_id="chain", run_id=run_id, task_id="report").one()
        transition(s, TASK, [ti], Change(TaskInstanceState.REMOVED, START, "test", "gone from the DAG"))
    dag = h.scheduler.dag_source.dags()["chain"]  # type: ignore[union-attr]
    with session_scope(h.engine) as s:
        with pytest.raises(InvalidOverrideError, match="cannot mark report success: .*removed -> success"):
            plan_task_state(s, dag, run_id, "report", "success")
        plan = plan_task_state(s, dag, run_id, "load", "success", downstream=True)  # the removed one is left
    assert plan.lines() == ["load: none -> success", "report: left removed (removed may not become success)"]


#: `reserve` succeeds (undone by `release`); `charge` keeps failing and retries in an hour.
SAGA = """
import pendulum
from datetime import timedelta
from dagrunner import DAG, task

with DAG("saga", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def reserve():
        return "resv-1"

    @task
    def release(compensation):
        return f"released {compensation['result']}"

    @task(retries=3, retry_delay=timedelta(hours=1))
    def charge():
        raise RuntimeError("the provider is down")

    reserve().compensate_with(release()) >> charge()
"""


def test_marking_a_retrying_step_failed_fails_the_run_for_good_and_rolls_back_what_succeeded(h: Harness) -> None:
    """An override that fails a step is a terminal failure like any other: the scheduler compensates."""
    h.write_dag("saga.py", SAGA)
    sched = h.start()
    with session_scope(h.engine) as s:
        run_id = trigger_run(s, sched.dag_source.dags()["saga"], actor="test", now=START).run_id
    h.tick(START)
    assert h.states("saga") == {"reserve": "success", "charge": "up_for_retry"}
    dag = sched.dag_source.dags()["saga"]
    with session_scope(h.engine) as s:
        plan = plan_task_state(s, dag, run_id, "charge", "failed")
        apply_task_state(s, dag, plan, reason="the provider is gone for good", actor=ALICE, now=START)
    h.advance(sched.options.full_scan_s)  # another process's change is seen at the next full scan
    h.advance(1)
    assert h.states("saga") == {"reserve": "success", "charge": "failed", "release": "success"}
    assert h.runs("saga")[0].state == "failed"
    (started,) = h.audit(event="compensation.started")
    assert started.task_id == "reserve"
