"""A real HTTP receiver for webhook sinks (a thread in the test process) and small outbox readers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, select

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, Outbox


@dataclass
class Receiver:
    """What the webhook receiver got, and how it answers: `mode` is ok | fail (HTTP 500) | hang."""

    mode: str = "ok"
    hang_s: float = 5.0
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for b in self.bodies]


@contextmanager
def webhook_receiver(port: int = 0) -> Iterator[Receiver]:
    """A ThreadingHTTPServer on 127.0.0.1 answering POSTs as `Receiver.mode` says."""
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with got.lock:
                got.attempts += 1
                mode = got.mode
            if mode == "hang":
                time.sleep(got.hang_s)
                mode = "fail"
            if mode == "fail":
                self.send_response(500)
                self.end_headers()
                return
            with got.lock:
                got.bodies.append(body)
                got.headers.append(dict(self.headers.items()))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def outbox_rows(engine: Engine) -> list[Outbox]:
    with session_scope(engine, readonly=True) as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def published_audit(engine: Engine) -> list[AuditLog]:
    events = ("task.state", "run.state", "run.created", "asset.event")
    with session_scope(engine, readonly=True) as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.event.in_(events)).order_by(AuditLog.id)))


def audit_events(engine: Engine, name: str) -> list[AuditLog]:
    with session_scope(engine, readonly=True) as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.event == name).order_by(AuditLog.id)))
