"""Issue #12's acceptance test: a webhook sink that is down for 30 s (HTTP 500, then refusing connections)
receives every event of a real scheduler's runs afterwards, in order per run, each id once.

Both dialects at once (SQLite, and PostgreSQL when DAGRUNNER_TEST_PG_URL names a server), so the 30 s are
spent once: a `dagrunner scheduler` process per database, a relay per database in this process (as the
triggerer hosts it), and a real HTTP receiver per database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from outbox_helpers import audit_events, outbox_rows, published_audit, webhook_receiver
from polling import wait_until

from dagrunner.clock import SystemClock
from dagrunner.persistence.engine import make_engine
from dagrunner.scheduling.outbox_relay import Relay, run_relay
from dagrunner.settings import Settings, SinkSpec

from .procs import finish, start

pytestmark = pytest.mark.slow

DOWN_S = 30.0

PIPE = """
import pendulum
from pathlib import Path
from dagrunner import DAG, task

LEDGER = Path(__file__).parent.parent / "once.ledger"

with DAG("pipe", schedule="@daily", catchup=True, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         end_date=pendulum.datetime(2026, 1, 4, tz="UTC")):
    @task
    def extract():
        return 1

    @task(retries=1, retry_delay=0.2)
    def load(x):
        if not LEDGER.exists():
            LEDGER.write_text("failed once")
            raise RuntimeError("first try fails")
        return x

    @task
    def report(x):
        return x

    report(load(extract()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_webhook_down_for_30s_gets_every_event_afterwards(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    urls = {"sqlite": f"sqlite:///{tmp_path / 'sqlite' / 'state' / 'dagrunner.db'}"}
    with contextlib.suppress(pytest.skip.Exception):  # PostgreSQL not configured here: SQLite alone
        urls["postgres"] = str(request.getfixturevalue("pg_url"))
    ports = {name: free_port() for name in urls}
    began = time.monotonic()
    with ExitStack() as stack:
        stop = threading.Event()
        relays, procs, engines = [], {}, {}
        failing = {name: stack.enter_context(webhook_receiver(ports[name])) for name in urls}
        for name, db_url in urls.items():
            failing[name].mode = "fail"  # HTTP 500 for the first half of the outage
            root = tmp_path / name
            (root / "dags").mkdir(parents=True, exist_ok=True)
            (root / "dags" / "pipe.py").write_text(PIPE)
            # This process hosts the relay (as a triggerer would): the scheduler must not start one of its own,
            # whose relay, configured without this sink, would prune what this one has still to deliver.
            procs[name] = start(root, db_url, "scheduler", "--num-runs", "4",
                                env={"DAGRUNNER_TRIGGERER_IN_SCHEDULER": "false"})  # fmt: skip
            engines[name] = make_engine(db_url)
            settings = Settings.load({"db_url": db_url}, environ={}, home=root)
            sink = SinkSpec("hook", "webhook", url=f"http://127.0.0.1:{ports[name]}/hook", timeout=2.0,
                            max_backoff=2.0)  # fmt: skip
            settings = dataclasses.replace(settings, event_sinks=(sink,), events_listeners=False)
            wait_until(lambda u=db_url: _schema_ready(u), what=f"{name}: the scheduler created the schema")
            relay = Relay(engines[name], settings, actor=f"relay-{name}", clock=SystemClock())
            thread = threading.Thread(target=run_relay, args=(relay, stop), daemon=True)
            thread.start()
            relays.append(thread)
        for proc in procs.values():
            out = finish(proc, timeout=DOWN_S)
            assert proc.returncode == 0, out
        time.sleep(max(0.0, began + DOWN_S / 2 - time.monotonic()))  # the outage: a real 30 s, not a clock
        stack.close()  # the receivers go away: connections are refused now
        time.sleep(max(0.0, began + DOWN_S - time.monotonic()))
        with ExitStack() as up:
            receivers = {name: up.enter_context(webhook_receiver(ports[name])) for name in urls}
            for name, engine in engines.items():
                expected = len(published_audit(engine))
                wait_until(lambda r=receivers[name], n=expected: len(r.bodies) >= n,
                           what=f"{name}: {expected} events at the receiver", timeout=30)  # fmt: skip
                wait_until(lambda e=engine: not outbox_rows(e), what=f"{name}: the outbox pruned", timeout=10)
                check_received(receivers[name].events, expected)
                assert failing[name].attempts >= 2 and not failing[name].bodies
                assert len(audit_events(engine, "outbox.delivery_failed")) == 1, name  # one episode
                assert len(audit_events(engine, "outbox.delivery_recovered")) == 1, name
            stop.set()
            for thread in relays:
                thread.join(10)
        for engine in engines.values():
            engine.dispose()


def check_received(events: list[dict], expected: int) -> None:
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == expected  # each once, by id
    runs = {e["data"]["run_id"] for e in events if "run_id" in e["data"]}
    assert len(runs) == 4
    for run_id in runs:
        mine = [e for e in events if e["data"].get("run_id") == run_id]
        assert [e["time"] for e in mine] == sorted(e["time"] for e in mine)  # in order per run
        run_types = [e["type"] for e in mine if e["subject"].count("/") == 1]
        assert run_types == ["dagrunner.dag_run.queued", "dagrunner.dag_run.running", "dagrunner.dag_run.succeeded"]
    load = [e["type"] for e in events if e["subject"].endswith("/load")]
    assert "dagrunner.task_instance.up_for_retry" in load


def _schema_ready(db_url: str) -> bool:
    from dagrunner.persistence.schema import check_db

    engine = make_engine(db_url)
    try:
        return check_db(engine).is_current
    except Exception:  # noqa: BLE001 - not created yet
        return False
    finally:
        engine.dispose()
