"""Circuit breakers on pools, with the fake clock: open after N consecutive failed tries, hold the pool's
tries (they stay scheduled; `tasks why` says until when), one probe after the cool-down (half open), closed
by its success or opened again by its failure; every move audited."""

from __future__ import annotations

from datetime import timedelta

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.views import pool_views
from dagrunner.scheduling.breakers import gate
from dagrunner.scheduling.operations import explain_instance, trigger_run
from dagrunner.scheduling.pools import reset_breaker, set_pool
from dagrunner.settings import PoolSpec

from .harness import START, Harness

COOLDOWN_S = 60
#: Three independent calls to one service (pool `api`, one slot); each fails while the file `down` exists.
SERVICE = """
import pendulum
from datetime import timedelta
from pathlib import Path
from dagrunner import DAG, task

DOWN = Path(__file__).parent / "down"

@task(pool="api", retries=5, retry_delay=timedelta(seconds=0))
def call():
    if DOWN.exists():
        raise ConnectionError("the service is down")

with DAG("service", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    [call.override(task_id=t)() for t in ("a", "b", "c")]
"""


def _start(h: Harness, *, down: bool) -> str:
    h.write_dag("service.py", SERVICE)
    if down:
        (h.settings.dags_folder / "down").touch()
    with session_scope(h.engine) as s:
        set_pool(s, PoolSpec("api", 1, None, 2, COOLDOWN_S), actor="test", now=START)
    sched = h.start()
    with session_scope(h.engine) as s:
        return trigger_run(s, sched.dag_source.dags()["service"], actor="test", now=START).run_id


def _breaker(h: Harness) -> tuple[str | None, int, object]:
    with session_scope(h.engine, readonly=True) as s:
        (view,) = [v for v in pool_views(s) if v.name == "api"]
        return view.breaker_state, view.consecutive_failures, view.open_until


def _breaker_moves(h: Harness) -> list[tuple[str | None, str | None]]:
    return [(r.old_state, r.new_state) for r in h.audit(event="pool.breaker")]


def _tries(h: Harness) -> int:
    return sum(len(h.tries("service", t)) for t in ("a", "b", "c"))


def test_open_holds_the_pool_then_one_probe_closes_it(h: Harness) -> None:
    run_id = _start(h, down=True)
    h.tick(START)
    assert _breaker(h) == ("open", 2, START + timedelta(seconds=COOLDOWN_S))
    assert _tries(h) == 2  # the third try was never started: the service is not hammered
    waiting = {t: s for t, s in h.states("service").items() if s != "up_for_retry"}
    assert waiting and set(waiting.values()) == {"scheduled"}  # held, not queued
    held = next(iter(waiting))
    with session_scope(h.engine, readonly=True) as s:
        why = explain_instance(s, h.scheduler.dag_source.dags()["service"], run_id, held, -1, START)  # type: ignore[union-attr]
    check = next(c for c in why.checks if c.rule == "pool_breaker")
    assert not check.passed
    assert check.reason == "circuit open until 12:01:00 UTC (pool api: 2 consecutive failures)"
    assert h.scheduler is not None and h.scheduler.next_wakeup(START) <= START + timedelta(seconds=COOLDOWN_S)

    h.advance(COOLDOWN_S - 1)  # still cooling down: nothing runs
    assert _tries(h) == 2
    (h.settings.dags_folder / "down").unlink()  # the service is back
    h.advance(1)
    assert _breaker(h) == ("closed", 0, None)
    assert set(h.states("service").values()) == {"success"}
    assert _tries(h) == 5  # the probe, then the other two
    assert _breaker_moves(h) == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    probe = h.audit(event="pool.breaker", new_state="half_open")[0]
    assert probe.actor == "scheduler-test" and "runs as the one probe try" in (probe.reason or "")
    assert probe.ts == START + timedelta(seconds=COOLDOWN_S)  # the scheduler's (fake) clock


def test_a_failed_probe_opens_it_again_for_a_new_cool_down(h: Harness) -> None:
    _start(h, down=True)
    h.tick(START)
    h.advance(COOLDOWN_S)  # the probe runs, and fails
    reopened = START + timedelta(seconds=COOLDOWN_S)
    assert _breaker(h) == ("open", 3, reopened + timedelta(seconds=COOLDOWN_S))
    assert _tries(h) == 3  # exactly one probe
    assert _breaker_moves(h) == [("closed", "open"), ("open", "half_open"), ("half_open", "open")]
    h.advance(COOLDOWN_S - 1)
    assert _tries(h) == 3


def test_pools_reset_closes_it_by_hand_and_the_held_tries_run(h: Harness) -> None:
    _start(h, down=True)
    h.tick(START)
    (h.settings.dags_folder / "down").unlink()
    with session_scope(h.engine) as s:
        before = reset_breaker(s, "api", reason="the service was fixed", actor="alice@host", now=START)
    assert before.state == "open"
    h.advance(1)  # well within the cool-down, but closed by hand
    assert set(h.states("service").values()) == {"success"}
    closed = h.audit(event="pool.breaker")[-1]
    assert (closed.old_state, closed.new_state, closed.actor, closed.reason) == (
        "open", "closed", "alice@host", "the service was fixed",
    )  # fmt: skip


def test_successes_keep_it_closed(h: Harness) -> None:
    _start(h, down=False)
    h.tick(START)
    assert set(h.states("service").values()) == {"success"}
    assert _breaker(h) == ("closed", 0, None)
    assert _breaker_moves(h) == []


def test_the_gate_rule() -> None:
    from dagrunner.persistence.breakers import BreakerRow
    from dagrunner.states import BreakerState

    row = BreakerRow(1, "api", BreakerState.OPEN, 3, 3, 60.0, START)
    assert gate(row, 0, START).held is not None and gate(row, 0, START).wake == START + timedelta(seconds=60)
    after = START + timedelta(seconds=60)
    assert gate(row, 0, after).probe and gate(row, 0, after).held is None
    assert gate(row, 1, after).held is not None  # a try of the pool still runs: the probe waits for it
    half = BreakerRow(1, "api", BreakerState.HALF_OPEN, 3, 3, 60.0, START)
    assert gate(half, 1, after).held == "circuit half open (pool api): waiting for the probe try's outcome"
    assert gate(half, 0, after).probe  # the probe vanished without an outcome: another may go
    closed = BreakerRow(1, "api", BreakerState.CLOSED, 1, 3, 60.0, None)
    assert gate(closed, 5, START).held is None and not gate(closed, 5, START).probe
