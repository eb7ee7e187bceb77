"""LatestOnlyOperator, TriggerDagRunOperator and ExternalTaskSensor run by the scheduler (inline executor,
fake clock; the local executor where a task waits for another run), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dagrunner.clock import FakeClock
from dagrunner.execution import make_executor
from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRun, XCom
from dagrunner.scheduling.dag_source import FixedDagSource
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.scheduler import Scheduler

from .harness import START, Harness


def _trigger(h: Harness, dag_id: str, *, at: datetime | None = None, run_id: str | None = None) -> str:
    assert h.scheduler is not None
    dag = h.scheduler.dag_source.dags()[dag_id]
    with session_scope(h.engine) as s:
        return trigger_run(s, dag, actor="test", now=h.clock.now(), logical_date=at, run_id=run_id).run_id


def _xcom(h: Harness, dag_id: str, task_id: str, key: str) -> object:
    with session_scope(h.engine, readonly=True) as s:
        row = s.scalars(select(XCom).where(XCom.dag_id == dag_id, XCom.task_id == task_id, XCom.key == key)).one()
        return row.value


# --- LatestOnlyOperator ------------------------------------------------------------------------------

LATEST = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator, LatestOnlyOperator

with DAG("latest", schedule="@daily", start_date=pendulum.parse({start!r}), catchup=True):
    latest = LatestOnlyOperator(task_id="latest_only")
    work = EmptyOperator(task_id="work")
    # As in Airflow's example: a direct downstream task is skipped whatever its trigger rule; beyond it,
    # trigger rules decide (all_done runs after a skipped upstream).
    latest >> work >> [EmptyOperator(task_id="after"), EmptyOperator(task_id="always", trigger_rule="all_done")]
"""


def test_latest_only_skips_downstream_in_older_runs_and_lets_the_latest_and_manual_runs_through(h: Harness) -> None:
    # The task judges on the real clock, so the scheduler's fake clock is set to now.
    now = datetime.now(UTC)
    start = (now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    h.write_dag("latest.py", LATEST.format(start=start.isoformat()))
    h.start()
    h.tick(now)
    runs = h.runs("latest")
    assert len(runs) == 3 and all(r.run_type.value == "scheduled" for r in runs)
    old = {"latest_only": "success", "work": "skipped", "after": "skipped", "always": "success"}
    assert [h.states("latest", r.run_id) for r in runs[:-1]] == [old, old]
    assert h.states("latest", runs[-1].run_id) == dict.fromkeys(old, "success")
    # A manual run of an old date is not judged: everything runs.
    manual = _trigger(h, "latest", at=start)
    h.tick(now)
    assert h.states("latest", manual) == dict.fromkeys(old, "success")


# --- TriggerDagRunOperator ---------------------------------------------------------------------------

TRIGGER = """
import pendulum
from dagrunner import DAG, Param, task
from dagrunner.operators import TriggerDagRunOperator

with DAG("target", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params={{"day": Param("", type="string")}}):
    @task
    def show(params=None, dag_run=None):
        if params["day"] == "boom":
            raise ValueError("asked to fail")
        return {{"day": params["day"], "run_type": dag_run.run_type}}
    show()

with DAG("controller", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    TriggerDagRunOperator(task_id="kick", trigger_dag_id="target", conf={{"day": {day!r}}}, {extra})
"""


def _controller(h: Harness, *, day: str = "{{ ds }}", extra: str = "") -> None:
    h.write_dag("trigger.py", TRIGGER.format(day=day, extra=extra))


def test_trigger_creates_an_audited_manual_run_with_the_rendered_conf_that_then_runs(h: Harness) -> None:
    _controller(h, extra="trigger_run_id='from_{{ dag_run.dag_id }}', logical_date='2026-01-04T06:00:00+00:00'")
    h.start()
    _trigger(h, "controller")
    h.tick()
    assert h.states("controller") == {"kick": "success"}
    (target,) = h.runs("target")
    assert (target.run_id, target.run_type.value, target.conf) == ("from_controller", "manual", {"day": "2026-01-05"})
    assert target.logical_date == datetime(2026, 1, 4, 6, tzinfo=UTC)
    assert target.created_by.startswith("task:") and "kick" in target.created_by
    created = h.audit(event="run.created", dag_id="target")
    assert [a.actor for a in created] == [target.created_by]
    assert _xcom(h, "controller", "kick", "trigger_run_id") == "from_controller"
    assert _xcom(h, "controller", "kick", "trigger_logical_date_iso") == "2026-01-04T06:00:00+00:00"
    assert h.states("target") == {"show": "success"}
    assert _xcom(h, "target", "show", "return_value") == {"day": "2026-01-05", "run_type": "manual"}


def test_default_run_id_and_logical_date_are_a_manual_run_now(h: Harness) -> None:
    _controller(h)
    h.start()
    _trigger(h, "controller")
    h.tick()
    (target,) = h.runs("target")
    assert target.run_id.startswith("manual__") and target.run_id == _xcom(h, "controller", "kick", "trigger_run_id")


def test_an_existing_run_id_fails_or_skips_or_is_reset(h: Harness) -> None:
    h.write_dag("trigger.py", TRIGGER.format(day="x", extra="trigger_run_id='fixed'"))
    h.start()
    first = _trigger(h, "controller", at=START)
    h.tick()
    second = _trigger(h, "controller", at=START + timedelta(hours=1))
    h.tick()
    assert h.states("controller", first) == {"kick": "success"}
    assert h.states("controller", second) == {"kick": "failed"}
    assert len(h.runs("target")) == 1
    (failed_try,) = h.tries("controller", "kick")[1:]
    assert "already has a run 'fixed'" in (failed_try.error or "")


@pytest.mark.parametrize("flag, expected", [("skip_when_already_exists", "skipped"), ("reset_dag_run", "success")])
def test_skip_when_already_exists_and_reset_dag_run(h: Harness, flag: str, expected: str) -> None:
    h.write_dag("trigger.py", TRIGGER.format(day="boom", extra=f"trigger_run_id='fixed', {flag}=True"))
    h.start()
    first = _trigger(h, "controller", at=START)
    h.tick()
    assert h.states("target", "fixed") == {"show": "failed"}
    second = _trigger(h, "controller", at=START + timedelta(hours=1))
    h.tick()
    assert h.states("controller", second) == {"kick": expected}
    assert h.states("controller", first) == {"kick": "success"}
    h.advance(10)  # the scheduler's next look at queued runs
    tries = h.tries("target", "show")
    if flag == "reset_dag_run":  # cleared and run again (it fails again: same conf)
        assert [t.try_number for t in tries] == [1, 2]
        assert [a.reason for a in h.audit(event="task.state", dag_id="target", new_state="none")] == [
            "reset by TriggerDagRunOperator (reset_dag_run=True)"
        ]
    else:
        assert len(tries) == 1


def test_a_conf_that_breaks_the_target_params_fails_the_task(h: Harness) -> None:
    h.write_dag("trigger.py", TRIGGER.format(day=3, extra=""))
    h.start()
    _trigger(h, "controller")
    h.tick()
    assert h.states("controller") == {"kick": "failed"}
    assert h.runs("target") == []
    assert "day" in (h.tries("controller", "kick")[0].error or "")


def test_an_unknown_dag_fails_the_task_with_one_clear_line(h: Harness) -> None:
    h.write_dag("trigger.py", TRIGGER.format(day="x", extra="").replace('trigger_dag_id="target"',
                                                                        'trigger_dag_id="nope"'))  # fmt: skip
    h.start()
    _trigger(h, "controller")
    h.tick()
    assert h.states("controller") == {"kick": "failed"}
    assert "no DAG 'nope' to trigger" in (h.tries("controller", "kick")[0].error or "")


def test_waiting_under_the_inline_executor_fails_at_once_instead_of_hanging(h: Harness) -> None:
    _controller(h, extra="wait_for_completion=True, poke_interval=0.1")
    h.start()
    _trigger(h, "controller")
    h.tick()
    assert h.states("controller") == {"kick": "failed"}
    assert "use the local or celery executor" in (h.tries("controller", "kick")[0].error or "")


def _run_until_done(h: Harness, sched: Scheduler, dag_id: str, run_id: str, *, limit_s: float = 60) -> None:
    assert isinstance(h.clock, FakeClock)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        h.clock.set(h.clock.now() + timedelta(seconds=0.2))
        sched.tick(h.clock.now())
        with session_scope(h.engine, readonly=True) as s:
            run = s.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one()
            if run.state.value in ("success", "failed"):
                return
        time.sleep(0.1)
    raise AssertionError(f"{dag_id} {run_id} did not finish within {limit_s}s")


@pytest.mark.parametrize("day, kick, target", [("ok", "success", "success"), ("boom", "failed", "failed")])
def test_wait_for_completion_follows_the_run_through_a_worker(h: Harness, day: str, kick: str, target: str) -> None:
    h.write_dag("trigger.py", TRIGGER.format(day=day, extra="wait_for_completion=True, poke_interval=0.2"))
    bag = load_dagbag(h.settings, h.engine)
    with session_scope(h.engine) as s:
        run_id = trigger_run(s, bag.dags["controller"], actor="test", now=h.clock.now()).run_id
    executor = make_executor("local", h.settings, actor="test")
    sched = Scheduler(engine=h.engine, executor=executor, dag_source=FixedDagSource(bag.dags), clock=h.clock,
                      actor="scheduler-test")  # fmt: skip
    sched.start()
    h.scheduler = sched
    _run_until_done(h, sched, "controller", run_id)
    assert h.states("controller") == {"kick": kick}
    assert h.states("target") == {"show": target}
    if kick == "failed":
        assert "ended failed (failed_states)" in (h.tries("controller", "kick")[0].error or "")


# --- ExternalTaskSensor ------------------------------------------------------------------------------

EXTERNAL = """
import pendulum
from datetime import timedelta
from pathlib import Path
from dagrunner import DAG
from dagrunner.operators import EmptyOperator, PythonOperator
from dagrunner.sensors import ExternalTaskSensor

def produce():
    if Path({fail_flag!r}).exists():
        raise ValueError("upstream broke")

with DAG("upstream", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonOperator(task_id="produce", python_callable=produce) >> EmptyOperator(task_id="publish")

with DAG("downstream", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ExternalTaskSensor(task_id="wait", external_dag_id="upstream", mode="reschedule", poke_interval=60,
                       timeout=3600, {args}) >> EmptyOperator(task_id="after")
"""


def _external(h: Harness, args: str) -> str:
    fail_flag = h.root / "fail"
    h.write_dag("external.py", EXTERNAL.format(fail_flag=str(fail_flag), args=args))
    return str(fail_flag)


@pytest.mark.parametrize(
    "args",
    [
        "external_task_id='produce'",
        "external_task_ids=['produce', 'publish']",
        "",  # the whole run
        "external_task_id='produce', execution_delta=timedelta(hours=1)",
        "external_task_id='produce', execution_date_fn=lambda dt: [dt - timedelta(hours=1)]",
    ],
)
def test_the_sensor_waits_for_the_external_tasks_at_the_matching_logical_date(h: Harness, args: str) -> None:
    _external(h, args)
    h.start()
    shifted = "timedelta" in args
    down = _trigger(h, "downstream", at=START + timedelta(hours=1) if shifted else START)
    h.tick()
    assert h.states("downstream", down) == {"wait": "up_for_reschedule", "after": "none"}
    other = _trigger(h, "upstream", at=START + timedelta(hours=2), run_id="other_date")  # another date: no match
    h.advance(60)
    assert h.states("upstream", other)["produce"] == "success"
    assert h.states("downstream", down)["wait"] == "up_for_reschedule"
    up = _trigger(h, "upstream", at=START)
    h.tick()  # the upstream run finishes; the sensor's next poke is not due yet
    assert set(h.states("upstream", up).values()) == {"success"}
    assert h.states("downstream", down)["wait"] == "up_for_reschedule"
    h.advance(60)
    assert h.states("downstream", down) == {"wait": "success", "after": "success"}


@pytest.mark.parametrize("soft_fail, expected", [(False, "failed"), (True, "skipped")])
def test_a_failed_external_task_fails_the_sensor_or_skips_it_with_soft_fail(
    h: Harness, soft_fail: bool, expected: str
) -> None:
    fail_flag = _external(h, f"external_task_id='produce', failed_states=['failed'], soft_fail={soft_fail}")
    open(fail_flag, "w").close()
    h.start()
    up = _trigger(h, "upstream", at=START)
    h.tick()
    assert h.states("upstream", up)["produce"] == "failed"
    down = _trigger(h, "downstream", at=START)
    h.tick()
    assert h.states("downstream", down)["wait"] == expected
    assert "is in a failed state (failed)" in (h.tries("downstream", "wait")[0].error or "")


def test_skipped_states_skip_the_sensor(h: Harness) -> None:
    fail_flag = _external(h, "external_task_id='publish', skipped_states=['upstream_failed']")
    open(fail_flag, "w").close()
    h.start()
    _trigger(h, "upstream", at=START)
    down = _trigger(h, "downstream", at=START)
    h.tick()
    h.advance(60)
    assert h.states("downstream", down) == {"wait": "skipped", "after": "skipped"}
