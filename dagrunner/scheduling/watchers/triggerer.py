"""The triggerer process: asset watchers and the outbox relay, until stopped.

`run()` is a small loop on the main thread: stop check -> heartbeat -> look for changed watchers
(re-importing DAG files happens here, on the main thread, because the import timeout is a SIGALRM) ->
wait. The watchers consume in threads of their own (`host.WatcherHost`), the relay in another. Runs that
a message created are reported through `on_runs_created` (`dagrunner scheduler` passes a pipe, so that it
starts them at once).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from dagrunner.clock import Clock
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import JobType
from dagrunner.scheduling import jobs
from dagrunner.scheduling.watchers.discovery import Discovered, discover, files_with_watchers
from dagrunner.scheduling.watchers.host import RunsCreated, WatcherHost
from dagrunner.settings import Settings

log = logging.getLogger(__name__)
#: How often the triggerer looks for new, changed or removed watchers in the parsed DAG files.
REFRESH_S = 2.0


class Triggerer:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        actor: str,
        clock: Clock,
        on_runs_created: RunsCreated | None = None,
        relay_factory: Callable[[], Any] | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        """`relay_factory`: builds the outbox relay (`step() -> seconds`, `close()`), or None for none."""
        self.engine = engine
        self.settings = settings
        self.actor = actor
        self.clock = clock
        self.on_runs_created = on_runs_created
        self.relay_factory = relay_factory
        self.max_backoff_s = max_backoff_s
        self.stop_event = threading.Event()
        self.host: WatcherHost | None = None
        self.job_id: int | None = None
        self._stamps: dict[str, tuple[int, int]] | None = None
        self._relay_thread: threading.Thread | None = None

    def request_stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            self.job_id = jobs.register_job(session, JobType.TRIGGERER, now, actor=self.actor).id
        self._start_relay()
        next_heartbeat = now
        try:
            while not self.stop_event.is_set():
                now = self.clock.now()
                if now >= next_heartbeat:
                    self._heartbeat(now)
                    next_heartbeat = now + timedelta(seconds=self.settings.scheduler_heartbeat_sec)
                self.refresh_watchers()
                self.stop_event.wait(REFRESH_S)
        finally:
            self._stop()

    def refresh_watchers(self) -> None:
        """(Re)start the watchers when the DAG files that declare them changed."""
        try:
            with session_scope(self.engine, readonly=True) as session:
                files = files_with_watchers(session)
        except Exception as exc:  # noqa: BLE001 - the database is away: keep the watchers we have
            log.warning("cannot read the parsed DAG files (%s); the running watchers go on", exc)
            return
        stamps = {path: _stamp(path) for path in files}
        if stamps == self._stamps:
            return
        self._stamps = stamps
        found = discover(files, self.settings)
        self._report(found)
        if self.host is not None:
            self.host.stop()
        self.host = WatcherHost(
            self.engine, self.settings, found.watchers, actor=self.actor, clock=self.clock,
            on_runs_created=self.on_runs_created, max_backoff_s=self.max_backoff_s,
        )  # fmt: skip
        self.host.start()

    def _report(self, found: Discovered) -> None:
        for problem in found.problems:
            log.warning("watcher not started: %s", problem)
        names = ", ".join(f"{w.name} ({w.trigger.target} -> asset {w.asset})" for w in found.watchers)
        log.info("watching %d watcher(s)%s", len(found.watchers), f": {names}" if names else "")

    def _heartbeat(self, now: Any) -> None:
        try:
            with session_scope(self.engine) as session:
                jobs.heartbeat(session, self.job_id or 0, now)
        except Exception as exc:  # noqa: BLE001 - an outage: the watchers retry their own writes
            log.warning("heartbeat failed: %s", exc)

    def _start_relay(self) -> None:
        if self.relay_factory is None:
            return
        relay = self.relay_factory()

        def deliver() -> None:
            try:
                while not self.stop_event.is_set():
                    try:
                        delay = relay.step()
                    except Exception:  # a relay bug must not take the watchers down
                        log.exception("outbox relay step failed")
                        delay = 5.0
                    self.stop_event.wait(max(0.01, delay))
            finally:
                relay.close()

        self._relay_thread = threading.Thread(target=deliver, name="outbox-relay", daemon=True)
        self._relay_thread.start()

    def _stop(self) -> None:
        self.stop_event.set()
        if self.host is not None:
            self.host.stop()
        if self._relay_thread is not None:
            self._relay_thread.join(10.0)
        try:
            with session_scope(self.engine) as session:
                if self.job_id is not None:
                    jobs.end_job(session, self.job_id, self.clock.now(), actor=self.actor, reason="stopped")
        except Exception as exc:  # noqa: BLE001 - the job row is found dead by its pid later
            log.warning("could not record the triggerer's end: %s", exc)


def _stamp(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)
