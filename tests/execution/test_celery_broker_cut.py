"""A surviving `dagrunner worker` recovers from a cut of its broker connections (Redis and RabbitMQ).

The worker reaches the broker through a TCP proxy (`tests/broker_proxy.py`) that the test cuts for 3 s (every
connection dropped, new ones refused) and restores on the same port; the executor (the scheduler's side)
talks to the broker directly, so only the worker sees the outage. A try before the cut runs; a try sent
after the cut must run too, within a bounded time: the worker's consumer has to notice the dead
connection and reconnect, not sit on it (RabbitMQ's failed late ack, issue #13). Tries are running
on every worker thread when the cut comes and end during it, so their late acks fail on the dead
connection, as in the scale-out test; then a dozen tries are sent. The slow tries wait on a gate file the
test opens during the cut, not on a clock: on a loaded machine a fixed sleep could end before the last
slow try had started, and the cut would then find fewer tries in hand than it means to.
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import pytest
from broker_proxy import BrokerProxy
from polling import wait_until

from dagrunner.execution.base import TaskKey, WorkItem
from dagrunner.execution.celery.executor import CeleryExecutor

from .celery_helpers import BROKERS, celery_settings, require_broker, running_worker, unique_queue
from .conftest import Project
from .helpers import ACTOR, create_run, queue_try, run_one, ti_row

pytestmark = pytest.mark.slow

#: How long the broker is away, and how long after it is back a try sent then may take to run.
CUT_S = 3.0
RECOVER_S = 30.0
#: Tries running when the cut comes (as many as the worker's threads), and tries sent after it.
SLOW = 4
AFTER = 12
CUT_DAG = """
import os
import time
import pendulum
from dagrunner import DAG, task

with DAG("cut", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    @task
    def quick():
        return None

    @task
    def slow():
        deadline = time.monotonic() + 120
        while not os.path.exists(os.environ["CUT_GATE"]) and time.monotonic() < deadline:
            time.sleep(0.02)

    quick.override(task_id="before")()
    for n in range(SLOW):
        slow.override(task_id=f"slow_{n}")()
    for n in range(AFTER):
        quick.override(task_id=f"after_{n}")()
""".replace("SLOW", str(SLOW)).replace("AFTER", str(AFTER))
TASK_IDS = ["before", *(f"slow_{n}" for n in range(SLOW)), *(f"after_{n}" for n in range(AFTER))]


def _through(proxy: BrokerProxy, url: str) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{proxy.port}" if auth else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _states(executor: CeleryExecutor, items: list[WorkItem], *, timeout: float) -> set[str | None]:
    """The end states of `items`' tries, waiting (bounded) until every one has ended."""
    keys = {item.key for item in items}
    ended: dict[TaskKey, str | None] = {}
    deadline = time.monotonic() + timeout
    while keys - ended.keys():
        left = deadline - time.monotonic()
        assert left > 0, f"{len(keys - ended.keys())} of {len(keys)} tries did not end within {timeout}s"
        for event in executor.events(min(1.0, left)):
            if event.key in keys and event.kind in ("finished", "lost"):
                ended[event.key] = event.state
    return set(ended.values())


@pytest.mark.only_db("sqlite")
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_takes_work_again_after_its_broker_connections_are_cut(project: Project, broker: str) -> None:
    url = BROKERS[broker]
    require_broker(url)
    upstream = urlsplit(url)
    proxy = BrokerProxy((upstream.hostname or "127.0.0.1", upstream.port or 6379))
    settings = celery_settings(project.settings, url, unique_queue(f"cut-{broker}"))
    project.settings = settings
    executor = CeleryExecutor(settings, actor=ACTOR, parallelism=SLOW + AFTER, poll_s=0.5)
    executor.start()
    try:
        dag_file = project.dag_file("cut_dag.py", CUT_DAG)
        run = create_run(project.engine, "cut", TASK_IDS)
        worker_settings = replace(settings, celery_broker_url=_through(proxy, url))
        gate = project.root / "cut-gate"
        with running_worker(worker_settings, concurrency=SLOW, warm_stop=False, CUT_GATE=str(gate)):
            before = run_one(executor, queue_try(project.engine, run, "before", dag_file))
            assert before.state == "success", before
            slow = [queue_try(project.engine, run, f"slow_{n}", dag_file) for n in range(SLOW)]
            for item in slow:
                executor.submit(item)
            wait_until(lambda: all(ti_row(project.engine, i.key).state.value == "running" for i in slow),
                       interval=0.05, what="the slow tries running")  # fmt: skip
            proxy.cut()
            gate.touch()  # the slow tries end now, during the cut: their late acks meet a dead connection
            time.sleep(CUT_S)  # the outage itself: the broker is simply away this long
            proxy.restore()
            restored = time.monotonic()
            assert _states(executor, slow, timeout=60.0) == {"success"}  # found in the DB if an event was lost
            # After a reconnect with tries in hand Celery lowers the prefetch count and raises it again as
            # later tries are acked: several tries, so that happens (and must not wedge the consumer).
            after = [queue_try(project.engine, run, f"after_{n}", dag_file) for n in range(AFTER)]
            for item in after:
                executor.submit(item)
            assert _states(executor, after, timeout=RECOVER_S) == {"success"}
            print(f"{broker}: the tries after the cut ran within {time.monotonic() - restored:.1f}s after the restore")
    finally:
        executor.shutdown(0)
        proxy.close()
