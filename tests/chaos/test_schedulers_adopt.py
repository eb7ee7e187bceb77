"""Two `dagrunner scheduler` processes on one PostgreSQL database, both active; kill -9 one mid-way.

Both create the scheduled runs of three catchup DAGs and run their tasks (local executor; the bodies
append to a ledger). One is SIGKILLed while it has tries queued or running. The other adopts its work
within the bound (`scheduler_adopt_after_sec`, short here; on this host the dead pid is seen at once):
its job is failed (audited), its queued tries are queued again without using a try, the tries its
surviving workers run record their own outcome. Afterwards every run was created once and succeeded,
every task body ran once, every instance was queued once (plus once per adopted unstarted try), and
`dagrunner jobs list` shows the dead job failed and the live one running.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from integration.procs import env_for, finish, project, run
from polling import wait_until
from sqlalchemy import func, select

from chaos.ledger import ENV, LEDGER_SNIPPET, check_against_db, read
from chaos.schedulers import busy_scheduler
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import AuditLog, DagRun, JobState, SchedulerJob
from dagrunner.persistence.schema import init_db
from dagrunner.states import DagRunState

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAGS = 3
RUNS_PER_DAG = 5  # hourly, catchup, start to end_date inclusive
TASKS = 3
ADOPT_AFTER_S = 2.0
SETTINGS = {
    "DAGRUNNER_SCHEDULER_HEARTBEAT_SEC": "0.5",
    "DAGRUNNER_SCHEDULER_ADOPT_AFTER_SEC": str(ADOPT_AFTER_S),
    "DAGRUNNER_ZOMBIE_THRESHOLD_SEC": "5",
    "DAGRUNNER_TRIGGERER_IN_SCHEDULER": "false",
}

CHAIN = (
    LEDGER_SNIPPET
    + f"""
import time
import pendulum
from dagrunner import DAG, task

for number in range({DAGS}):
    with DAG(f"chain_{{number}}", schedule="@hourly", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             end_date=pendulum.datetime(2026, 1, 1, {RUNS_PER_DAG - 1}, tz="UTC"), catchup=True,
             max_active_runs={RUNS_PER_DAG}) as dag:
        @task
        def body(ti=None, run_id=None):
            note("start", ti, run_id)
            time.sleep(0.4)
            note("end", ti, run_id)

        step = body.override(task_id="t0")()
        for i in range(1, {TASKS}):
            nxt = body.override(task_id=f"t{{i}}")()
            step >> nxt
            step = nxt
    globals()[f"dag_{{number}}"] = dag
"""
)


def _start_scheduler(root: Path, db_url: str, ledger: Path, number: int) -> subprocess.Popen[str]:
    log = root / f"scheduler-{number}.log"
    env = {**env_for(root, db_url, SETTINGS), ENV: str(ledger)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagrunner", "scheduler", "--parallelism", "4"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def event_detail(session: object) -> object:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    return session.scalars(select(AuditLog.detail).where(AuditLog.event == "job.adopted")).all()


def _count(db_url: str, query: object) -> int:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            return int(s.scalar(query) or 0)  # type: ignore[call-overload]
    finally:
        engine.dispose()


def test_two_schedulers_share_the_work_and_adopt_a_killed_ones(tmp_path: Path, pg_url: str) -> None:
    root = project(tmp_path, examples=False)
    (root / "dags" / "chains.py").write_text(CHAIN)
    ledger = tmp_path / "ledger.txt"
    engine = make_engine(pg_url)
    init_db(engine)
    engine.dispose()
    schedulers = [_start_scheduler(root, pg_url, ledger, n) for n in range(2)]
    by_pid = {proc.pid: proc for proc in schedulers}
    logs = []
    try:
        wait_until(lambda: len(read(ledger)) >= 8, timeout=60, what="a few task bodies to run")
        job_id, pid = wait_until(lambda: busy_scheduler(pg_url), timeout=30, what="a scheduler with tries in flight")
        by_pid[pid].send_signal(signal.SIGKILL)
        killed_at = time.time()
        by_pid[pid].wait(10)
        adopted = AuditLog.event == "job.adopted"
        wait_until(lambda: _count(pg_url, select(func.count()).where(adopted)), timeout=30, what="the adoption")
        adoption_s = time.time() - killed_at
        total = DAGS * RUNS_PER_DAG
        succeeded = select(func.count()).where(DagRun.state == DagRunState.SUCCESS)
        wait_until(lambda: _count(pg_url, succeeded) == total, timeout=90, what=f"all {total} runs to succeed")
        listed = run(root, pg_url, "jobs", "list", "--json")
    finally:
        for proc in schedulers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            logs.append(finish(proc, 60))
    output = "\n".join(logs)
    print(f"adopted {adoption_s:.2f}s after the kill")
    assert adoption_s < ADOPT_AFTER_S + 5, output
    assert check_against_db(pg_url, ledger) == [], output  # nothing left, no try twice, audit chains whole
    starts = Counter(e.instance for e in read(ledger) if e.event == "start")
    assert len(starts) == total * TASKS and set(starts.values()) == {1}, starts  # every body ran once
    eng = make_engine(pg_url)
    try:
        with session_scope(eng, readonly=True) as s:
            created = Counter(
                s.execute(select(AuditLog.dag_id, AuditLog.run_id).where(AuditLog.event == "run.created")).all()
            )
            assert len(created) == total and set(created.values()) == {1}, created
            queued = Counter(s.execute(select(AuditLog.dag_id, AuditLog.run_id, AuditLog.task_id)
                                       .where(AuditLog.event == "task.state", AuditLog.new_state == "queued")).all())  # fmt: skip
            returned = Counter(s.execute(select(AuditLog.dag_id, AuditLog.run_id, AuditLog.task_id)
                                         .where(AuditLog.event == "task.state", AuditLog.new_state == "scheduled",
                                                AuditLog.old_state == "queued")).all())  # fmt: skip
            assert all(queued[k] - returned[k] == 1 for k in queued) and len(queued) == total * TASKS
            print(f"{sum(returned.values())} unstarted tries queued again after the adoption; {event_detail(s)}")
            (event,) = s.scalars(select(AuditLog).where(AuditLog.event == "job.adopted"))
            assert event.detail is not None and event.detail["job_id"] == job_id
            assert s.scalar(select(SchedulerJob.state).where(SchedulerJob.id == job_id)) == JobState.FAILED
    finally:
        eng.dispose()
    assert listed.returncode == 0, listed.stdout + listed.stderr
    states = {row["id"]: row["state"] for row in json.loads(listed.stdout)}
    assert states[job_id] == "failed" and list(states.values()).count("running") == 1
