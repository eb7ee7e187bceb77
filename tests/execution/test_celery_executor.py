"""The Celery executor beyond the shared contract: isolation, duplicate delivery, a changed DAG file,
kill, queued_timeout, an unreachable broker, RabbitMQ, and the messages' checks.

Real brokers (Redis, RabbitMQ on this machine), real `dagrunner worker` subprocesses, queues of each
test's own. The DB-dependent tests take `db_url` (SQLite and PostgreSQL).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from polling import wait_until
from sqlalchemy import insert, update

from dagrunner.clock import FakeClock
from dagrunner.execution.base import TaskKey, WorkItem
from dagrunner.execution.celery.executor import CeleryExecutor
from dagrunner.execution.celery.messages import RUN_TRY_TASK, MessageError, decode_try, encode_try
from dagrunner.persistence.models import DagFile

from .celery_helpers import AMQP_URL, REDIS_URL, celery_settings, require_broker, running_worker, unique_queue
from .conftest import Project
from .dag_sources import CONTRACT_DAG, CONTRACT_TASK_IDS, PROCESS_DAG, PROCESS_TASK_IDS
from .helpers import ACTOR, LOGICAL, audit_of, create_run, queue_try, run_one, ti_row, tries_of, wait_event

pytestmark = pytest.mark.slow


@pytest.fixture
def celery_project(project: Project) -> Project:
    require_broker(REDIS_URL)
    project.settings = celery_settings(project.settings, REDIS_URL, unique_queue())
    return project


@pytest.fixture
def executor(celery_project: Project) -> Iterator[CeleryExecutor]:
    executor = CeleryExecutor(celery_project.settings, actor=ACTOR, parallelism=4, poll_s=0.5)
    executor.start()
    yield executor
    executor.shutdown(2.0)


def _item(project: Project, dag_file: Path, task_id: str, dag_id: str, task_ids: list[str]) -> WorkItem:
    run = create_run(project.engine, dag_id, task_ids)
    return queue_try(project.engine, run, task_id, dag_file)


@pytest.mark.only_db("sqlite")
def test_a_crash_fails_only_its_try_and_the_worker_goes_on(celery_project: Project, executor: CeleryExecutor) -> None:
    dag_file = celery_project.dag_file("process_dag.py", PROCESS_DAG)
    run = create_run(celery_project.engine, "process", PROCESS_TASK_IDS)
    with running_worker(celery_project.settings, concurrency=2, warm_stop=False):
        for task_id, words in (("exit_hard", "exited with code 7"), ("segfault", "SIGSEGV")):
            event = run_one(executor, queue_try(celery_project.engine, run, task_id, dag_file))
            assert event.kind == "finished" and event.state == "failed", event
            assert words in (tries_of(celery_project.engine, event.key)[0].error or "")
        event = run_one(executor, queue_try(celery_project.engine, run, "touch", dag_file))
        assert event.state == "success"


def test_a_message_delivered_twice_starts_one_try(celery_project: Project, executor: CeleryExecutor) -> None:
    """At-least-once delivery: the same message arrives twice, at once; the start fence lets one run."""
    dag_file = celery_project.dag_file("contract_dag.py", CONTRACT_DAG)
    item = _item(celery_project, dag_file, "ok", "contract", CONTRACT_TASK_IDS)
    body = encode_try(item, reply_to=executor.reply_to, file_hash=None)
    queue = celery_project.settings.celery_default_queue
    with running_worker(celery_project.settings, concurrency=2, warm_stop=False):
        executor.submit(item)
        executor.app.send_task(RUN_TRY_TASK, args=[body], queue=queue, routing_key=queue)
        event = wait_event(executor, item.key)
        assert event.state == "success"
        wait_until(lambda: not _broker_backlog(celery_project, queue), what="both deliveries taken")
    assert [t.try_number for t in tries_of(celery_project.engine, item.key)] == [1]
    starts = [a for a in audit_of(celery_project.engine, item.key) if a.new_state == "running"]
    assert len(starts) == 1


def _broker_backlog(project: Project, queue: str) -> int:
    import redis

    return int(redis.Redis.from_url(REDIS_URL).llen(queue))


def test_a_dag_file_that_differs_from_the_parsed_one_is_refused(
    celery_project: Project, executor: CeleryExecutor
) -> None:
    dag_file = celery_project.dag_file("contract_dag.py", CONTRACT_DAG)
    item = _item(celery_project, dag_file, "ok", "contract", CONTRACT_TASK_IDS)
    with celery_project.engine.begin() as conn:  # the scheduler parsed another version of the file
        conn.execute(insert(DagFile).values(path=str(dag_file), file_hash="0" * 40, mtime=0.0, last_parsed=LOGICAL))
    with running_worker(celery_project.settings, concurrency=1, warm_stop=False):
        event = run_one(executor, item)
    assert event.kind == "finished" and event.state == "failed"
    assert ti_row(celery_project.engine, item.key).state.value == "failed"
    (row,) = tries_of(celery_project.engine, item.key)
    assert "differs from the one the scheduler parsed" in (row.error or "")
    assert not (celery_project.marks / "success-ok-1").exists()  # nothing of the file ran
    assert "differs from the one the scheduler parsed" in Path(row.log_path or "").read_text()


@pytest.mark.only_db("sqlite")
def test_the_parsed_file_hash_is_read_once_per_version_of_the_file(
    celery_project: Project, executor: CeleryExecutor
) -> None:
    """`_file_hash` keeps the DB's hash while the file keeps the stamp the parse saw; a file changed since
    its parse (the DB's mtime is not the file's) is read from the DB on every submit, so a re-parse that
    stores a new hash is sent at once."""
    dag_file = celery_project.dag_file("contract_dag.py", CONTRACT_DAG)
    path = str(dag_file)
    mtime = dag_file.stat().st_mtime
    with celery_project.engine.begin() as conn:
        conn.execute(insert(DagFile).values(path=path, file_hash="a" * 40, mtime=mtime, last_parsed=LOGICAL))
    assert executor._file_hash(path) == "a" * 40
    with celery_project.engine.begin() as conn:  # not seen: the file is as the cached parse saw it
        conn.execute(update(DagFile).where(DagFile.path == path).values(file_hash="b" * 40))
    assert executor._file_hash(path) == "a" * 40
    dag_file.write_text(CONTRACT_DAG + "\n# changed\n")  # changed on disk, not parsed yet: the DB's old hash
    os.utime(dag_file, ns=(dag_file.stat().st_atime_ns, dag_file.stat().st_mtime_ns + 1_000_000))
    assert executor._file_hash(path) == "b" * 40
    with celery_project.engine.begin() as conn:  # parsed: the new hash, sent at once
        conn.execute(update(DagFile).where(DagFile.path == path).values(file_hash="c" * 40,
                                                                        mtime=dag_file.stat().st_mtime))  # fmt: skip
    assert executor._file_hash(path) == "c" * 40
    assert executor._file_hash(str(dag_file.with_name("missing.py"))) is None


@pytest.mark.only_db("sqlite")
def test_kill_stops_a_running_try(celery_project: Project, executor: CeleryExecutor) -> None:
    dag_file = celery_project.dag_file("process_dag.py", PROCESS_DAG)
    item = _item(celery_project, dag_file, "block", "process", PROCESS_TASK_IDS)
    with running_worker(celery_project.settings, concurrency=1, warm_stop=False):
        executor.submit(item)
        wait_until((celery_project.marks / "blocker.pid").exists, what="the try to start", timeout=30)
        executor.kill(item.key, "killed by the test")
        event = wait_event(executor, item.key, timeout=30)
    assert event.state == "failed"
    assert "killed by the test" in (tries_of(celery_project.engine, item.key)[0].error or "")


def test_a_try_no_worker_takes_is_queued_again_after_queued_timeout(project: Project) -> None:
    """No worker serves the queue: past queued_timeout_sec (fake clock) the try goes back to scheduled."""
    require_broker(REDIS_URL)
    settings = celery_settings(project.settings, REDIS_URL, unique_queue("orphan"), queued_timeout_sec=60.0)
    clock = FakeClock(LOGICAL)
    executor = CeleryExecutor(settings, actor=ACTOR, parallelism=2, clock=clock, poll_s=3600)
    executor.start()
    try:
        dag_file = project.dag_file("contract_dag.py", CONTRACT_DAG)
        item = _item(project, dag_file, "ok", "contract", CONTRACT_TASK_IDS)
        executor.submit(item)
        clock.advance(timedelta(seconds=59))
        assert executor.events(0) == [] and executor.running() == {(item.key, 1)}
        clock.advance(timedelta(seconds=2))
        (event,) = executor.events(0)
        assert event.kind == "finished" and event.key == item.key and executor.running() == set()
        assert ti_row(project.engine, item.key).state.value == "scheduled"
        (audit,) = [a for a in audit_of(project.engine, item.key) if a.new_state == "scheduled"]
        assert "queued_timeout_sec=60" in (audit.reason or "") and settings.celery_default_queue in audit.reason
    finally:
        executor.shutdown(0)


@pytest.mark.only_db("sqlite")
def test_an_unreachable_broker_keeps_the_try_and_sends_it_later(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    require_broker(REDIS_URL)
    queue = unique_queue("down")
    down = celery_settings(project.settings, "redis://127.0.0.1:1/0", queue)
    executor = CeleryExecutor(down, actor=ACTOR, parallelism=2, poll_s=0.5)
    executor.start()
    try:
        dag_file = project.dag_file("contract_dag.py", CONTRACT_DAG)
        run = create_run(project.engine, "contract", CONTRACT_TASK_IDS)
        item = queue_try(project.engine, run, "ok", dag_file)
        with caplog.at_level(logging.ERROR):
            executor.submit(item)  # no exception: the scheduler loop goes on
            executor.submit(queue_try(project.engine, run, "failing", dag_file))
        assert len([r for r in caplog.records if "broker unreachable" in r.message]) == 1
        assert ti_row(project.engine, item.key).state.value == "queued" and executor.slots_free == 0
        # the broker is back (here: the executor is pointed at the real one) and a worker serves the queue
        up = celery_settings(project.settings, REDIS_URL, queue)
        executor.app = CeleryExecutor(up, actor=ACTOR).app
        with running_worker(up, concurrency=2, warm_stop=False):
            assert wait_event(executor, item.key).state == "success"
    finally:
        executor.shutdown(0)


@pytest.mark.only_db("sqlite")
def test_rabbitmq_broker_runs_a_try(project: Project) -> None:
    require_broker(AMQP_URL)
    settings = celery_settings(project.settings, AMQP_URL, unique_queue("amqp"))
    project.settings = settings
    executor = CeleryExecutor(settings, actor=ACTOR, parallelism=2, poll_s=0.5)
    executor.start()
    try:
        dag_file = project.dag_file("contract_dag.py", CONTRACT_DAG)
        item = _item(project, dag_file, "ok", "contract", CONTRACT_TASK_IDS)
        with running_worker(settings, concurrency=1, warm_stop=False):
            event = run_one(executor, item)
        assert event.state == "success" and ti_row(project.engine, item.key).state.value == "success"
    finally:
        executor.shutdown(0)


@pytest.mark.only_db("sqlite")
def test_routing_by_queue(celery_project: Project, executor: CeleryExecutor) -> None:
    """A task's `queue=` picks the Celery queue; a worker on another queue never takes it."""
    dag_file = celery_project.dag_file("contract_dag.py", CONTRACT_DAG)
    item = replace(_item(celery_project, dag_file, "ok", "contract", CONTRACT_TASK_IDS), queue=unique_queue("gpu"))
    with running_worker(celery_project.settings, concurrency=1, warm_stop=False):
        executor.submit(item)
        assert wait_event_or_none(executor, item.key, 2.0) is None
        with running_worker(celery_project.settings, queues=item.queue, concurrency=1, warm_stop=False):
            assert wait_event(executor, item.key).state == "success"


def wait_event_or_none(executor: CeleryExecutor, key: TaskKey, timeout: float) -> object:
    try:
        return wait_event(executor, key, timeout=timeout)
    except AssertionError:
        return None


# --- the messages' checks (no broker) -------------------------------------------------------------------


def test_messages_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    from dagrunner.execution.base import RunFacts

    item = WorkItem(TaskKey("d", "r", "t"), 1, "d.py", RunFacts("manual", LOGICAL, LOGICAL, LOGICAL, LOGICAL))
    good = encode_try(item, reply_to="q", file_hash="ab")
    assert decode_try(good).item == item
    for broken in (
        [],
        {**good, "v": 2},
        {**good, "try_number": "1"},
        {**good, "try_number": 0},
        {**good, "key": {**good["key"], "map_index": True}},
        {**good, "run": {**good["run"], "logical_date": "2026-01-01T00:00:00"}},
        {**good, "fileloc": ""},
        {**good, "inlets": [1]},
        {**good, "queued_by_job_id": "7"},
    ):
        with pytest.raises(MessageError):
            decode_try(broken)


@pytest.mark.only_db("sqlite")
def test_a_try_ends_once_when_its_end_is_seen_twice(celery_project: Project, executor: CeleryExecutor) -> None:
    """The DB poll may see a try's end just before its worker's event comes: the event that comes second
    is dropped, not taken for the end of the try sent next (no worker serves the queue here)."""
    from dagrunner.execution.base import TryEvent
    from dagrunner.execution.celery.messages import encode_event

    dag_file = celery_project.dag_file("contract_dag.py", CONTRACT_DAG)
    item = _item(celery_project, dag_file, "ok", "contract", CONTRACT_TASK_IDS)
    executor.submit(item)
    body = encode_event(TryEvent(item.key, item.try_number, "finished", "success"))

    def publish() -> None:
        with executor.app.producer_or_acquire() as producer:
            producer.publish(body, exchange="", routing_key=executor.reply_to, serializer="json")

    publish()
    assert wait_event(executor, item.key, timeout=10).state == "success" and executor.running() == set()
    publish()  # the same end again, after the first was taken
    assert executor.events(1.0) == []
