"""Shared by the watcher tests: a DAG file whose asset has watchers, counts read from the database, brokers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import Engine, text

from dagrunner.persistence.engine import make_engine, session_scope

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

WATCHED_DAG = """
import pendulum
from dagrunner import DAG, Asset, AssetWatcher, task
from dagrunner.triggers import RabbitMQTrigger, RedisStreamTrigger


def has_order_id(payload):
    if "order_id" not in payload:
        raise ValueError("no order_id")


orders = Asset("orders_{suffix}", watchers=[
    AssetWatcher("redis_{suffix}", trigger=RedisStreamTrigger({redis_url!r}, stream={stream!r},
                 validate=has_order_id, message_id=lambda p: str(p["order_id"]))),
    AssetWatcher("rabbit_{suffix}", trigger=RabbitMQTrigger({amqp_url!r}, queue={queue!r}, validate=has_order_id,
                 dead_letter_exchange={dlx!r})),
])
# An asset with a watcher that no DAG uses: its messages are dead-lettered as "unknown asset".
ghost = Asset("ghost_{suffix}", watchers=[AssetWatcher("ghost_{suffix}",
              trigger=RedisStreamTrigger({redis_url!r}, stream={ghost_stream!r}))])

with DAG("on_orders_{suffix}", schedule=[orders], start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def handle(triggering_asset_events=None):
        return "ok"

    handle()
"""


class Names:
    """Unique broker names for one test (streams and queues are deleted afterwards)."""

    def __init__(self) -> None:
        self.suffix = uuid.uuid4().hex[:10]
        self.stream = f"dr-test-{self.suffix}"
        self.ghost_stream = f"dr-test-ghost-{self.suffix}"
        self.queue = f"dr-test-{self.suffix}"
        self.dlx = f"dr-test-dlx-{self.suffix}"
        self.dag_id = f"on_orders_{self.suffix}"
        self.asset = f"orders_{self.suffix}"

    def dag_file(self, dags: Path) -> Path:
        dags.mkdir(parents=True, exist_ok=True)
        path = dags / f"watched_{self.suffix}.py"
        path.write_text(WATCHED_DAG.format(suffix=self.suffix, redis_url=REDIS_URL, amqp_url=AMQP_URL,
                                           stream=self.stream, ghost_stream=self.ghost_stream, queue=self.queue,
                                           dlx=self.dlx))  # fmt: skip
        return path

    def cleanup(self) -> None:
        import pika
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(self.stream, self.ghost_stream)
        client.close()
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = conn.channel()
        channel.queue_delete(self.queue)
        channel.exchange_delete(self.dlx)
        conn.close()


def xadd(stream: str, body: bytes | str | dict) -> str:
    import redis

    data = json.dumps(body).encode() if isinstance(body, dict) else body
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return client.xadd(stream, {"data": data}).decode()
    finally:
        client.close()


def pending(stream: str, group: str = "dagrunner") -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.xpending(stream, group)["pending"])
    except redis.ResponseError:
        return -1
    finally:
        client.close()


def publish(queue: str, bodies: list[tuple[bytes, str | None]]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = conn.channel()
    channel.queue_declare(queue, durable=True)
    for body, message_id in bodies:
        channel.basic_publish("", queue, body, pika.BasicProperties(message_id=message_id, delivery_mode=2))
    conn.close()


def counts(db: Engine | str, dag_id: str | None = None) -> dict[str, int]:
    """asset events, runs (of `dag_id`), dead letters."""
    engine = make_engine(db) if isinstance(db, str) else db
    try:
        with session_scope(engine, readonly=True) as s:
            events = s.execute(text("SELECT count(*) FROM asset_event")).scalar_one()
            runs = s.execute(text("SELECT count(*) FROM dag_run WHERE dag_id = :d"), {"d": dag_id}).scalar_one()
            dead = s.execute(text("SELECT count(*) FROM dead_letter")).scalar_one()
        return {"events": int(events), "runs": int(runs), "dead": int(dead)}
    finally:
        if isinstance(db, str):
            engine.dispose()


def dead_reasons(db: Engine) -> list[str]:
    with session_scope(db, readonly=True) as s:
        return [r for (r,) in s.execute(text("SELECT reason FROM dead_letter ORDER BY id"))]
