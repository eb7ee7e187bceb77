"""A surviving `dagrunner worker` recovers from a cut of its broker connections (Redis and RabbitMQ).

The worker reaches the broker through a TCP proxy (`chaos.broker_proxy`) that the test cuts for 3 s (every
connection dropped, new ones refused) and restores on the same port; the executor (the scheduler's side)
talks to the broker directly, so only the worker sees the outage. A try before the cut runs; a try sent
after the cut must run too, within a bounded time: the worker's consumer has to notice the dead
connection and reconnect, not sit on it (RabbitMQ's failed late ack, issue #13). A try is running
when the cut comes and ends during it, so its late ack fails on the dead connection, as in the scale-out
test.
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import pytest
from chaos.broker_proxy import BrokerProxy
from polling import wait_until

from dagrunner.execution.celery.executor import CeleryExecutor

from .celery_helpers import BROKERS, celery_settings, require_broker, running_worker, unique_queue
from .conftest import Project
from .helpers import ACTOR, create_run, queue_try, run_one, ti_row, wait_event

pytestmark = pytest.mark.slow

#: How long the broker is away, and how long after it is back a try sent then may take to run.
CUT_S = 3.0
RECOVER_S = 30.0
CUT_DAG = """
import time
import pendulum
from dagrunner import DAG, task

with DAG("cut", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    @task
    def quick():
        return None

    @task
    def slow():
        time.sleep(1.0)

    quick.override(task_id="before")()
    slow()
    quick.override(task_id="after")()
"""
TASK_IDS = ["before", "slow", "after"]


def _through(proxy: BrokerProxy, url: str) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{proxy.port}" if auth else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_takes_work_again_after_its_broker_connections_are_cut(project: Project, broker: str) -> None:
    if not project.settings.db_url.startswith("sqlite"):
        pytest.skip("does not depend on the database: run on SQLite only")
    url = BROKERS[broker]
    require_broker(url)
    upstream = urlsplit(url)
    proxy = BrokerProxy((upstream.hostname or "127.0.0.1", upstream.port or 6379))
    settings = celery_settings(project.settings, url, unique_queue(f"cut-{broker}"))
    project.settings = settings
    executor = CeleryExecutor(settings, actor=ACTOR, parallelism=2, poll_s=0.5)
    executor.start()
    try:
        dag_file = project.dag_file("cut_dag.py", CUT_DAG)
        run = create_run(project.engine, "cut", TASK_IDS)
        with running_worker(replace(settings, celery_broker_url=_through(proxy, url)), concurrency=2, warm_stop=False):
            before = run_one(executor, queue_try(project.engine, run, "before", dag_file))
            assert before.state == "success", before
            slow = queue_try(project.engine, run, "slow", dag_file)
            executor.submit(slow)
            wait_until(lambda: ti_row(project.engine, slow.key).state.value == "running", interval=0.05,
                       what="the slow try running")  # fmt: skip
            proxy.cut()
            time.sleep(CUT_S)  # the outage itself: the broker is simply away this long
            proxy.restore()
            restored = time.monotonic()
            assert wait_event(executor, slow.key).state == "success"  # found in the DB if its event was lost
            after = run_one(executor, queue_try(project.engine, run, "after", dag_file), timeout=RECOVER_S)
            assert after.state == "success", after
            print(f"{broker}: the try after the cut ran {time.monotonic() - restored:.1f}s after the restore")
    finally:
        executor.shutdown(0)
        proxy.close()
