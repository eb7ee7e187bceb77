"""`dagrunner triggerer` and the scheduler's triggerer child as real processes, real brokers, real databases."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_until
from sqlalchemy import text
from watcher_helpers import REDIS_URL, Names, counts, pending, xadd

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.scheduling.watchers.handler import FAULT_AFTER_COMMIT_ENV

from .procs import env_for, finish, run, start

pytestmark = pytest.mark.slow


@pytest.fixture
def names() -> Iterator[Names]:
    n = Names()
    yield n
    n.cleanup()


def _parsed(root: Path, db_url: str, names: Names) -> Path:
    names.dag_file(root / "dags")
    proc = run(root, db_url, "dags", "list")  # parses the folder into the database
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def _jobs(db_url: str, job_type: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            q = text("SELECT state FROM scheduler_job WHERE job_type = :t ORDER BY id")
            return [state for (state,) in s.execute(q, {"t": job_type})]
    finally:
        engine.dispose()


def test_kill_9_between_commit_and_ack_then_redelivery_creates_nothing_new(
    tmp_path: Path, db_url: str, names: Names
) -> None:
    root = _parsed(tmp_path, db_url, names)
    log = root / "faulty.log"
    with log.open("w") as out:  # procs.start drops DAGRUNNER_* from the environment: add the fault here
        proc = subprocess.Popen([sys.executable, "-m", "dagrunner", "triggerer"], cwd=root, stdout=out,
                                stderr=subprocess.STDOUT, env={**env_for(root, db_url), FAULT_AFTER_COMMIT_ENV: "1"})  # fmt: skip
    xadd(names.stream, {"order_id": 42})
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    assert counts(db_url, names.dag_id)["events"] == 1 and pending(names.stream) == 1  # committed, not acked
    again = start(root, db_url, "triggerer")
    try:
        wait_until(lambda: pending(names.stream) == 0, what="the redelivered message acked", timeout=30)
        assert counts(db_url, names.dag_id) == {"events": 1, "runs": 1, "dead": 0}
    finally:
        again.send_signal(signal.SIGTERM)
        out = finish(again, 30)
    assert "recorded before" in out, out


def test_1000_messages_10_percent_malformed_give_900_runs_and_100_dead_letters(
    tmp_path: Path, db_url: str, names: Names
) -> None:
    import redis

    root = _parsed(tmp_path, db_url, names)
    client = redis.Redis.from_url(REDIS_URL)
    pipe = client.pipeline(transaction=False)
    for i in range(1000):
        body = b'{"order_id": ' + str(i).encode() + b', "trunc' if i % 10 == 0 else json.dumps({"order_id": i}).encode()
        pipe.xadd(names.stream, {"data": body})
    pipe.execute()
    client.close()
    began = time.monotonic()
    proc = start(root, db_url, "triggerer")
    try:
        wait_until(lambda: counts(db_url, names.dag_id) == {"events": 900, "runs": 900, "dead": 100},
                   what="900 events and runs, 100 dead letters", timeout=60, interval=0.5)  # fmt: skip
        wait_until(lambda: pending(names.stream) == 0, what="every message acked")
    finally:
        proc.send_signal(signal.SIGTERM)
        finish(proc, 30)
    assert time.monotonic() - began < 60


def test_the_scheduler_runs_a_triggerer_child_whose_runs_start_at_once(
    tmp_path: Path, db_url: str, names: Names
) -> None:
    root = _parsed(tmp_path, db_url, names)
    proc = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: _jobs(db_url, "triggerer") == ["running"], what="the triggerer child registered")
        wait_until(lambda: pending(names.stream) == 0, what="the watcher's group created", timeout=30)
        xadd(names.stream, {"order_id": 1})

        def succeeded() -> bool:
            engine = make_engine(db_url)
            try:
                with session_scope(engine, readonly=True) as s:
                    q = text("SELECT state FROM dag_run WHERE dag_id = :d")
                    return [st for (st,) in s.execute(q, {"d": names.dag_id})] == ["success"]
            finally:
                engine.dispose()

        wait_until(succeeded, what="the asset-triggered run succeeded", timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out = finish(proc, 60)
    assert proc.returncode == 0, out
    assert _jobs(db_url, "triggerer") == ["success"], out  # the child stopped with the scheduler


def _children(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_triggerer_child_ends_when_its_scheduler_is_killed(tmp_path: Path, db_url: str, names: Names) -> None:
    """kill -9 of the scheduler leaves no triggerer behind: the child sees it was orphaned and stops cleanly."""
    root = _parsed(tmp_path, db_url, names)
    proc = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: _jobs(db_url, "triggerer") == ["running"], what="the triggerer child registered")
        children = [
            pid for pid in _children(proc.pid) if b"dagrunner\x00triggerer" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(children) == 1, children
        proc.kill()
        proc.wait(10)
        wait_until(lambda: not _alive(children[0]), what="the orphaned triggerer to exit", timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        finish(proc, 10)
    assert _jobs(db_url, "triggerer") == ["success"]  # it stopped on its own, and said so
