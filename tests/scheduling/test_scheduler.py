"""The scheduler driven by `tick(now)` with a fake clock and the inline executor, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagrunner.persistence.audit import set_paused
from dagrunner.persistence.engine import session_scope

from .harness import PARALLELISM, START, Harness

DAILY = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("daily", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup={catchup}, max_active_runs={max_active_runs}, end_date={end_date}):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


def _daily(h: Harness, catchup: bool = True, max_active_runs: int = 16, end_date: str = "None") -> None:
    h.write_dag("daily.py", DAILY.format(catchup=catchup, max_active_runs=max_active_runs, end_date=end_date))


def test_catchup_creates_every_due_run_and_runs_them(h: Harness) -> None:
    _daily(h)
    h.start()
    h.tick()
    runs = h.runs("daily")
    assert [r.logical_date.day for r in runs] == [1, 2, 3, 4, 5]
    assert {r.state.value for r in runs} == {"success"}
    assert all(h.states("daily", r.run_id) == {"a": "success", "b": "success"} for r in runs)
    assert runs[0].run_id == "scheduled__2026-01-01T00:00:00+00:00"


def test_without_catchup_only_the_latest_due_run(h: Harness) -> None:
    _daily(h, catchup=False)
    h.start()
    h.tick()
    assert [r.logical_date for r in h.runs("daily")] == [datetime(2026, 1, 5, tzinfo=UTC)]
    h.tick(START + timedelta(days=1))
    assert [r.logical_date.day for r in h.runs("daily")] == [5, 6]


def test_paused_dag_creates_nothing_until_unpaused(h: Harness) -> None:
    _daily(h)
    h.start()
    with session_scope(h.engine) as s:
        set_paused(s, "daily", True, actor="test", when=START)
    h.tick()
    assert h.runs("daily") == []
    with session_scope(h.engine) as s:
        set_paused(s, "daily", False, actor="test", when=START)
    h.tick()
    assert len(h.runs("daily")) == 5


def test_max_active_runs_and_end_date(h: Harness) -> None:
    _daily(h, max_active_runs=1, end_date='pendulum.datetime(2026, 1, 3, tz="UTC")')
    sched = h.start()
    sched.tick(START)  # one tick: only one run may be active
    assert len(h.runs("daily")) == 1
    h.tick()
    runs = h.runs("daily")
    assert [r.logical_date.day for r in runs] == [1, 2, 3]  # end_date is inclusive
    assert {r.state.value for r in runs} == {"success"}
    created = [e for e in h.audit(event="run.created")]
    assert len(created) == 3


FLAKY = """
import pendulum
from pathlib import Path
from dagrunner import DAG, task

LEDGER = Path({ledger!r})

with DAG("flaky", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task(retries=2, retry_delay=60)
    def wobbly():
        n = len(LEDGER.read_text().splitlines()) if LEDGER.exists() else 0
        with LEDGER.open("a") as fh:
            fh.write("try\\n")
        if n == 0:
            raise RuntimeError("first try fails")
        return n

    @task
    def after(n):
        return n + 1

    after(wobbly())
"""


def test_retry_waits_for_its_delay_on_the_fake_clock(h: Harness) -> None:
    from dagrunner.scheduling.operations import trigger_run

    ledger = h.root / "ledger.txt"
    h.write_dag("flaky.py", FLAKY.format(ledger=str(ledger)))
    sched = h.start()
    with session_scope(h.engine) as s:
        trigger_run(s, sched.dag_source.dags()["flaky"], actor="test", now=START)
    h.tick()
    assert h.states("flaky") == {"wobbly": "up_for_retry", "after": "none"}
    h.advance(30)
    assert h.states("flaky")["wobbly"] == "up_for_retry"  # 60 s not yet over
    assert ledger.read_text().count("try") == 1
    h.advance(31)
    assert h.states("flaky") == {"wobbly": "success", "after": "success"}
    tries = h.tries("flaky", "wobbly")
    assert [(t.try_number, t.state.value) for t in tries] == [(1, "up_for_retry"), (2, "success")]
    assert "first try fails" in (tries[0].error or "")
    (run,) = h.runs("flaky")
    assert run.state.value == "success"


BRANCHY = """
import pendulum
from dagrunner import DAG, TriggerRule, task
from dagrunner.operators import EmptyOperator

with DAG("branchy", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task.branch
    def pick():
        return "left"

    left = EmptyOperator(task_id="left")
    right = EmptyOperator(task_id="right")
    right_after = EmptyOperator(task_id="right_after")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    strict = EmptyOperator(task_id="strict")
    pick() >> [left, right]
    right >> right_after
    [left, right_after] >> join
    [left, right_after] >> strict
"""


def test_branch_skips_propagate_through_trigger_rules(h: Harness) -> None:
    from dagrunner.scheduling.operations import trigger_run

    h.write_dag("branchy.py", BRANCHY)
    sched = h.start()
    with session_scope(h.engine) as s:
        trigger_run(s, sched.dag_source.dags()["branchy"], actor="test", now=START)
    h.tick()
    assert h.states("branchy") == {
        "pick": "success",
        "left": "success",
        "right": "skipped",
        "right_after": "skipped",
        "join": "success",
        "strict": "skipped",
    }
    (run,) = h.runs("branchy")
    assert run.state.value == "success"


FAILING_CHAIN = """
import pendulum
from dagrunner import DAG, task
from dagrunner.operators import EmptyOperator

with DAG("chain", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def boom():
        raise ValueError("no")

    c1 = EmptyOperator(task_id="c1")
    c2 = EmptyOperator(task_id="c2")
    c3 = EmptyOperator(task_id="c3")
    cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
    boom() >> c1 >> c2 >> c3 >> cleanup
"""


def test_failure_cascades_in_one_tick_and_run_fails_by_leaf_rule(h: Harness) -> None:
    from dagrunner.scheduling.operations import trigger_run

    h.write_dag("chain.py", FAILING_CHAIN)
    sched = h.start()
    with session_scope(h.engine) as s:
        trigger_run(s, sched.dag_source.dags()["chain"], actor="test", now=START)
    h.tick()
    assert h.states("chain") == {
        "boom": "failed",
        "c1": "upstream_failed",
        "c2": "upstream_failed",
        "c3": "upstream_failed",
        "cleanup": "success",
    }
    # the leaf (cleanup) succeeded: by Airflow's rule the run succeeds
    (run,) = h.runs("chain")
    assert run.state.value == "success"
    # every change was stamped with the scheduler's (fake) clock, the cascade's too, never the wall clock
    cascade = [r for r in h.audit(event="task.state") if r.new_state == "upstream_failed"]
    assert len(cascade) == 3
    # (the DAG folder's parse, `dag.registered`, is stamped by the loader, which reads real files in real time)
    assert [(r.event, r.ts) for r in h.audit() if r.ts != START and not r.event.startswith("dag.")] == []


MAPPED = """
import pendulum
from dagrunner import DAG, task

with DAG("mapped", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(x):
        return x * 2

    @task
    def total(values):
        return sum(values)

    @task
    def fixed(y):
        return y

    total(double.expand(x=numbers()))
    fixed.expand(y=["a", "b"])
"""


def test_mapping_expands_when_the_input_is_known(h: Harness) -> None:
    from dagrunner.execution.recording import read_xcoms
    from dagrunner.scheduling.operations import trigger_run

    h.write_dag("mapped.py", MAPPED)
    sched = h.start()
    with session_scope(h.engine) as s:
        run = trigger_run(s, sched.dag_source.dags()["mapped"], actor="test", now=START)
    h.tick()
    expanded = {r.task_id: (r.map_index, r.detail["length"]) for r in h.audit(event="task.expanded")}
    assert expanded == {"double": (0, 3), "fixed": (0, 2)}  # the placeholder's renumbering is audited
    states = h.states("mapped")
    assert states == {
        "numbers": "success",
        "double[0]": "success",
        "double[1]": "success",
        "double[2]": "success",
        "total": "success",
        "fixed[0]": "success",
        "fixed[1]": "success",
    }
    with session_scope(h.engine, readonly=True) as s:
        xcoms = read_xcoms(s, "mapped", run.run_id, ["total"])
    assert 12 in [x for x in _values(xcoms)]


def _values(xcoms: object) -> list[object]:
    if isinstance(xcoms, dict):
        return list(xcoms.values())
    return [getattr(x, "value", x) for x in xcoms]  # type: ignore[attr-defined]


POOLED = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("pooled", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    for i in range(3):
        EmptyOperator(task_id=f"t{i}", pool="tiny", priority_weight=i + 1)
"""


def _run_pooled_one_tick(h: Harness) -> None:
    """POOLED in a pool of one slot, triggered, after one tick: the highest priority ran, the others wait."""
    from dagrunner.persistence.models import Pool
    from dagrunner.scheduling.operations import trigger_run

    h.write_dag("pooled.py", POOLED)
    with session_scope(h.engine) as s:
        s.add(Pool(name="tiny", slots=1))
    sched = h.start()
    with session_scope(h.engine) as s:
        trigger_run(s, sched.dag_source.dags()["pooled"], actor="test", now=START)
    sched.tick(START)
    assert h.states("pooled") == {"t2": "success", "t1": "scheduled", "t0": "scheduled"}


def test_pool_slots_limit_and_priority_order(h: Harness) -> None:
    _run_pooled_one_tick(h)
    h.tick()
    assert set(h.states("pooled").values()) == {"success"}
    queued = [e.task_id for e in h.events or [] if e.state == "queued"]
    assert queued == ["t2", "t1", "t0"]


DEPENDS = """
import pendulum
from pathlib import Path
from dagrunner import DAG, task

FLAG = Path({flag!r})

with DAG("past", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=True):
    @task(depends_on_past=True)
    def step(ds=None):
        if ds == "2026-01-02" and not FLAG.exists():
            raise RuntimeError("day 2 broken")

    step()
"""


def test_depends_on_past_blocks_later_runs_until_fixed(h: Harness) -> None:
    from dagrunner.scheduling.operations import clear, select_for_clear

    flag = h.root / "fixed.flag"
    h.write_dag("past.py", DEPENDS.format(flag=str(flag)))
    sched = h.start()
    h.tick(datetime(2026, 1, 3, 12, tzinfo=UTC))
    by_day = {r.logical_date.day: r for r in h.runs("past")}
    assert h.states("past", by_day[1].run_id) == {"step": "success"}
    assert h.states("past", by_day[2].run_id) == {"step": "failed"}
    # day 2's run has finished, so day 3 can never run: it is deadlocked (Airflow fails it too), its
    # step failed with the reason, and clearing the failed instances runs both again in order
    assert h.states("past", by_day[3].run_id) == {"step": "failed"}
    assert by_day[3].state.value == "failed"
    flag.write_text("fixed")
    dag = sched.dag_source.dags()["past"]
    with session_scope(h.engine) as s:
        cleared = clear(s, dag, select_for_clear(s, dag, only_failed=True), actor="test", now=h.clock.now())
    assert sorted(ti.run_id for ti in cleared.cleared) == [by_day[2].run_id, by_day[3].run_id]
    h.advance(1)  # a change made by another process is seen on the next full scan, not before
    assert h.states("past", by_day[2].run_id) == {"step": "none"}
    h.advance(sched.options.full_scan_s)
    assert {r.logical_date.day: h.states("past", r.run_id)["step"] for r in h.runs("past")} == {
        1: "success",
        2: "success",
        3: "success",
    }


def test_a_waiting_instance_changed_by_another_process_is_not_queued(h: Harness) -> None:
    """The scheduler remembers ready instances that found no slot and gives them the next free slot
    without deciding their run again; the queueing is fenced on the state it saw, so an instance another
    process changed meanwhile (here: marked success by hand) is left as that process left it."""
    from sqlalchemy import select

    from dagrunner.persistence.audit import TASK, Change, transition
    from dagrunner.persistence.models import TaskInstance
    from dagrunner.states import TaskInstanceState

    _run_pooled_one_tick(h)
    with session_scope(h.engine) as s:
        ti = s.scalars(select(TaskInstance).where(TaskInstance.task_id == "t1")).one()
        transition(s, TASK, [ti], Change(TaskInstanceState.SUCCESS, h.clock.now(), "someone", "marked by hand"))
    h.tick()  # the slot t2 held is free again: t1 must not take it
    assert h.states("pooled") == {"t2": "success", "t1": "success", "t0": "success"}
    assert h.tries("pooled", "t1") == []
    queued = [e.task_id for e in h.events or [] if e.state == "queued"]
    assert queued == ["t2", "t0"]


def test_a_schedulers_life_is_audited_through_the_job_state_machine(h: Harness) -> None:
    _daily(h)
    sched = h.start()
    job_id = sched.job_id
    h.tick()
    assert h.scheduler is not None
    h.scheduler.shutdown(1.0)
    h.scheduler = None
    [started] = h.audit(event="job.started")
    [ended] = h.audit(event="job.state")
    assert started.detail["job_id"] == job_id and started.detail["job_type"] == "scheduler"
    assert (ended.old_state, ended.new_state, ended.detail, ended.reason) == (
        "running",
        "success",
        {"job_id": job_id},
        "stopped",
    )


WIDE = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("wide", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    for i in range(6):
        EmptyOperator(task_id=f"t{i}")
"""


def test_the_executors_slots_limit_what_one_tick_queues(h: Harness) -> None:
    """The harness's parallelism is the inline executor's slots: the one knob that limits tries at once."""
    from dagrunner.scheduling.operations import trigger_run

    h.write_dag("wide.py", WIDE)
    sched = h.start()
    with session_scope(h.engine) as s:
        trigger_run(s, sched.dag_source.dags()["wide"], actor="test", now=START)
    sched.tick(START)
    assert sorted(h.states("wide").values()) == ["scheduled"] * (6 - PARALLELISM) + ["success"] * PARALLELISM
    h.tick()
    assert set(h.states("wide").values()) == {"success"}
