"""The scheduler's between-tick memory and its rules, on its own: no database, no clock, no executor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dagrunner.execution.base import RunFacts, TaskKey, TryEvent
from dagrunner.persistence.audit import TIRow
from dagrunner.scheduling.bookkeeping import Bookkeeping, BookkeepingError, FinishedRuns, ReadyTry
from dagrunner.scheduling.evaluation import RunPlan
from dagrunner.states import DagRunState, TaskInstanceState

NOW = datetime(2026, 1, 5, tzinfo=UTC)
R1 = ("etl", "r1")
R2 = ("etl", "r2")
OTHER = ("other", "r1")
FACTS = RunFacts("manual", NOW, NOW, NOW, NOW)


def _ti(ref: tuple[str, str], task_id: str, ti_id: int) -> TIRow:
    return TIRow(
        ti_id, ref[0], ref[1], task_id, -1, TaskInstanceState.NONE, 0, 1, None, "default_pool", 1, 1, "default", None
    )


def _ready(bk: Bookkeeping, ref: tuple[str, str], *tis: TIRow, tasks: set[str] | None = None) -> None:
    bk.planned(ref, tasks, RunPlan(ready=list(tis)), order=(NOW, 1), facts=FACTS)


def _book() -> Bookkeeping:
    bk = Bookkeeping(full_scan_s=2.0, full_scan_runs=10)
    assert bk.start_tick(NOW)  # the first tick is a full scan
    bk.take_focus(True)
    return bk


def _ids(entries: list[ReadyTry]) -> set[int]:
    return {e.ti.id for e in entries}


def test_deciding_tasks_replaces_only_their_remembered_ready_instances() -> None:
    bk = _book()
    _ready(bk, R1, _ti(R1, "a", 1), _ti(R1, "b", 2))
    _ready(bk, R1, _ti(R1, "b", 2), tasks={"b"})  # b decided again: still ready, a untouched
    assert _ids(bk.ready_of({"etl"})) == {1, 2}
    _ready(bk, R1, tasks={"a"})  # a decided again and no longer ready
    assert _ids(bk.ready_of({"etl"})) == {2}
    bk.check()


def test_a_run_emptied_of_ready_instances_is_dropped() -> None:
    bk = _book()
    _ready(bk, R1, _ti(R1, "a", 1))
    _ready(bk, R1, tasks={"a"})
    assert not bk.has_ready
    _ready(bk, R2, _ti(R2, "a", 3))
    bk.take_ready(bk.ready_of({"etl"}))
    assert not bk.has_ready
    bk.check()


def test_a_full_scan_forgets_every_ready_instance_and_returns_an_empty_focus() -> None:
    bk = _book()
    _ready(bk, R1, _ti(R1, "a", 1))
    bk.decide_again([R2])
    assert bk.take_focus(full=True) == {}
    assert not bk.has_ready and not bk.has_runs_to_decide


def test_a_finished_try_marks_its_tasks_and_releases_its_dags_past_waiters() -> None:
    bk = _book()
    bk.planned(R2, None, RunPlan(waiting_on_past=True), order=(NOW, 2), facts=None)
    bk.planned(OTHER, None, RunPlan(waiting_on_past=True), order=(NOW, 3), facts=None)
    bk.check()
    bk.try_changed(R1, ("a", "b"))
    bk.try_changed(R1, ("c",))
    assert bk.take_focus(full=False) == {R1: {"a", "b", "c"}, R2: None}
    bk.try_changed(OTHER, None)  # e.g. lost: the whole run
    assert bk.take_focus(full=False) == {OTHER: None}


def test_a_finished_run_forgets_its_ready_instances_and_releases_every_held_run() -> None:
    bk = _book()
    _ready(bk, R1, _ti(R1, "a", 1))
    bk.hold_run(R2)
    bk.hold_run(OTHER)
    bk.planned(("etl", "r3"), None, RunPlan(waiting_on_past=True), order=(NOW, 3), facts=None)
    bk.run_finished(R1)
    assert not bk.has_ready
    assert bk.take_focus(full=False) == {R2: None, OTHER: None, ("etl", "r3"): None}
    bk.run_finished(R1)  # nothing waits any more
    assert not bk.has_runs_to_decide


def test_timers_keep_the_earliest_and_fire_once_due() -> None:
    bk = _book()
    later, sooner = NOW + timedelta(seconds=30), NOW + timedelta(seconds=10)
    bk.planned(R1, None, RunPlan(next_timer=later), order=(NOW, 1), facts=None)
    bk.planned(R1, None, RunPlan(next_timer=sooner), order=(NOW, 1), facts=None)
    assert bk.next_wakeups(with_due_runs=False) == [NOW + timedelta(seconds=2), sooner]  # full scan, timer
    assert not bk.start_tick(NOW + timedelta(seconds=1)) and not bk.has_runs_to_decide
    bk.start_tick(sooner)
    assert bk.take_focus(full=False) == {R1: None}
    assert bk.next_wakeups(with_due_runs=False) == [sooner + timedelta(seconds=2)]  # only the full scan left


def test_full_scans_are_stretched_by_the_active_runs_found() -> None:
    bk = _book()
    bk.full_scan_found(30)  # 3x full_scan_runs: every 6 s instead of 2 s
    assert not bk.start_tick(NOW + timedelta(seconds=5))
    assert bk.start_tick(NOW + timedelta(seconds=6))


def test_runs_created_elsewhere_are_noticed_after_the_first_look() -> None:
    bk = _book()
    assert bk.run_watermark is None
    bk.watch_runs_after(7)
    assert bk.run_watermark == 7 and not bk.has_runs_to_decide
    bk.runs_seen([(9, "etl", "r2"), (8, "etl", "r1")])
    assert bk.run_watermark == 9
    assert bk.take_focus(full=False) == {R2: None, R1: None}


def test_expanding_mapped_tasks_decides_the_run_again() -> None:
    bk = _book()
    bk.planned(R1, {"m"}, RunPlan(to_expand=[_ti(R1, "m", 1)]), order=(NOW, 1), facts=None)
    assert bk.take_focus(full=False) == {R1: None}


def test_ready_instances_need_their_run_facts() -> None:
    bk = _book()
    with pytest.raises(BookkeepingError, match="no RunFacts"):
        bk.planned(R1, None, RunPlan(ready=[_ti(R1, "a", 1)]), order=(NOW, 1), facts=None)


def test_a_ready_plan_of_a_finished_run_is_not_remembered() -> None:
    bk = _book()
    _ready(bk, R1, _ti(R1, "a", 1))
    bk.planned(R1, None, RunPlan(outcome=DagRunState.SUCCESS), order=(NOW, 1), facts=None)
    assert not bk.has_ready


def test_events_are_taken_once() -> None:
    bk = _book()
    event = TryEvent(TaskKey("etl", "r1", "a"), 1, "finished", "success")
    bk.add_events([event])
    assert bk.has_pending_work
    assert bk.take_events() == [event]
    assert bk.take_events() == [] and not bk.has_pending_work


def test_check_finds_a_ready_entry_filed_under_the_wrong_run() -> None:
    bk = _book()
    _ready(bk, R1, _ti(R2, "a", 1))  # a row of r2 recorded as r1's
    with pytest.raises(BookkeepingError, match="filed under"):
        bk.check()


def test_finished_runs_are_counted_and_only_the_last_ones_kept() -> None:
    finished = FinishedRuns(keep=2)
    for i in range(5):
        finished.add(("etl", f"r{i}"))
    assert len(finished) == 5
    assert list(finished.recent) == [("etl", "r3"), ("etl", "r4")]
