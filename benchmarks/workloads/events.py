"""W7 event latency: a message published on a broker -> the first task of the run it triggers started.

A DAG is scheduled on an asset whose watcher reads a Redis stream (issue 12's pattern 1). The scheduler
(which runs the watchers in its triggerer child) is started and waited for until the watcher has joined
the stream's consumer group and everything went idle; then messages are published one at a time, each
after the previous one's run started, and the latency is the run's first try's `start_date` (the worker's
clock) minus the wall-clock time just before XADD (the same machine's clock).
"""

from __future__ import annotations

import json
import os
import time
import uuid

from sqlalchemy import func, select

from benchmarks.errors import CorrectnessError
from benchmarks.probe import DbProbe, wait_until
from benchmarks.project import project_with_db
from benchmarks.spec import Metric, Sizes, Target
from benchmarks.stats import median, percentile
from benchmarks.workloads.base import Details, Figures, Workload, start_idle_scheduler, wait_idle
from dagrunner.persistence.models import DagRun, TaskTry

REDIS_URL = os.environ.get("DAGRUNNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def event_dag(dag_id: str, stream: str) -> str:
    """A DAG of one no-op task, scheduled on an asset whose watcher reads `stream`."""
    return f"""\
import pendulum
from dagrunner import DAG, Asset, AssetWatcher
from dagrunner.operators import PythonOperator
from dagrunner.triggers import RedisStreamTrigger

ASSET = Asset("bench.events", watchers=[AssetWatcher("bench", RedisStreamTrigger(url={REDIS_URL!r}, stream={stream!r}))])


def noop():
    return None


with DAG({dag_id!r}, schedule=[ASSET], start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         max_active_runs=1000):
    PythonOperator(task_id="first", python_callable=noop)
"""


class EventLatency(Workload):
    name = "W7"
    title = "event latency: Redis stream message -> asset-triggered run's first task started"
    metrics = (
        Metric("latency_median_ms", "XADD -> first try start, median", "ms", Target(50.0, "<=")),
        Metric("latency_p90_ms", "XADD -> first try start, p90", "ms"),
        Metric("latency_max_ms", "XADD -> first try start, max", "ms"),
    )

    def unavailable(self) -> str | None:
        try:
            import redis  # noqa: F401

            from dagrunner import Asset  # noqa: F401
            from dagrunner.triggers import RedisStreamTrigger  # noqa: F401
        except ImportError as exc:
            return f"needs assets, triggers and the redis client ({exc})"
        return None

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        import redis

        messages = sizes.w7_messages
        stream = f"dagrunner-bench-{uuid.uuid4().hex[:12]}"
        client = redis.Redis.from_url(REDIS_URL)
        try:
            with project_with_db(db) as project:
                project.write_dag("events.py", event_dag("events", stream))
                project.cli("db", "init")
                probe = DbProbe(project.db_url)
                try:
                    sched = start_idle_scheduler(project, probe, dags=1)
                    try:
                        wait_until(lambda: _group_ready(client, stream), timeout=60, interval=0.05,
                                   what="the watcher to join the stream's consumer group",
                                   check=sched.check_alive)  # fmt: skip
                        wait_idle(sched)
                        latencies = [_one(client, stream, probe, i, sizes, sched.check_alive) for i in range(messages)]
                        wait_until(lambda: probe.count(DagRun, DagRun.state == "success") >= messages,
                                   timeout=sizes.run_timeout_s, what=f"the {messages} runs to succeed",
                                   check=sched.check_alive)  # fmt: skip
                    finally:
                        sched.stop()
                    probe.assert_all_succeeded(runs=messages, task_instances=messages)
                finally:
                    probe.close()
        finally:
            client.delete(stream)
            client.close()
        figures = {
            "latency_median_ms": median(latencies),
            "latency_p90_ms": percentile(latencies, 90),
            "latency_max_ms": max(latencies),
        }
        return figures, {"messages": messages, "latencies_ms": [round(x, 3) for x in latencies]}


def _group_ready(client: object, stream: str) -> bool:
    try:
        return bool(client.xinfo_groups(stream))  # type: ignore[attr-defined]
    except Exception:  # the stream does not exist until the watcher creates it with its group
        return False


def _one(client: object, stream: str, probe: DbProbe, i: int, sizes: Sizes, check: object) -> float:
    """Publish message `i` and wait for its run's first try to start; the latency in ms."""
    before = probe.count(TaskTry)
    published = time.time()
    client.xadd(stream, {"data": json.dumps({"i": i})})  # type: ignore[attr-defined]
    started = wait_until(
        lambda: _first_start(probe, before), timeout=sizes.run_timeout_s, interval=0.002,
        what=f"message {i}'s run to start", check=check,  # type: ignore[arg-type]
    )  # fmt: skip
    latency = (started.timestamp() - published) * 1000
    if latency < 0:
        raise CorrectnessError(f"message {i}: its run started {-latency:.1f} ms before it was published")
    return latency


def _first_start(probe: DbProbe, before: int):  # type: ignore[no-untyped-def]
    """The newest try's start, once there is one more try than `before` (one run at a time, one task each)."""
    if probe.count(TaskTry) <= before:
        return None
    return probe.scalar(select(func.max(TaskTry.start_date)))
