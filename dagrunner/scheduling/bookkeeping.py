"""What the scheduler remembers between ticks, and the rules that keep that memory true.

The database is the truth; this is the scheduler's memory of *where to look*, so that a tick costs what
changed rather than what is active. It is pure (no queries, no clock): the scheduler tells it what
happened and asks it what to do next. Its methods are the only way to change it, and each keeps the
rules below. `check()` verifies the ones that can be verified cheaply (tests call it after every tick).

What it holds:
- `dirty`: the runs to decide again, and within each run the tasks (`focus.DirtyRuns`).
- `events`: executor events taken but not yet applied.
- `timers`: per run, the earliest moment a waiting retry becomes due.
- `ready`: instances whose dependencies are met but that found no free slot, per run, by instance id,
  so a freed slot is given out without deciding their runs again.
- `run_waiters`: queued runs held back by max_active_runs.
- `past_waiters`: per DAG, runs waiting for an instance of an earlier run (depends_on_past).
- `due`: when each DAG's next scheduled run is due (`due_runs.DueRuns`).
- the run watermark: the newest dag_run primary key seen, to notice runs other processes create.
- `wake`: the earliest end of an open circuit breaker's cool-down that holds a ready instance.
- when the next full scan is due.

The rules:
1. `ready` lists only runs with at least one waiting instance (a run emptied is dropped), and each entry
   is filed under its own run and its own instance id: `not ready` means nothing waits for a slot.
2. An instance is never both remembered as ready and decided again: recording a run's plan (`planned`)
   first forgets the ready instances of the tasks that were decided, and a full scan (`take_focus` with
   `full`) forgets every one of them, since deciding every run finds them again.
3. A finished run (`run_finished`) has nothing ready and releases whatever waited on it: its DAG's runs
   waiting for depends_on_past, every queued run held by max_active_runs (a slot may have opened), and
   its DAG's due time (recomputed).
4. Any try event of a DAG releases that DAG's past waiters; a due timer marks its whole run and is
   dropped; each run has at most one timer, the earliest.
5. `past_waiters` files each run under its own DAG and holds no empty set.
6. The run watermark only grows, and is unknown (None) until the scheduler first looks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from dagrunner.execution.base import RunFacts, TryEvent
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import TIRow
from dagrunner.scheduling.due_runs import DueLookups, DueRuns
from dagrunner.scheduling.evaluation import RunPlan
from dagrunner.scheduling.focus import DirtyRuns, RunRef

#: run -> the task ids to decide (None: every task of the run).
Focus = dict[RunRef, set[str] | None]


class BookkeepingError(AssertionError):
    """A rule of the bookkeeping was broken: a bug in the scheduler, never a user error."""


@dataclass(frozen=True)
class ReadyTry:
    """A task instance whose dependencies are met, waiting for a slot."""

    ref: RunRef
    order: tuple[datetime, int]  # (logical_date, run pk): older runs first
    facts: RunFacts
    ti: TIRow


class Bookkeeping:
    """The scheduler's memory between ticks (see the module docstring for what it holds and its rules)."""

    def __init__(self, *, full_scan_s: float, full_scan_runs: int) -> None:
        """Every active run is decided again every `full_scan_s`, stretched in proportion beyond
        `full_scan_runs` active runs, so a full scan stays a small share of the scheduler's time."""
        self._full_scan = timedelta(seconds=full_scan_s)
        self._full_scan_runs = full_scan_runs
        self._next_full_scan: datetime | None = None
        self._dirty = DirtyRuns()
        self._events: list[TryEvent] = []
        self._timers: dict[RunRef, datetime] = {}
        self._ready: dict[RunRef, dict[int, ReadyTry]] = {}
        self._run_waiters: set[RunRef] = set()
        self._past_waiters: dict[str, set[RunRef]] = {}
        self._due = DueRuns()
        self._run_watermark: int | None = None
        self._wake: datetime | None = None

    # --- what happened ------------------------------------------------------------------------------

    def add_events(self, events: Iterable[TryEvent]) -> None:
        self._events.extend(events)

    def take_events(self) -> list[TryEvent]:
        """The events added so far, to apply now; none are left."""
        events, self._events = self._events, []
        return events

    def rolled_back(self, events: Iterable[TryEvent]) -> None:
        """A tick's transaction rolled back (the database connection was lost, say): the `events` it took
        are applied again, first, and the next tick is a full scan. What the tick remembered from what it
        read (ready instances, held runs, timers, the run watermark) may name writes that never happened;
        a full scan forgets the ready instances, releases the held due runs and decides every active run
        from the database, so nothing is left claimed that the rolled-back transaction did not do."""
        self._events[:0] = list(events)
        self._next_full_scan = None

    def rescan(self) -> None:
        """The next tick is a full scan (what this memory holds may be stale)."""
        self._next_full_scan = None

    def try_changed(self, ref: RunRef, tasks: Iterable[str] | None) -> None:
        """A try of `ref` started, ended or was lost: decide `tasks` again (None: the whole run), and
        the DAG's runs waiting for depends_on_past (rule 4)."""
        self._release_past_waiters(ref[0])
        if tasks is None:
            self._dirty.whole(ref)
        else:
            self._dirty.tasks(ref, tasks)

    def decide_again(self, refs: Iterable[RunRef]) -> None:
        """Decide these runs whole next tick (created, expanded, changed by someone else, zombies)."""
        self._dirty.whole_many(refs)

    def watch_runs_after(self, run_pk: int) -> None:
        """The first look: runs up to `run_pk` exist already (a full scan finds them)."""
        if self._run_watermark is None:
            self._run_watermark = run_pk

    def runs_seen(self, rows: Iterable[tuple[int, str, str]]) -> None:
        """(pk, dag_id, run_id) of runs created since the watermark: each is decided whole."""
        for run_pk, dag_id, run_id in rows:
            self._dirty.whole((dag_id, run_id))
            self._run_watermark = max(self._run_watermark or 0, run_pk)

    @property
    def run_watermark(self) -> int | None:
        return self._run_watermark

    # --- what to decide -----------------------------------------------------------------------------

    def start_tick(self, now: datetime) -> bool:
        """Fire the timers due at `now` and say whether this tick is a full scan (then due runs held back
        by pause or max_active_runs are looked at again: a DAG may have been unpaused elsewhere)."""
        full = self._next_full_scan is None or now >= self._next_full_scan
        if full:
            self._next_full_scan = now + self._full_scan
            self._due.release_held()
        if self._wake is not None and self._wake <= now:
            self._wake = None
        for ref in [ref for ref, when in self._timers.items() if when <= now]:
            self._dirty.whole(ref)
            del self._timers[ref]
        return full

    @property
    def has_runs_to_decide(self) -> bool:
        return bool(self._dirty)

    def take_focus(self, full: bool) -> Focus:
        """The runs to decide and their tasks; the dirty set starts empty again. On a full scan every
        active run is decided whole (an empty focus), and every ready instance is forgotten (rule 2)."""
        focus = self._dirty.take()
        if full:
            self._ready.clear()
            return {}
        return focus

    def full_scan_found(self, active_runs: int) -> None:
        """Stretch the next full scan when it found more active runs than `full_scan_runs`."""
        stretch = active_runs / self._full_scan_runs
        if stretch > 1 and self._next_full_scan is not None:
            self._next_full_scan += self._full_scan * (stretch - 1)

    def planned(
        self, ref: RunRef, tasks: Collection[str] | None, plan: RunPlan, *, order: tuple[datetime, int],
        facts: RunFacts | None,
    ) -> None:  # fmt: skip
        """Record what deciding `tasks` of `ref` (None: all) found: its ready instances replace the ones
        remembered for those tasks (rule 2), its retry timer, whether it waits for an earlier run, and, when
        mapped tasks were expanded, that the run is decided again. `facts` is needed only when something is
        ready (building it costs, so the caller may pass None otherwise)."""
        self._forget_ready(ref, tasks)
        if plan.to_expand:
            self._dirty.whole(ref)  # decide the new instances next tick (which follows at once)
        if plan.next_timer is not None:
            self._timers[ref] = min(plan.next_timer, self._timers.get(ref, plan.next_timer))
        if plan.waiting_on_past:
            self._past_waiters.setdefault(ref[0], set()).add(ref)
        if plan.ready and plan.outcome is None:
            if facts is None:
                raise BookkeepingError(f"run {ref} has ready instances but no RunFacts were given")
            waiting = self._ready.setdefault(ref, {})
            for ti in plan.ready:
                waiting[ti.id] = ReadyTry(ref, order, facts, ti)

    def wake_at(self, when: datetime | None) -> None:
        """Ready instances are held until `when` (a circuit breaker's cool-down ends): be awake then."""
        if when is not None:
            self._wake = min(when, self._wake or when)

    def hold_run(self, ref: RunRef) -> None:
        """A queued run that max_active_runs keeps from starting: looked at again when a run finishes."""
        self._run_waiters.add(ref)

    def run_finished(self, ref: RunRef) -> None:
        """`ref` ended: nothing of it is ready any more, and what waited on it is released (rule 3)."""
        self._ready.pop(ref, None)
        self._release_past_waiters(ref[0])
        self._due.forget([ref[0]])
        self._dirty.whole_many(self._run_waiters)
        self._run_waiters.clear()

    # --- what is ready ------------------------------------------------------------------------------

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    def ready_of(self, dag_ids: Container[str]) -> list[ReadyTry]:
        """Every remembered ready instance of these DAGs (a DAG whose file is gone keeps its entries)."""
        return [entry for waiting in self._ready.values() for entry in waiting.values() if entry.ref[0] in dag_ids]

    def take_ready(self, entries: Iterable[ReadyTry]) -> None:
        """These were given a slot (or lost a race): no longer ready; emptied runs are dropped (rule 1)."""
        for entry in entries:
            waiting = self._ready[entry.ref]
            del waiting[entry.ti.id]
            if not waiting:
                del self._ready[entry.ref]

    # --- runs due -----------------------------------------------------------------------------------

    def due_dags(
        self, dags: Mapping[str, SerializedDag], now: datetime, lookups: DueLookups
    ) -> dict[str, SerializedDag]:
        """The unpaused DAGs among `dags` whose next scheduled run is due at `now`."""
        return self._due.due_now(dags, now, lookups)

    def recompute_due(self, dag_ids: Iterable[str]) -> None:
        """Runs of these DAGs were created: their next due time moves."""
        self._due.forget(dag_ids)

    def hold_due(self, dag_ids: Iterable[str]) -> None:
        """Still due but at max_active_runs: not offered again until one of their runs finishes."""
        self._due.hold(dag_ids)

    # --- when to wake -------------------------------------------------------------------------------

    @property
    def has_pending_work(self) -> bool:
        """Runs to decide or events to apply: the next tick should follow at once."""
        return bool(self._dirty or self._events)

    def next_wakeups(self, *, with_due_runs: bool) -> list[datetime]:
        """The moments the loop must be awake for: the full scan, the earliest retry timer, the earliest
        due run (when this scheduler creates runs)."""
        times = [self._next_full_scan] if self._next_full_scan is not None else []
        if self._timers:
            times.append(min(self._timers.values()))
        if self._wake is not None:
            times.append(self._wake)
        due = self._due.earliest() if with_due_runs else None
        if due is not None:
            times.append(due)
        return times

    # --- the rules, checked -------------------------------------------------------------------------

    def check(self) -> None:
        """Raise BookkeepingError when a rule that can be checked cheaply is broken (rules 1, 5, 6)."""
        for ref, waiting in self._ready.items():
            if not waiting:
                raise BookkeepingError(f"run {ref} is listed as ready with nothing waiting")
            for ti_id, entry in waiting.items():
                if entry.ref != ref or entry.ti.id != ti_id or (entry.ti.dag_id, entry.ti.run_id) != ref:
                    raise BookkeepingError(f"ready entry {entry.ti.label()} is filed under {ref}, id {ti_id}")
        for dag_id, refs in self._past_waiters.items():
            if not refs or any(ref[0] != dag_id for ref in refs):
                raise BookkeepingError(f"past waiters of {dag_id!r} are wrong: {sorted(refs)}")
        if self._run_watermark is not None and self._run_watermark < 0:
            raise BookkeepingError(f"run watermark {self._run_watermark} is negative")

    def _forget_ready(self, ref: RunRef, tasks: Collection[str] | None) -> None:
        if tasks is None:
            self._ready.pop(ref, None)
            return
        waiting = self._ready.get(ref)
        if waiting:
            for ti_id in [i for i, entry in waiting.items() if entry.ti.task_id in tasks]:
                del waiting[ti_id]
            if not waiting:
                del self._ready[ref]

    def _release_past_waiters(self, dag_id: str) -> None:
        self._dirty.whole_many(self._past_waiters.pop(dag_id, ()))


class FinishedRuns:
    """How many runs a scheduler finished, and the last `keep` of them.

    A daemon finishes runs for weeks, so they are counted rather than all kept; `len()` is the count
    (`scheduler --num-runs`). Waiting for particular runs (dags test, backfill) is done by the loop from
    each tick's report, not from here.
    """

    def __init__(self, keep: int = 1000) -> None:
        self.count = 0
        self.recent: deque[RunRef] = deque(maxlen=keep)

    def add(self, ref: RunRef) -> None:
        self.count += 1
        self.recent.append(ref)

    def __len__(self) -> int:
        return self.count
