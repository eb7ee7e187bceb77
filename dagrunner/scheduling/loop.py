"""The scheduler loop: stop check -> one tick -> wait for the next event. That is all it does."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from dagrunner.scheduling.bookkeeping import FinishedRuns
from dagrunner.scheduling.scheduler import RunRef, Scheduler, TickReport

DEFAULT_GRACE_S = 30.0


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
    scheduler.start()
    try:
        while not scheduler.stopping:
            report = scheduler.tick(scheduler.clock.now())
            if on_tick is not None:
                on_tick(report)
            if waiting_for is not None:
                waiting_for.difference_update(report.finished_runs)
            if _done(scheduler, stop_when, report.did_work, waiting_for):
                break
            scheduler.wait(scheduler.next_wakeup(scheduler.clock.now()))
    finally:
        scheduler.shutdown(grace_s)
    return scheduler.finished_runs


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
