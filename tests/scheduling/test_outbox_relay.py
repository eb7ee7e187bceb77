"""The relay: delivery to a real webhook, Redis stream and RabbitMQ exchange, retries, leases, listeners."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from outbox_helpers import audit_events, outbox_rows, published_audit, webhook_receiver
from polling import wait_until
from sqlalchemy import Engine

from dagrunner.errors import ConfigError
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.outbox import LISTENERS, sink_lags
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.outbox_relay import Relay
from dagrunner.settings import Settings, SinkSpec, sink_specs

from .harness import START, Harness

THREE = """
import pendulum
from dagrunner import DAG, task

with DAG("three", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def a():
        return 1

    @task
    def b():
        return 2

    @task
    def c():
        return 3

    a() >> b() >> c()
"""


def with_sinks(settings: Settings, *sinks: SinkSpec, listeners: bool = False) -> Settings:
    return dataclasses.replace(settings, event_sinks=tuple(sinks), events_source="dagrunner://test/",
                               events_listeners=listeners)  # fmt: skip


def run_three(h: Harness, runs: int = 1) -> list[str]:
    """`runs` runs of the three-task DAG, to success; their run ids."""
    h.write_dag("three.py", THREE)
    sched = h.start()
    ids = []
    for i in range(runs):
        with session_scope(h.engine) as s:
            ids.append(trigger_run(s, sched.dag_source.dags()["three"], actor="test", now=START,
                                   run_id=f"manual__{i}").run_id)  # fmt: skip
    h.tick()
    return ids


def settled(relay: Relay) -> None:
    """Wait until every row written so far may go out (at once on SQLite; PostgreSQL waits for the
    transactions in flight anywhere on the server to end)."""
    rows = outbox_rows(relay.engine)
    last = rows[-1].id if rows else 0

    def done() -> bool:
        through = relay.settle()
        return through is None or through >= last

    wait_until(done, what="the outbox settled", timeout=10)


def drain(relay: Relay, steps: int = 50) -> None:
    settled(relay)
    for _ in range(steps):
        relay.step()
        if not outbox_rows(relay.engine):
            return


def webhook(url: str, **kw: object) -> SinkSpec:
    return SinkSpec("hook", "webhook", url=url, secret_env="OUTBOX_TEST_SECRET", timeout=2.0, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OUTBOX_TEST_SECRET", "s3cret")
    return "s3cret"


def assert_in_order_once(received: list[dict], engine: Engine, expected: int) -> None:
    ids = [e["id"] for e in received]
    assert len(ids) == len(set(ids)) == expected
    for run_id in {e["data"].get("run_id") for e in received}:
        times = [e["time"] for e in received if e["data"].get("run_id") == run_id]
        assert times == sorted(times)
    types = [e["type"] for e in received if e["subject"].count("/") == 1]
    assert types[0] == "dagrunner.dag_run.queued" and types[-1] == "dagrunner.dag_run.succeeded"


def test_webhook_gets_every_event_signed_in_order(h: Harness) -> None:
    run_three(h, runs=2)
    expected = len(published_audit(h.engine))
    with webhook_receiver() as got:
        relay = Relay(h.engine, with_sinks(h.settings, webhook(got.url)), actor="relay-test", clock=h.clock)
        drain(relay)
        relay.close()
    assert_in_order_once(got.events, h.engine, expected)
    for body, headers in zip(got.bodies, got.headers, strict=True):
        assert headers["Content-Type"].startswith("application/cloudevents+json")
        mac = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Dagrunner-Signature"], f"sha256={mac}")
    assert outbox_rows(h.engine) == []  # every sink has them: pruned
    (lag,) = sink_lags_of(h.engine, ["hook"])
    assert lag.pending == 0 and lag.delivered_count == expected and lag.last_error is None


def sink_lags_of(engine: Engine, names: list[str]):  # noqa: ANN201
    with session_scope(engine, readonly=True) as s:
        return sink_lags(s, names)


def test_a_failing_webhook_backs_off_then_catches_up_in_order(h: Harness) -> None:
    run_three(h)
    expected = len(published_audit(h.engine))
    with webhook_receiver() as got:
        got.mode = "fail"
        spec = webhook(got.url, max_backoff=8.0)
        relay = Relay(h.engine, with_sinks(h.settings, spec), actor="relay-test", clock=h.clock)
        settled(relay)
        relay.step()
        assert got.attempts == 1
        wait = relay.step()  # not due yet: nothing is tried
        assert got.attempts == 1 and 0 < wait <= 1.0
        for _ in range(6):  # backoff 1, 2, 4, 8, 8, 8 (capped), with jitter below
            h.clock.advance(8.0)
            relay.step()
        assert got.attempts == 7
        (lag,) = sink_lags_of(h.engine, ["hook"])
        assert lag.pending == expected and "HTTP 500" in (lag.last_error or "") and lag.attempts == 7
        assert lag.next_retry_at is not None and lag.next_retry_at <= h.clock.now() + timedelta(seconds=8)
        assert len(audit_events(h.engine, "outbox.delivery_failed")) == 1  # once per episode
        got.mode = "ok"
        h.clock.advance(8.0)
        drain(relay)
        relay.close()
    assert_in_order_once(got.events, h.engine, expected)
    assert len(audit_events(h.engine, "outbox.delivery_recovered")) == 1


def test_a_hanging_webhook_times_out_and_other_sinks_go_on(h: Harness, redis_url: str) -> None:
    run_three(h)
    expected = len(published_audit(h.engine))
    stream = f"dagrunner-test-{uuid.uuid4().hex[:8]}"
    with webhook_receiver() as got:
        got.mode, got.hang_s = "hang", 3.0
        hook = dataclasses.replace(webhook(got.url), timeout=0.5)
        redis_sink = SinkSpec("stream", "redis_stream", url=redis_url, stream=stream)
        relay = Relay(h.engine, with_sinks(h.settings, hook, redis_sink), actor="relay-test", clock=h.clock)
        settled(relay)
        for _ in range(3):
            relay.step()
        relay.close()
    assert len(read_stream(redis_url, stream)) == expected
    lags = {lag.name: lag for lag in sink_lags_of(h.engine, ["hook", "stream"])}
    assert lags["stream"].pending == 0 and lags["hook"].pending == expected
    assert "timed out" in (lags["hook"].last_error or "")
    assert len(outbox_rows(h.engine)) == expected  # kept for the webhook


@pytest.fixture
def redis_url() -> str:
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable ({exc}); .ci/run starts it")
    return url


def read_stream(url: str, stream: str) -> list[dict[str, str]]:
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return [fields for _id, fields in client.xrange(stream)]
    finally:
        client.delete(stream)
        client.close()


def test_redis_stream_sink_adds_every_event(h: Harness, redis_url: str) -> None:
    run_three(h)
    expected = len(published_audit(h.engine))
    stream = f"dagrunner-test-{uuid.uuid4().hex[:8]}"
    spec = SinkSpec("stream", "redis_stream", url=redis_url, stream=stream, maxlen=1000, types=("dagrunner.*",))
    relay = Relay(h.engine, with_sinks(h.settings, spec), actor="relay-test", clock=h.clock)
    drain(relay)
    relay.close()
    entries = read_stream(redis_url, stream)
    assert len(entries) == expected == len({e["id"] for e in entries})
    first = entries[0]
    assert first["specversion"] == "1.0" and first["type"] == "dagrunner.dag_run.queued"
    assert json.loads(first["data"])["dag_id"] == "three"


def test_rabbitmq_sink_publishes_with_routing_keys(h: Harness) -> None:
    pika = pytest.importorskip("pika")
    url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    exchange = f"dagrunner-test-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.exchange_declare(exchange, exchange_type="topic", durable=True)
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(queue, exchange, routing_key="three.#")
    try:
        run_three(h)
        expected = len(published_audit(h.engine))
        spec = SinkSpec("bus", "rabbitmq", url=url, exchange=exchange, dags=("thr*",))
        relay = Relay(h.engine, with_sinks(h.settings, spec), actor="relay-test", clock=h.clock)
        drain(relay)
        relay.close()
        got = []
        while (message := ch.basic_get(queue, auto_ack=True))[0] is not None:
            method, props, body = message
            got.append((method.routing_key, props.delivery_mode, json.loads(body)))
    finally:
        ch.exchange_delete(exchange)
        conn.close()
    assert len(got) == expected
    keys = [key for key, _mode, _ce in got]
    assert "three.run.queued" in keys and "three.a.succeeded" in keys and keys[-1] == "three.run.succeeded"
    assert {mode for _key, mode, _ce in got} == {2}  # persistent
    assert len({ce["id"] for _k, _m, ce in got}) == expected


def test_filters_skip_events_and_still_prune(h: Harness) -> None:
    run_three(h)
    with webhook_receiver() as got:
        spec = webhook(got.url, types=("dagrunner.dag_run.*",), dags=("three",))
        relay = Relay(h.engine, with_sinks(h.settings, spec), actor="relay-test", clock=h.clock)
        drain(relay)
        relay.close()
    assert [e["type"] for e in got.events] == [
        "dagrunner.dag_run.queued", "dagrunner.dag_run.running", "dagrunner.dag_run.succeeded",
    ]  # fmt: skip
    assert outbox_rows(h.engine) == []


def test_without_sinks_or_listeners_rows_are_pruned_at_once(h: Harness) -> None:
    run_three(h)
    assert outbox_rows(h.engine)
    relay = Relay(h.engine, with_sinks(h.settings), actor="relay-test", clock=h.clock)
    relay.step()  # on PostgreSQL a transaction in flight elsewhere may hold the settled id back a step
    wait_until(lambda: relay.step() and not outbox_rows(h.engine), what="the outbox pruned", timeout=10)
    relay.close()


def test_two_relays_at_once_deliver_each_row_once(h: Harness) -> None:
    run_three(h, runs=3)
    expected = len(published_audit(h.engine))
    with webhook_receiver() as got:
        settings = with_sinks(h.settings, webhook(got.url))
        relays = [Relay(h.engine, settings, actor=f"relay-{i}", clock=h.clock) for i in range(2)]
        stop = threading.Event()

        def loop(relay: Relay) -> None:
            while not stop.is_set() and outbox_rows(h.engine):
                relay.step()

        threads = [threading.Thread(target=loop, args=(r,)) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stop.set()
        for relay in relays:
            relay.close()
    assert_in_order_once(got.events, h.engine, expected)


LISTENER = """
import json
from pathlib import Path

OUT = Path(__file__).with_name("calls.jsonl")


def _log(**kw):
    with OUT.open("a") as fh:
        fh.write(json.dumps(kw, default=str) + "\\n")


def on_dag_run_running(dag_run, msg):
    _log(hook="on_dag_run_running", run=dag_run.run_id, state=dag_run.state)


def on_dag_run_success(dag_run, msg):
    _log(hook="on_dag_run_success", run=dag_run.run_id, state=dag_run.state)


def on_task_instance_running(previous_state, task_instance):
    _log(hook="on_task_instance_running", task=task_instance.task_id, previous=previous_state)


def on_task_instance_success(task_instance):
    if task_instance.task_id == "b":
        raise RuntimeError("listener bug on b")
    _log(hook="on_task_instance_success", task=task_instance.task_id, try_number=task_instance.try_number)
"""


def test_listener_plugin_hooks_are_called_in_order_and_a_raising_hook_is_skipped(h: Harness) -> None:
    plugins = h.root / "plugins"
    plugins.mkdir()
    (plugins / "my_listener.py").write_text(LISTENER)
    (plugins / "helpers.py").write_text("raise RuntimeError('not a listener: never imported')\n")
    run_three(h)
    relay = Relay(h.engine, with_sinks(h.settings, listeners=True), actor="relay-test", clock=h.clock)
    settled(relay)
    for _ in range(10):
        relay.step()
        h.clock.advance(10)
    relay.close()
    calls = [json.loads(line) for line in (plugins / "calls.jsonl").read_text().splitlines()]
    assert [(c["hook"], c.get("task") or c.get("state")) for c in calls] == [
        ("on_dag_run_running", "running"),
        ("on_task_instance_running", "a"), ("on_task_instance_success", "a"),
        ("on_task_instance_running", "b"),
        ("on_task_instance_running", "c"), ("on_task_instance_success", "c"),
        ("on_dag_run_success", "success"),
    ]  # fmt: skip
    assert calls[1]["previous"] == "queued" and calls[2]["try_number"] == 1
    (failed,) = audit_events(h.engine, "listener.failed")
    assert "my_listener.on_task_instance_success raised RuntimeError: listener bug on b" in (failed.reason or "")
    assert failed.detail is not None and failed.detail["attempts"] == 3 and failed.task_id == "b"
    assert outbox_rows(h.engine) == []
    assert [lag.name for lag in sink_lags_of(h.engine, [LISTENERS])] == [LISTENERS]


def test_a_bad_sink_config_names_the_sink_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "dagrunner.toml").write_text(
        '[events.sinks.ops]\ntype = "webhook"\nurl = "http://x/"\ntimeout = "soon"\n'
    )
    with pytest.raises(ConfigError, match=r"event sink 'ops': timeout: 'soon' is not a duration"):
        Settings.load(environ={}, home=tmp_path)
    for body, message in [
        ({"type": "kafka"}, "type 'kafka' is not one of webhook, redis_stream, rabbitmq"),
        ({"type": "redis_stream"}, "a redis_stream sink needs stream = ..."),
        ({"type": "webhook", "url": "ftp://x"}, "must start with http:// or https://"),
        ({"type": "webhook", "url": "http://x", "secret_env": "not a name"}, "secret_env must be the NAME"),
        ({"type": "rabbitmq", "exchange": "x", "colour": 1}, "unknown key"),
    ]:
        with pytest.raises(ConfigError, match=f"event sink 'bad': .*{message}"):
            sink_specs({"bad": body}, "dagrunner.toml")


def test_sinks_from_the_toml_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "dagrunner.toml").write_text(
        '[events]\nsource = "dagrunner://prod/"\n[events.sinks.ops]\ntype = "webhook"\nurl = "http://x/"\n'
        'secret_env = "HOOK_SECRET"\ndags = ["etl_*"]\n'
    )
    settings = Settings.load(environ={}, home=tmp_path)
    assert settings.events_source == "dagrunner://prod/"
    assert settings.event_sinks == (SinkSpec("ops", "webhook", url="http://x/", secret_env="HOOK_SECRET",
                                             dags=("etl_*",)),)  # fmt: skip
    env = {"DAGRUNNER_EVENTS_SINKS": '{"s": {"type": "redis_stream", "stream": "ev"}}'}
    assert [s.name for s in Settings.load(environ=env, home=tmp_path).event_sinks] == ["s"]
