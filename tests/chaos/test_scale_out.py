"""Issue #13's acceptance test: two schedulers and two Celery workers on PostgreSQL, with Redis and again
with RabbitMQ as the broker; mid-way one scheduler is killed -9, one worker's whole process group is
killed -9, and later the broker goes away for a few seconds.

The work: 10 catchup DAGs x 10 hourly runs = 100 runs of a 10-task DAG (t0 >> t1..t8 >> t9), each task
body appending `start`/`end` lines to an external ledger (`chaos.ledger`). Two `dagrunner scheduler
--executor celery` processes and two `dagrunner worker` processes (queues of this test's own, each
worker in a session of its own so its warm processes die with it) share it. When about a quarter of the
bodies have ended: kill -9 a scheduler with tries in flight, and killpg -9 a worker while a body runs in
it. When about half have ended: the broker is cut for a few seconds (both brokers: see `CUT_BROKERS`).

The broker outage is a TCP proxy (`tests/broker_proxy.py`) between our processes and the machine's broker,
cut (every connection dropped, new ones refused) and restored on the same port, rather than a restart of
the shared Redis/RabbitMQ service (which other tests and engineers use, and whose Redis keeps nothing on
disk). While it is cut the schedulers keep queueing in the DB and hold the sends; messages a worker had
taken but not acknowledged are redelivered (RabbitMQ) or wait out their visibility (Redis) and their tries
are recovered by `queued_timeout_sec` (short here), queued again under a new try number.

Afterwards: every run succeeded and was created once; nothing is left queued or running; every task
body ran to completion exactly once; a body that started and never ended (it was on the killed worker)
ran again exactly once as a later try, and the audit says that try was lost (no heartbeat); no instance
was queued twice at one try number; the ledger shows no try started twice nor two tries of one instance
at once; each instance's audit chain is continuous. Timing comes from settings (short heartbeats,
adoption, zombie threshold, queued timeout), not from sleeps. The per-try heartbeat is 5 s (not a
setting), so the zombie threshold is 8 s. The full 100 runs x 10 tasks fit: about 50 s per broker on this
2-core machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from broker_proxy import BrokerProxy
from execution.celery_helpers import BROKERS, require_broker
from integration.procs import env_for, project
from polling import wait_until
from sqlalchemy import func, select

from chaos.ledger import ENV, LEDGER_SNIPPET, check_against_db, read
from chaos.schedulers import busy_scheduler
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import AuditLog, DagRun
from dagrunner.persistence.schema import init_db
from dagrunner.states import DagRunState

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAGS = 10
RUNS_PER_DAG = 10
TASKS = 10
RUNS = DAGS * RUNS_PER_DAG
BODY_S = 0.05
#: The brokers whose connections are cut mid-way. RabbitMQ needs Celery's prefetch-count reduction off
#: (`celery.app`), or the surviving worker hangs on its reconnected connection and takes no more work.
CUT_BROKERS = ("redis", "rabbitmq")
SETTINGS = {
    "DAGRUNNER_SCHEDULER_HEARTBEAT_SEC": "0.5",
    "DAGRUNNER_SCHEDULER_ADOPT_AFTER_SEC": "2",
    "DAGRUNNER_ZOMBIE_THRESHOLD_SEC": "8",
    "DAGRUNNER_QUEUED_TIMEOUT_SEC": "6",
    "DAGRUNNER_TRIGGERER_IN_SCHEDULER": "false",
    "DAGRUNNER_WORKER_LOG_SERVER_PORT": "0",
}

DAG_FILE = (
    LEDGER_SNIPPET
    + f"""
import time
import pendulum
from dagrunner import DAG, task

for number in range({DAGS}):
    with DAG(f"wide_{{number}}", schedule="@hourly", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             end_date=pendulum.datetime(2026, 1, 1, {RUNS_PER_DAG - 1}, tz="UTC"), catchup=True,
             max_active_runs={RUNS_PER_DAG}, default_args={{"retries": 2, "retry_delay": 0}}) as dag:
        @task
        def body(ti=None, run_id=None):
            note("start", ti, run_id)
            time.sleep({BODY_S})
            note("end", ti, run_id)

        first = body.override(task_id="t0")()
        last = body.override(task_id="t{TASKS - 1}")()
        for i in range(1, {TASKS - 1}):
            first >> body.override(task_id=f"t{{i}}")() >> last
    globals()[f"dag_{{number}}"] = dag
"""
)


def _through(proxy: BrokerProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{proxy.port}" if auth else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _start(root: Path, env: dict[str, str], name: str, *args: str) -> subprocess.Popen[str]:
    log = root / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagrunner", *args], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen[str], grace_s: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _logs(procs: list[subprocess.Popen[str]]) -> str:
    return "\n".join(f"--- {p.log_path.name}\n{p.log_path.read_text()[-3000:]}" for p in procs)  # type: ignore[attr-defined]


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[3])


def _in_flight_in(ledger: Path, session_id: int) -> list[tuple[tuple[str, str, str, int], int]]:
    """The tries whose body started and has not ended, in a process of session `session_id`."""
    ended = {(e.instance, e.try_number) for e in read(ledger) if e.event == "end"}
    return [
        (e.instance, e.try_number)
        for e in read(ledger)
        if e.event == "start" and (e.instance, e.try_number) not in ended and _session_of(e.pid) == session_id
    ]


def _succeeded(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            return int(s.scalar(select(func.count()).where(DagRun.state == DagRunState.SUCCESS)) or 0)
    finally:
        engine.dispose()


def _history(db_url: str, ledger: Path, instances: list[tuple[str, str, str, int]]) -> str:
    """The ledger lines and the audit rows of `instances`, for a failure message."""
    lines = []
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            for dag_id, run_id, task_id, map_index in instances:
                lines.append(f"== {dag_id} {run_id} {task_id} {map_index}")
                lines += [f"  ledger {e}" for e in read(ledger) if e.instance == (dag_id, run_id, task_id, map_index)]
                rows = s.scalars(
                    select(AuditLog).where(AuditLog.dag_id == dag_id, AuditLog.run_id == run_id,
                                           AuditLog.task_id == task_id).order_by(AuditLog.id)
                )  # fmt: skip
                lines += [f"  audit {r.ts} {r.actor} {r.event} try={r.try_number} {r.old_state}->{r.new_state} "
                          f"{r.reason} {r.detail}" for r in rows]  # fmt: skip
    finally:
        engine.dispose()
    return "\n".join(lines)


def _ends(ledger: Path) -> int:
    return sum(1 for e in read(ledger) if e.event == "end")


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_two_schedulers_two_workers_survive_kills_and_a_broker_outage(tmp_path: Path, pg_url: str, broker: str) -> None:
    require_broker(BROKERS[broker])
    upstream = urlsplit(BROKERS[broker])
    proxy = BrokerProxy((upstream.hostname or "127.0.0.1", upstream.port or 6379))
    root = project(tmp_path, examples=False)
    (root / "dags" / "wide.py").write_text(DAG_FILE)
    ledger = tmp_path / "ledger.txt"
    engine = make_engine(pg_url)
    init_db(engine)
    engine.dispose()
    queue = f"dagrunner-scaleout-{uuid.uuid4().hex[:10]}"
    env = {
        **env_for(root, pg_url, SETTINGS),
        ENV: str(ledger),
        "DAGRUNNER_CELERY_BROKER_URL": _through(proxy, BROKERS[broker]),
        "DAGRUNNER_CELERY_DEFAULT_QUEUE": queue,
    }
    workers = [_start(root, env, f"worker-{n}", "worker", "--concurrency", "4", "--queues", queue,
                      "--hostname", f"w{n}-{queue}") for n in range(2)]  # fmt: skip
    schedulers = [
        _start(root, env, f"scheduler-{n}", "scheduler", "--executor", "celery", "--parallelism", "6") for n in range(2)
    ]
    procs = workers + schedulers
    by_pid = {p.pid: p for p in schedulers}
    started = time.monotonic()
    try:
        wait_until(lambda: _ends(ledger) >= RUNS * TASKS // 4, timeout=120, what="a quarter of the bodies")
        assert all(p.poll() is None for p in procs), _logs(procs)
        job_id, pid = wait_until(lambda: busy_scheduler(pg_url), timeout=30, what="a scheduler with tries in flight")
        victim = workers[0]
        in_flight = wait_until(lambda: _in_flight_in(ledger, victim.pid), timeout=30, interval=0.005,
                               what="a body running in the first worker")  # fmt: skip
        os.kill(pid, signal.SIGKILL)
        os.killpg(victim.pid, signal.SIGKILL)
        by_pid[pid].wait(10)
        victim.wait(10)
        kill_s = time.monotonic() - started

        wait_until(lambda: _ends(ledger) >= RUNS * TASKS // 2, timeout=120, what="half of the bodies")
        cut_s = None
        if broker in CUT_BROKERS:
            proxy.cut()
            time.sleep(3.0)  # the outage itself: nothing to wait for, the broker is simply away this long
            proxy.restore()
            cut_s = time.monotonic() - started

        wait_until(lambda: _succeeded(pg_url) == RUNS, timeout=240, interval=0.5, what=f"all {RUNS} runs to succeed")
        total_s = time.monotonic() - started
    finally:
        for proc in reversed(procs):
            _stop(proc, 20)
        proxy.close()
    logs = _logs(procs)
    print(f"{broker}: kills at {kill_s:.1f}s, broker cut at {cut_s and round(cut_s, 1)}s, all {RUNS} runs done at {total_s:.1f}s; "
          f"in flight on the killed worker: {in_flight}")  # fmt: skip

    assert check_against_db(pg_url, ledger) == [], logs  # nothing left, no try twice, no overlap, audit whole
    entries = read(ledger)
    ended: Counter[tuple[tuple[str, str, str, int], int]] = Counter(
        (e.instance, e.try_number) for e in entries if e.event == "end"
    )
    eng = make_engine(pg_url)
    try:
        with session_scope(eng, readonly=True) as s:
            created = Counter(s.execute(select(AuditLog.dag_id, AuditLog.run_id).where(AuditLog.event == "run.created")).all())  # fmt: skip
            assert len(created) == RUNS and set(created.values()) == {1}, created
            queued = Counter(
                s.execute(
                    select(
                        AuditLog.dag_id, AuditLog.run_id, AuditLog.task_id, AuditLog.map_index, AuditLog.try_number
                    ).where(AuditLog.event == "task.state", AuditLog.new_state == "queued")
                ).all()
            )
            assert set(queued.values()) == {1}, [k for k, n in queued.items() if n > 1]  # never queued twice per try
            lost_rows = s.execute(
                select(AuditLog.dag_id, AuditLog.run_id, AuditLog.task_id, AuditLog.map_index, AuditLog.try_number,
                       AuditLog.new_state, AuditLog.reason, AuditLog.detail)
                .where(AuditLog.event == "task.state", AuditLog.old_state == "running",
                       AuditLog.new_state.in_(("up_for_retry", "failed")))
            ).all()  # fmt: skip
            starters = {
                ((r.dag_id, r.run_id, r.task_id, r.map_index), r.try_number): r.actor
                for r in s.execute(
                    select(AuditLog.dag_id, AuditLog.run_id, AuditLog.task_id, AuditLog.map_index, AuditLog.try_number,
                           AuditLog.actor)
                    .where(AuditLog.event == "task.state", AuditLog.new_state == "running")
                )
            }  # fmt: skip
            adopted = s.scalars(select(AuditLog.detail).where(AuditLog.event == "job.adopted")).all()
    finally:
        eng.dispose()
    # The tries in flight on the killed worker, found lost (no heartbeat) and retried: the audit says so.
    lost = {((r.dag_id, r.run_id, r.task_id, r.map_index), r.try_number): r for r in lost_rows}
    assert lost, "no try was lost with the killed worker"
    for (instance, try_number), row in lost.items():
        assert row.new_state == "up_for_retry" and (row.detail or {}).get("lost"), row
        assert any(w in (row.reason or "") for w in ("heartbeat", "gone", "worker process running it died")), row
        assert f"--hostname w0-{queue}" in starters[(instance, try_number)], (row, starters[(instance, try_number)])
    assert {(i, t) for i, t in in_flight} <= set(lost), (in_flight, set(lost))
    # Every body ran to completion exactly once, but a lost try's body may have ended before its worker
    # died without recording it: then it ran twice, once in the lost try and once in the retry.
    for instance in {i for i, _ in ended} | {i for i, _ in lost}:
        kept = [t for (i, t), n in ended.items() if i == instance for _ in range(n) if (i, t) not in lost]
        assert len(kept) == 1, _history(pg_url, ledger, [instance])
        assert all(t < kept[0] for (i, t) in lost if i == instance), _history(pg_url, ledger, [instance])
    assert len({i for i, _ in ended}) == RUNS * TASKS
    assert any(d and d.get("job_id") == job_id for d in adopted), adopted  # the killed scheduler's work adopted
