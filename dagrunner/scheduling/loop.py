"""The scheduler loop: stop check -> one tick -> wait for the next event. That is all it does.

A tick that a database outage failed (`OUTAGE_ERRORS`: the connection lost, SQLite locked elsewhere,
writes refused) rolled back and is simply ticked again after a bounded exponential backoff (`Outage`):
logged once when the outage begins, audited once (`scheduler.db_reconnected`, with its length) when a tick
works again. Only an outage longer than `db_unreachable_timeout_sec` ends the loop, with one line.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from dagrunner.errors import PersistenceError
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.engine import OUTAGE_ERRORS, Outage, session_scope
from dagrunner.scheduling.bookkeeping import FinishedRuns
from dagrunner.scheduling.scheduler import RunRef, Scheduler, TickReport

DEFAULT_GRACE_S = 30.0
#: The audit event written when the database works again after an outage.
RECONNECTED_EVENT = "scheduler.db_reconnected"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StopWhen:
    """When the loop ends on its own (besides SIGINT/SIGTERM)."""

    once: bool = False  # when nothing is running or ready any more (future runs and retries wait)
    num_runs: int | None = None  # after this many runs finished
    runs_done: frozenset[RunRef] | None = None  # when these runs have finished (dags test, backfill)


def run_loop(
    scheduler: Scheduler,
    stop_when: StopWhen = StopWhen(),
    *,
    grace_s: float = DEFAULT_GRACE_S,
    on_tick: Callable[[TickReport], None] | None = None,
) -> FinishedRuns:
    """Run until told to stop; returns the runs this scheduler finished. Always shuts down cleanly."""
    waiting_for = set(stop_when.runs_done) if stop_when.runs_done is not None else None
    outage = Outage(scheduler.db_unreachable_timeout_s)
    scheduler.start()
    try:
        while not scheduler.stopping:
            report = _tick_through_outages(scheduler, outage)
            if report is None:
                continue  # the database failed the tick: it rolled back, and is ticked again
            if on_tick is not None:
                on_tick(report)
            if waiting_for is not None:
                waiting_for.difference_update(report.finished_runs)
            if _done(scheduler, stop_when, report.did_work, waiting_for):
                break
            scheduler.wait(scheduler.next_wakeup(scheduler.clock.now()))
    finally:
        _shutdown(scheduler, grace_s, outage)
    return scheduler.finished_runs


def _tick_through_outages(scheduler: Scheduler, outage: Outage) -> TickReport | None:
    """One tick; None when a database outage failed it (after waiting the backoff). Raises
    DatabaseOutageTimeoutError when the outage has lasted past the timeout."""
    try:
        report = scheduler.tick(scheduler.clock.now())
        if outage.active:
            _record_recovery(scheduler, outage)
    except OUTAGE_ERRORS as exc:
        delay = outage.failed(exc, scheduler.clock.now())
        words = outage.worth_saying(exc)
        if words is not None:
            log.warning(
                "%s; no new work is queued until it works again (retrying for up to %gs): %s",
                words, outage.timeout_s, exc,
            )  # fmt: skip
        scheduler.pause(delay)
        return None
    return report


def _record_recovery(scheduler: Scheduler, outage: Outage) -> None:
    """Audit, once, that the database works again and how long it did not."""
    now = scheduler.clock.now()
    length = (now - outage.started).total_seconds() if outage.started is not None else 0.0
    reason = (
        f"the metadata database works again after {length:.1f}s ({outage.failures} failed tick(s)); "
        f"it first failed with: {outage.first_error}"
    )
    with session_scope(scheduler.engine) as session:  # an outage again: raised, and the outage goes on
        record_event(session, RECONNECTED_EVENT, actor=scheduler.actor, when=now, reason=reason,
                     detail={"outage_s": round(length, 3), "failed_ticks": outage.failures})  # fmt: skip
    outage.recovered(now)
    log.warning("the metadata database works again after %.1fs; scheduling goes on", length)


def _shutdown(scheduler: Scheduler, grace_s: float, outage: Outage) -> None:
    """Shut down; when the database is still out, the executor was stopped all the same and what is
    left to record cannot be: say so in one line rather than hide why the loop ended."""
    try:
        scheduler.shutdown(grace_s)
    except OUTAGE_ERRORS as exc:
        if not outage.active:
            raise
        log.warning("could not record the shutdown in the metadata database: %s", _first_line(exc))


def _first_line(exc: PersistenceError) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _done(scheduler: Scheduler, stop_when: StopWhen, did_work: bool, waiting_for: set[RunRef] | None) -> bool:
    """`waiting_for`: the runs of `stop_when.runs_done` not finished yet (counted from tick reports, so
    that the scheduler need not keep every run it ever finished)."""
    if stop_when.num_runs is not None and len(scheduler.finished_runs) >= stop_when.num_runs:
        return True
    if waiting_for is not None and not waiting_for:
        return True
    idle = not did_work and not scheduler.executor.running() and not scheduler.has_pending_work
    return stop_when.once and idle


class StopOnSignals:
    """SIGINT/SIGTERM ask the scheduler to stop: no new work, running tries get the grace period."""

    def __init__(self, scheduler: Scheduler, on_signal: Callable[[str], None] | None = None) -> None:
        self.scheduler = scheduler
        self.on_signal = on_signal
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.scheduler.stopping:
            raise KeyboardInterrupt  # a second signal: stop waiting for the grace period
        self.scheduler.request_stop()
        if self.on_signal is not None:
            self.on_signal(name)
