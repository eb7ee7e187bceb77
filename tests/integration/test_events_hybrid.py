"""The e-commerce hybrid of docs/events.md end to end, through the real brokers, on SQLite and PostgreSQL.

Order messages on a RabbitMQ queue trigger `order_processing` (one run per distinct order, a broken message
dead-lettered); its successful run is published by the outbox's Redis stream sink; the watcher on that
stream triggers `order_shipping` and `order_analytics`. Each test uses its own queue and stream, so
parallel runs and leftovers of earlier ones cannot interfere.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from polling import wait_until

from .procs import db_states, finish, project, run, scheduler_started, start

pytestmark = pytest.mark.slow

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _publish_orders(queue: str, bodies: list[str]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        for body in bodies:
            channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def _cleanup(queue: str, stream: str) -> None:
    import pika
    import redis

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(stream)
    client.close()


def _cli(root: Path, db_url: str, env: dict[str, str], *args: str) -> str:
    proc = run(root, db_url, *args, env=env)
    assert proc.returncode == 0, f"dagrunner {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _runs(db_url: str, dag_id: str) -> dict[str, str]:
    return {key: state for key, state in db_states(db_url)[0].items() if key.startswith(f"{dag_id}/")}


def _all_finished(db_url: str, dag_id: str, count: int) -> bool:
    runs = _runs(db_url, dag_id)
    return len(runs) >= count and all(state in {"success", "failed"} for state in runs.values())


def test_an_order_message_runs_the_saga_and_its_completion_runs_the_choreography(tmp_path: Path, db_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    queue, stream = f"orders.placed.{tag}", f"orders.completed.{tag}"
    root = project(tmp_path)
    (root / "dagrunner.toml").write_text(
        f"""
[events.sinks.orders_completed]
type = "redis_stream"
url = "{REDIS_URL}"
stream = "{stream}"
dags = ["order_processing"]
types = ["dagrunner.dag_run.succeeded"]
"""
    )
    env = {"DAGRUNNER_ORDERS_QUEUE": queue, "DAGRUNNER_ORDERS_STREAM": stream,
           "DAGRUNNER_ORDERS_AMQP_URL": AMQP_URL, "DAGRUNNER_ORDERS_REDIS_URL": REDIS_URL}  # fmt: skip
    _cli(root, db_url, env, "db", "init")
    sched = start(root, db_url, "scheduler", env=env)
    try:
        wait_until(lambda: scheduler_started(db_url), what="the scheduler's job row", timeout=60)
        good = json.dumps({"order_id": f"o-1-{tag}", "amount": 12.5})
        declined = json.dumps({"order_id": f"o-2-{tag}", "amount": 99, "fail_payment": True})
        _publish_orders(queue, [good, declined, good, "{not json"])

        wait_until(lambda: _all_finished(db_url, "order_processing", 2), what="both order runs to end", timeout=120)
        wait_until(lambda: _all_finished(db_url, "order_shipping", 1), what="the shipping run", timeout=60)
        wait_until(lambda: _all_finished(db_url, "order_analytics", 1), what="the analytics run", timeout=60)
    finally:
        sched.send_signal(signal.SIGTERM)
        log = finish(sched, timeout=60)
        _cleanup(queue, stream)

    orders = _runs(db_url, "order_processing")
    assert sorted(orders.values()) == ["failed", "success"], log  # the duplicate of o-1 started nothing
    assert all(key.split("/", 1)[1].startswith("asset_triggered__") for key in orders), orders
    assert list(_runs(db_url, "order_shipping").values()) == ["success"], log
    assert list(_runs(db_url, "order_analytics").values()) == ["success"], log

    events = json.loads(_cli(root, db_url, env, "assets", "events", "orders.placed", "--json"))
    assert sorted(e["extra"]["order_id"] for e in events) == [f"o-1-{tag}", f"o-2-{tag}"]
    dead = json.loads(_cli(root, db_url, env, "events", "dead-letters", "list", "--json"))
    assert len(dead) == 1 and "json" in dead[0]["reason"].lower(), dead

    (succeeded,) = [key for key, state in orders.items() if state == "success"]
    shipping_run = next(iter(_runs(db_url, "order_shipping"))).split("/", 1)[1]
    label = _cli(root, db_url, env, "tasks", "logs", "order_shipping", "print_label", shipping_run)
    assert f"shipping label printed for {succeeded}" in label
    outbox = json.loads(_cli(root, db_url, env, "events", "outbox", "--json"))
    assert outbox, "the sink is listed"


def test_publishing_needs_no_running_scheduler_to_be_safe(tmp_path: Path, db_url: str) -> None:
    """Messages published while no scheduler runs wait in the broker and are consumed when it starts."""
    tag = uuid.uuid4().hex[:10]
    queue, stream = f"orders.placed.{tag}", f"orders.completed.{tag}"
    root = project(tmp_path)
    env = {"DAGRUNNER_ORDERS_QUEUE": queue, "DAGRUNNER_ORDERS_STREAM": stream,
           "DAGRUNNER_ORDERS_AMQP_URL": AMQP_URL, "DAGRUNNER_ORDERS_REDIS_URL": REDIS_URL}  # fmt: skip
    _cli(root, db_url, env, "db", "init")
    _publish_orders(queue, [json.dumps({"order_id": f"early-{tag}", "amount": 1})])
    sched: subprocess.Popen[str] = start(root, db_url, "scheduler", env=env)
    try:
        wait_until(lambda: _all_finished(db_url, "order_processing", 1), what="the early order's run", timeout=120)
    finally:
        sched.send_signal(signal.SIGTERM)
        finish(sched, timeout=60)
        _cleanup(queue, stream)
    assert list(_runs(db_url, "order_processing").values()) == ["success"]
