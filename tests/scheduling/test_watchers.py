"""Asset watchers in-process against the real Redis and RabbitMQ: each message one asset event (and run),
redeliveries nothing new, every malformed kind a dead letter (acked, the next good message still works),
a broker down at start consumed from once it is up. The triggerer process itself: tests/integration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_proxy import BrokerProxy
from polling import wait_until
from sqlalchemy import Engine, text
from watcher_helpers import Names, counts, dead_reasons, pending, publish, xadd

from dagrunner.clock import SystemClock
from dagrunner.loading.sync import load_dagbag
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.watchers.discovery import discover, files_with_watchers
from dagrunner.scheduling.watchers.handler import WatcherSpec
from dagrunner.scheduling.watchers.host import WatcherHost
from dagrunner.settings import Settings
from dagrunner.triggers import RedisStreamTrigger


@pytest.fixture
def names() -> Iterator[Names]:
    n = Names()
    yield n
    n.cleanup()


@pytest.fixture
def project(tmp_path: Path, migrated_engine: Engine, names: Names, db_url: str) -> tuple[Settings, Engine]:
    names.dag_file(tmp_path / "dags")
    settings = Settings.load({"db_url": db_url}, environ={}, home=tmp_path)
    load_dagbag(settings, migrated_engine)
    return settings, migrated_engine


def _host(settings: Settings, engine: Engine, only: set[str] | None = None, **kw: object) -> WatcherHost:
    with session_scope(engine, readonly=True) as s:
        found = discover(files_with_watchers(s), settings)
    specs = tuple(w for w in found.watchers if only is None or w.name in only)
    host = WatcherHost(engine, settings, specs, actor="test", clock=SystemClock(), **kw)  # type: ignore[arg-type]
    host.start()
    return host


def test_discovery_finds_every_watcher_with_its_live_trigger(project: tuple[Settings, Engine], names: Names) -> None:
    settings, engine = project
    with session_scope(engine, readonly=True) as s:
        found = discover(files_with_watchers(s), settings)
    assert {w.name: w.asset for w in found.watchers} == {
        f"redis_{names.suffix}": names.asset, f"rabbit_{names.suffix}": names.asset,
        f"ghost_{names.suffix}": f"ghost_{names.suffix}",
    }  # fmt: skip
    redis_spec = next(w for w in found.watchers if w.name.startswith("redis_"))
    assert callable(redis_spec.trigger.validate) and redis_spec.trigger.message_id({"order_id": 7}) == "7"
    assert found.problems == ()


def test_redis_messages_become_one_event_each_and_malformed_ones_dead_letters(
    project: tuple[Settings, Engine], names: Names
) -> None:
    settings, engine = project
    host = _host(settings, engine, {f"redis_{names.suffix}", f"ghost_{names.suffix}"})
    try:
        xadd(names.stream, {"order_id": 1, "total": 9.5})
        wait_until(lambda: counts(engine, names.dag_id)["runs"] == 1, what="one asset-triggered run")
        xadd(names.stream, {"order_id": 1, "total": 9.5})  # the same id again: nothing new
        bad = [b"\x89PNG\r\n\x1a\n\x00\xff", b'{"order_id": 2, "tot', b"x" * (10 * 1024 * 1024),
               json.dumps({"total": 1}).encode(), b"[1, 2]"]  # fmt: skip
        for body in bad:
            xadd(names.stream, body)
        xadd(names.ghost_stream, {"anything": True})
        xadd(names.stream, {"order_id": 3})
        wait_until(lambda: counts(engine, names.dag_id) == {"events": 2, "runs": 2, "dead": 6},
                   what="2 events, 2 runs, 6 dead letters", timeout=30)  # fmt: skip
        wait_until(lambda: pending(names.stream) == 0 and pending(names.ghost_stream) == 0, what="all acked")
    finally:
        host.stop()
    reasons = dead_reasons(engine)  # two watcher threads: in no fixed order between them
    expected = ["not UTF-8", "not valid JSON", "over the limit", "rejected by validate: ValueError: no order_id",
                "not an object", "unknown asset: no DAG declares an asset named 'ghost_"]  # fmt: skip
    assert sorted(sum(e in r for r in reasons) for e in expected) == [1] * 6, reasons
    with session_scope(engine, readonly=True) as s:
        audited = s.execute(text("SELECT count(*) FROM audit_log WHERE event = 'dead_letter.created'")).scalar_one()
        payloads = {bytes(p) for (p,) in s.execute(text("SELECT payload FROM dead_letter"))}
    assert audited == 6 and set(bad) <= payloads


def test_rabbitmq_messages_acked_after_commit_and_dead_letters_go_to_the_exchange(
    project: tuple[Settings, Engine], names: Names
) -> None:
    import pika
    from watcher_helpers import AMQP_URL

    settings, engine = project
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = conn.channel()
    channel.exchange_declare(names.dlx, "direct", durable=True)
    dlq = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(dlq, names.dlx, routing_key=names.queue)
    host = _host(settings, engine, {f"rabbit_{names.suffix}"})
    try:
        publish(names.queue, [(b'{"order_id": 1}', "m-1"), (b'{"order_id": 1}', "m-1"), (b"not json", "m-2"),
                              (b'{"order_id": 3}', None), (b'{"order_id": 4}', "m-4")])  # fmt: skip
        wait_until(lambda: counts(engine, names.dag_id) == {"events": 2, "runs": 2, "dead": 2},
                   what="2 events (m-1 once, m-4), 2 dead letters (not JSON, no message id)")  # fmt: skip
        wait_until(lambda: channel.queue_declare(names.queue, durable=True).method.message_count == 0, what="acked")
        got = wait_until(lambda: channel.basic_get(dlq, auto_ack=True)[2], what="a dead letter on the exchange")
        assert got == b"not json"
    finally:
        host.stop()
        conn.close()


def test_a_broker_down_at_start_is_audited_once_and_its_messages_consumed_when_it_is_up(
    project: tuple[Settings, Engine], names: Names
) -> None:
    settings, engine = project
    proxy = BrokerProxy(("127.0.0.1", 6379))
    proxy.cut()  # the broker is down when the watcher starts
    trigger = RedisStreamTrigger(f"redis://127.0.0.1:{proxy.port}/0", stream=names.stream)
    spec = WatcherSpec(f"late_{names.suffix}", names.asset, trigger)
    host = WatcherHost(engine, settings, (spec,), actor="test", clock=SystemClock(), max_backoff_s=0.5)
    host.start()
    try:
        xadd(names.stream, {"order_id": 1})  # waits in the stream while the watcher cannot connect
        audit = "SELECT event FROM audit_log WHERE event LIKE 'watcher.%' ORDER BY id"

        def events() -> list[str]:
            with session_scope(engine, readonly=True) as s:
                return [e for (e,) in s.execute(text(audit))]

        wait_until(lambda: events() == ["watcher.disconnected"], what="one disconnected row")
        host.stop_event.wait(1.5)  # several retries fail meanwhile, and are not audited again
        assert events() == ["watcher.disconnected"]
        proxy.restore()
        wait_until(lambda: counts(engine, names.dag_id)["events"] == 1, what="the waiting message consumed")
        assert events() == ["watcher.disconnected", "watcher.connected"]
    finally:
        host.stop()
        proxy.close()
