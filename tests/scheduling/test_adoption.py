"""A live scheduler adopts the work of a dead one, within `scheduler_adopt_after_sec` of its last heartbeat.

The dead job is a `scheduler_job` row on another host (so only its heartbeat can tell it is dead) that
queued one try and runs another; a fake clock steps past the bound. Its queued try goes back to
`scheduled` and is run by the adopter, its running try (fresh heartbeat: a remote worker) is left alone,
its DAG callback request changes hands, and the job is failed through the job state machine, audited.
On PostgreSQL two adopters racing (threads, separate sessions) adopt a dead job exactly once; and a
scheduler creating runs of a DAG makes another one skip that DAG instead of waiting for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from dagrunner.persistence import queries
from dagrunner.persistence.audit import TASK, Change, load_ti_rows, transition
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import (
    AuditLog,
    CallbackRequest,
    DagRunType,
    JobState,
    JobType,
    SchedulerJob,
    TaskInstance,
)
from dagrunner.persistence.schema import init_db
from dagrunner.scheduling.dagruns import create_run
from dagrunner.scheduling.recovery import adopt_dead_jobs
from dagrunner.scheduling.scheduler import QUEUEING_LOCK_RETRY_S
from dagrunner.states import TaskInstanceState
from dagrunner.timetables import DagRunInfo

from .harness import START, Harness, make_harness
from .test_scheduler import _daily

ADOPT_AFTER_S = 30.0  # the Scheduler's default, which the harness uses
TRIO = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("trio", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="queued_one"), EmptyOperator(task_id="running_one"), EmptyOperator(task_id="idle")
"""


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, busy_timeout=5.0)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def hp(tmp_path: Path, pg_url: str, pg_engine: Engine) -> Iterator[Harness]:
    yield from make_harness(tmp_path, pg_url, pg_engine)


def _dead_job_with_work(h: Harness, *, run_id: str = "r1", host: str = "elsewhere") -> int:
    """A scheduler job on `host`, last heard from at START, that queued `queued_one` and runs `running_one`
    of a manual run of `trio`, and owns a pending DAG callback request. Returns its id."""
    assert h.scheduler is not None
    dag = h.scheduler.dag_source.dags()["trio"]
    with session_scope(h.engine) as s:
        job = SchedulerJob(job_type=JobType.SCHEDULER, host=host, pid=4242, started_at=START, latest_heartbeat=START,
                           state=JobState.RUNNING)  # fmt: skip
        s.add(job)
        s.flush()
        info = DagRunInfo(run_after=START, logical_date=START, data_interval_start=START, data_interval_end=START)
        create_run(s, dag, info, run_type=DagRunType.MANUAL, actor="dead", now=START, run_id=run_id)
        tis = {ti.task_id: ti for ti in load_ti_rows(s, [("trio", run_id)])[("trio", run_id)]}
        transition(s, TASK, [tis["queued_one"], tis["running_one"]], Change(TaskInstanceState.QUEUED, START, "dead"),
                   queue_job=job.id)  # fmt: skip
        on_host = {"hostname": host, "pid": 999_999, "last_heartbeat": START + timedelta(seconds=ADOPT_AFTER_S)}
        transition(s, TASK, [tis["running_one"]], Change(TaskInstanceState.RUNNING, START, "dead", values=on_host))
        s.add(CallbackRequest(kind="on_success_callback", dag_id="trio", run_id=run_id, fileloc=dag.fileloc,
                              reason="success", job_id=job.id, created_at=START, attempts=0))  # fmt: skip
        return job.id


def _instance(h: Harness, task_id: str, run_id: str = "r1") -> TaskInstance:
    with session_scope(h.engine, readonly=True) as s:
        return s.scalars(
            select(TaskInstance).where(TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
        ).one()


def _job_state(engine: Engine, job_id: int) -> JobState:
    with session_scope(engine, readonly=True) as s:
        return s.scalars(select(SchedulerJob.state).where(SchedulerJob.id == job_id)).one()


def _adopted_events(engine: Engine) -> list[AuditLog]:
    with session_scope(engine, readonly=True) as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.event == "job.adopted").order_by(AuditLog.id)))


def test_a_silent_scheduler_is_adopted_after_the_bound_and_not_before(h: Harness) -> None:
    h.write_dag("trio.py", TRIO)
    sched = h.start(callbacks=False)
    dead = _dead_job_with_work(h)
    h.tick(START + timedelta(seconds=ADOPT_AFTER_S - 1))
    assert _job_state(h.engine, dead) == JobState.RUNNING and not _adopted_events(h.engine)
    assert _instance(h, "queued_one").state == TaskInstanceState.QUEUED  # not ours: left alone

    h.tick(START + timedelta(seconds=ADOPT_AFTER_S + sched.heartbeat_s))  # the next check past the bound
    assert _job_state(h.engine, dead) == JobState.FAILED
    (event,) = _adopted_events(h.engine)
    assert event.detail is not None
    assert event.detail["job_id"] == dead and event.detail["by_job"] == sched.job_id
    assert (event.detail["requeued"], event.detail["left_running"], event.detail["lost"]) == (1, 1, 0)
    assert "no heartbeat for 35.0s (limit 30s)" in (event.reason or "")
    ended = h.audit(event="job.state")
    assert [(a.old_state, a.new_state) for a in ended if a.detail and a.detail.get("job_id") == dead] == [
        ("running", "failed")
    ]
    queued = _instance(h, "queued_one")  # back to scheduled without using a try, then run by the adopter
    assert queued.state == TaskInstanceState.SUCCESS and queued.queued_by_job_id == sched.job_id
    assert _instance(h, "running_one").state == TaskInstanceState.RUNNING  # its remote worker still beats
    with session_scope(h.engine, readonly=True) as s:
        assert s.scalars(select(CallbackRequest.job_id)).all() == [sched.job_id]


def test_a_dead_process_on_this_host_is_adopted_at_the_next_check(h: Harness) -> None:
    from dagrunner.scheduling.jobs import HOSTNAME

    h.write_dag("trio.py", TRIO)
    sched = h.start(callbacks=False)
    dead = _dead_job_with_work(h, host=HOSTNAME)  # pid 4242 / 999999: no such process here
    h.tick(START + timedelta(seconds=1))  # long before the bound: the kernel says it is gone
    assert _job_state(h.engine, dead) == JobState.FAILED
    (event,) = _adopted_events(h.engine)
    assert event.detail is not None and event.detail["lost"] == 1  # its try's process is gone too
    assert "its process is gone" in (event.reason or "")
    assert sched.job_id is not None and _job_state(h.engine, sched.job_id) == JobState.RUNNING


def test_a_scheduler_declared_dead_goes_on_as_a_new_job(h: Harness) -> None:
    _daily(h, catchup=False)
    sched = h.start(callbacks=False)
    first = sched.job_id
    assert first is not None
    with session_scope(h.engine) as s:  # another scheduler found it silent and adopted its work
        assert adopt_dead_jobs(s, now=START + timedelta(hours=2), my_job_id=0, adopt_after_s=ADOPT_AFTER_S,
                               zombie_threshold_s=300, actor="other", dags={})  # fmt: skip
    h.tick(START + timedelta(seconds=10))  # its next heartbeat finds the job ended
    assert sched.job_id != first
    assert _job_state(h.engine, first) == JobState.FAILED
    assert _job_state(h.engine, sched.job_id) == JobState.RUNNING
    assert {r.state.value for r in h.runs("daily")} == {"success"}


@pytest.mark.postgres
def test_two_adopters_racing_adopt_a_dead_job_once(hp: Harness, pg_url: str) -> None:
    hp.write_dag("trio.py", TRIO)
    hp.start(callbacks=False)
    dead = _dead_job_with_work(hp)
    later = START + timedelta(seconds=ADOPT_AFTER_S * 2)

    def adopt(session_engine: Engine, adopter: int) -> int:
        with session_scope(session_engine) as s:
            return len(adopt_dead_jobs(s, now=later, my_job_id=adopter, adopt_after_s=ADOPT_AFTER_S,
                                       zombie_threshold_s=300, actor=f"adopter-{adopter}", dags={}))  # fmt: skip

    # one holds the job row (mid-transaction): the other skips it rather than wait, and adopts nothing
    with session_scope(hp.engine) as first:
        assert len(adopt_dead_jobs(first, now=later, my_job_id=1, adopt_after_s=ADOPT_AFTER_S, zombie_threshold_s=300,
                                   actor="adopter-1", dags={})) == 1  # fmt: skip
        assert adopt(hp.engine, 2) == 0
    assert adopt(hp.engine, 2) == 0  # committed: the job has ended

    second_dead = _dead_job_with_work(hp, run_id="r2")
    engines = [make_engine(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    results: list[int] = []

    def racer(index: int) -> None:
        barrier.wait()
        results.append(adopt(engines[index], 10 + index))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for engine in engines:
        engine.dispose()
    assert sorted(results) == [0, 0, 0, 1]
    assert [e.detail["job_id"] for e in _adopted_events(hp.engine) if e.detail] == [dead, second_dead]
    with session_scope(hp.engine, readonly=True) as s:  # its queued try went back once, audited once
        back = s.scalar(
            select(func.count()).select_from(AuditLog)
            .where(AuditLog.run_id == "r2", AuditLog.task_id == "queued_one", AuditLog.new_state == "scheduled")
        )  # fmt: skip
    assert back == 1


@pytest.mark.postgres
def test_a_dag_whose_runs_another_scheduler_is_creating_is_skipped_not_waited_for(hp: Harness) -> None:
    _daily(hp, max_active_runs=2)
    sched = hp.start()
    with session_scope(hp.engine) as other:  # another scheduler, in the middle of creating daily's runs
        assert queries.lock_dags_for_run_creation(other, ["daily"]) == {"daily"}
        report = sched.tick(hp.clock.now())
        assert report.created_runs == 0 and hp.runs("daily") == []
        assert sched.next_wakeup(hp.clock.now()) <= hp.clock.now() + timedelta(seconds=QUEUEING_LOCK_RETRY_S)
    hp.tick(settle=False)  # released: it creates them now, within max_active_runs
    assert len(hp.runs("daily")) == 2
