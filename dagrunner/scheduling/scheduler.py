"""The scheduler: `tick(now)` does one round of work; `run()` loops ticks, woken by executor events.

One tick: take the executor's events (which runs changed), pick up changed DAG files, create due runs,
then in one short write transaction decide the runs that changed (cascade upstream_failed/skipped,
expand mapped tasks, queue what is ready within the limits, finish runs), and after the commit hand the
queued tries to the executor. Time is always an argument, so tests drive `tick()` with a fake clock.

Two things keep a tick's cost proportional to what changed rather than to what is active: a finished
try marks only its own task and its downstream for deciding again (`focus.DirtyRuns`), and instances
that are ready but found no free slot are remembered (`_ready`), so a freed slot is given out without
deciding their runs again. A full scan every `full_scan_s` rebuilds both from the database, which is
how changes made by other processes (`tasks clear`, another scheduler) are picked up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dagrunner.clock import Clock
from dagrunner.execution.base import Executor, RunFacts, TaskKey, TryEvent, WorkItem
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import RUN, TASK, Change, TIRow, load_ti_rows, transition
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import Dag, DagRun, JobType, Pool, TaskInstance
from dagrunner.scheduling import jobs
from dagrunner.scheduling.dag_source import DagSource
from dagrunner.scheduling.dagruns import create_due_runs
from dagrunner.scheduling.due_runs import DueRuns
from dagrunner.scheduling.evaluation import RunPlan, plan_run
from dagrunner.scheduling.expansion import expand_mapped
from dagrunner.scheduling.focus import DirtyRuns
from dagrunner.scheduling.history import past_states_for
from dagrunner.scheduling.readiness import Candidate, Limits, allocate
from dagrunner.scheduling.recovery import record_lost_tries, recover_orphans
from dagrunner.states import OCCUPYING_SLOT, RUN_ACTIVE, DagRunState
from dagrunner.states import TaskInstanceState as TI

log = logging.getLogger(__name__)
RunRef = tuple[str, str]  # (dag_id, run_id)
MAX_IDLE_WAIT_S = 1.0


@dataclass(frozen=True)
class SchedulerEvent:
    """What the live display shows: a run or a task instance changed."""

    kind: str  # run.created | run.state | task.state
    dag_id: str
    run_id: str
    state: str
    task_id: str | None = None
    map_index: int = -1
    detail: str = ""


@dataclass(frozen=True)
class ReadyTry:
    """A task instance whose dependencies are met, waiting for a slot (see module docstring)."""

    ref: RunRef
    order: tuple[datetime, int]  # older runs first
    facts: RunFacts
    ti: TIRow


@dataclass
class TickReport:
    created_runs: int = 0
    queued: int = 0
    decided: int = 0
    finished_runs: list[RunRef] = field(default_factory=list)
    events: int = 0

    @property
    def did_work(self) -> bool:
        return bool(self.created_runs or self.queued or self.decided or self.finished_runs or self.events)


@dataclass
class SchedulerOptions:
    create_runs: bool = True
    #: Only runs owned by this owner (None: unowned runs, the daemon's) are executed by this scheduler.
    owner: str | None = None
    #: Restrict to these runs (dags test, backfill).
    only_runs: set[RunRef] | None = None
    #: Every active run is decided again this often (how changes made by other processes are noticed),
    #: stretched with the number of active runs beyond `full_scan_runs`, so that with many active runs
    #: a full scan stays a small share of the scheduler's time (1,000 runs: every 10 s).
    full_scan_s: float = 2.0
    full_scan_runs: int = 200
    #: Most runs running at once per DAG (None: each DAG's max_active_runs). Backfill's --max-active-runs.
    max_active_runs: int | None = None
    #: At most this many DAGs get new runs in one tick (keeps each write transaction short).
    max_dags_per_tick: int = 50
    #: Start queued runs newest first (backfill --run-backwards); oldest first otherwise.
    newest_first: bool = False
    zombie_check_s: float = 10.0
    job_type: JobType = JobType.SCHEDULER


class Scheduler:
    def __init__(
        self,
        *,
        engine: Engine,
        executor: Executor,
        dag_source: DagSource,
        clock: Clock,
        actor: str,
        settings_parallelism: int,
        zombie_threshold_s: float = 300.0,
        heartbeat_s: float = 5.0,
        options: SchedulerOptions | None = None,
        on_event: Callable[[SchedulerEvent], None] | None = None,
    ) -> None:
        self.engine = engine
        self.executor = executor
        self.dag_source = dag_source
        self.clock = clock
        self.actor = actor
        self.parallelism = settings_parallelism
        self.zombie_threshold_s = zombie_threshold_s
        self.heartbeat_s = heartbeat_s
        self.options = options or SchedulerOptions()
        self.on_event = on_event or (lambda event: None)
        self.job_id: int | None = None
        self.finished_runs: list[RunRef] = []
        self._dirty = DirtyRuns()
        self._pending_events: list[TryEvent] = []
        self._timers: dict[RunRef, datetime] = {}
        #: Ready instances waiting for a slot, per run, by task instance id.
        self._ready: dict[RunRef, dict[int, ReadyTry]] = {}
        #: Queued runs held back by max_active_runs: looked at again when a run finishes.
        self._run_waiters: set[RunRef] = set()
        #: dag_id -> runs waiting for an instance of an earlier run (depends_on_past).
        self._past_waiters: dict[str, set[RunRef]] = {}
        self._next_full_scan: datetime | None = None
        self._next_zombie_check: datetime | None = None
        self._next_heartbeat: datetime | None = None
        self._stop = threading.Event()
        self._due_runs = DueRuns()
        self._last_run_id: int | None = None  # the newest dag_run id seen (to notice triggered runs)

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Register this job, take over what dead schedulers left behind, and start the executor."""
        now = self.clock.now()
        with session_scope(self.engine) as session:
            self.job_id = jobs.register_job(session, self.options.job_type, now, actor=self.actor).id
        with session_scope(self.engine) as session:
            recover_orphans(session, now=now, my_job_id=self.job_id, actor=self.actor,
                            zombie_threshold_s=self.zombie_threshold_s, dags=self.dag_source.dags())  # fmt: skip
        self.executor.start()
        self._next_heartbeat = now + timedelta(seconds=self.heartbeat_s)

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def shutdown(self, grace_s: float) -> list[tuple[TaskKey, int]]:
        """Stop the executor (waiting up to `grace_s` for running tries) and record what was left."""
        left = self.executor.shutdown(grace_s)
        self._pending_events.extend(self.executor.events(0))
        now = self.clock.now()
        with session_scope(self.engine) as session:
            self._apply_events(session, now, self.dag_source.dags())
            if left:
                record_lost_tries(session, left, dags=self.dag_source.dags(), now=now, actor=self.actor,
                                  reason=f"the scheduler stopped and killed it after a {grace_s:g}s grace period")  # fmt: skip
            if self.job_id is not None:
                jobs.end_job(session, self.job_id, now, actor=self.actor, reason="stopped")
        return left

    # --- one tick ------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickReport:
        now = now or self.clock.now()
        report = TickReport()
        self._pending_events.extend(self.executor.events(0))
        report.events = len(self._pending_events)
        self.dag_source.refresh(now)
        dags = self.dag_source.dags()
        with session_scope(self.engine) as session:
            self._apply_events(session, now, dags)
            if self.options.create_runs and not self.stopping:
                report.created_runs = self._create_runs(session, dags, now)
            items = self._schedule(session, dags, now, report)
            self._maybe_heartbeat(session, now)
        for item in items:
            self.executor.submit(item)
        if self._next_zombie_check is None or now >= self._next_zombie_check:
            self._next_zombie_check = now + timedelta(seconds=self.options.zombie_check_s)
            self._check_zombies(dags, now)
        return report

    def _apply_events(self, session: Session, now: datetime, dags: Mapping[str, SerializedDag]) -> None:
        lost = []
        for event in self._pending_events:
            key = event.key
            ref = (key.dag_id, key.run_id)
            self._dirty.whole_many(self._past_waiters.pop(key.dag_id, set()))
            spec = dag.task_dict.get(key.task_id) if (dag := dags.get(key.dag_id)) is not None else None
            if event.kind == "finished" and spec is not None:
                self._dirty.tasks(ref, (key.task_id, *spec.downstream_task_ids))
            else:
                self._dirty.whole(ref)
            if event.kind == "lost":
                lost.append((event.key, event.try_number))
            elif event.kind == "finished" and event.state:
                self.on_event(SchedulerEvent("task.state", event.key.dag_id, event.key.run_id, event.state,
                                             event.key.task_id, event.key.map_index, event.detail))  # fmt: skip
        if lost:
            record_lost_tries(session, lost, dags=self.dag_source.dags(), now=now, actor=self.actor,
                              reason="the worker process running it died")  # fmt: skip
        self._pending_events.clear()

    def _create_runs(self, session: Session, dags: Mapping[str, SerializedDag], now: datetime) -> int:
        due = self._due_runs.due_now(session, dags, now)
        if not due:
            return 0
        # A bounded batch per tick: one long write transaction would hold SQLite's lock against the
        # workers; the rest stay due and the next tick (at once) takes the next batch.
        due = dict(sorted(due.items())[: self.options.max_dags_per_tick])
        created = create_due_runs(session, due, now=now, actor=self.actor)
        self._due_runs.forget(due)
        still_due = self._due_runs.due_now(session, due, now)
        self._due_runs.hold(still_due)  # max_active_runs reached: wait until one of their runs finishes
        for run in created:
            self._dirty.whole((run.dag_id, run.run_id))
            self.on_event(SchedulerEvent("run.created", run.dag_id, run.run_id, run.state.value))
        return len(created)

    # --- deciding ------------------------------------------------------------------------------------

    def _schedule(
        self, session: Session, dags: Mapping[str, SerializedDag], now: datetime, report: TickReport
    ) -> list[WorkItem]:
        found, focus = self._runs_to_evaluate(session, now)
        runs = self._admit(session, found, dags, now)
        tis_by_run = load_ti_rows(session, [(r.dag_id, r.run_id) for r in runs]) if runs else {}
        for run in runs:
            dag = dags.get(run.dag_id)
            if dag is None:
                continue  # its file is gone or broken: leave the run as it is until the DAG is back
            ref = (run.dag_id, run.run_id)
            tasks = focus.get(ref)
            self._forget_ready(ref, tasks)
            tis = tis_by_run.get(ref, [])
            past = past_states_for(session, dag, run)
            plan = plan_run(dag, tis, now=now, past_states=past, focus=tasks)
            if plan.to_expand:
                expand_mapped(session, dag, run, plan.to_expand, actor=self.actor, now=now)
                self._dirty.whole(ref)  # evaluate the new instances next tick (which follows at once)
            report.decided += self._apply_doomed(session, plan, now)
            self._track_timer(ref, plan)
            if plan.waiting_on_past:
                self._past_waiters.setdefault(run.dag_id, set()).add(ref)
            if plan.outcome is not None and not plan.to_expand:
                self._forget_ready(ref, None)
                self._finish_run(session, run, plan.outcome, now, report)
                continue
            if plan.ready:
                facts, order = _run_facts(run), (run.logical_date, run.id)
                waiting = self._ready.setdefault(ref, {})
                for ti in plan.ready:
                    waiting[ti.id] = ReadyTry(ref, order, facts, ti)
        return self._queue(session, dags, now, report)

    def _forget_ready(self, ref: RunRef, tasks: set[str] | None) -> None:
        """Drop the remembered ready instances of `ref` (of `tasks` only, when given): about to be decided again."""
        if tasks is None:
            self._ready.pop(ref, None)
            return
        waiting = self._ready.get(ref)
        if waiting:
            for ti_id in [i for i, entry in waiting.items() if entry.ti.task_id in tasks]:
                del waiting[ti_id]

    def _runs_to_evaluate(self, session: Session, now: datetime) -> tuple[list[DagRun], dict[RunRef, set[str] | None]]:
        """The runs that changed (events, new runs, due timers) and which of their tasks to decide; or
        every active run, each whole, on a full scan."""
        full = self._next_full_scan is None or now >= self._next_full_scan
        if full:
            self._next_full_scan = now + timedelta(seconds=self.options.full_scan_s)
            self._due_runs.release_held()  # a DAG may have been unpaused, or its runs cleared elsewhere
        for ref, when in list(self._timers.items()):
            if when <= now:
                self._dirty.whole(ref)
                del self._timers[ref]
        self._notice_new_runs(session)
        if not full and not self._dirty:
            return [], {}
        query = select(DagRun).where(DagRun.state.in_(RUN_ACTIVE))
        owner = self.options.owner
        if owner is None:  # the daemon: unowned runs of unpaused DAGs (a paused DAG's runs wait, as in Airflow)
            unpaused = select(Dag.dag_id).where(Dag.is_paused.is_(False))
            query = query.where(DagRun.owner.is_(None), DagRun.dag_id.in_(unpaused))
        else:
            query = query.where(DagRun.owner == owner)
        focus = self._dirty.take()
        if full:
            focus = {}  # every run whole; what is ready is found again
            self._ready.clear()
        else:
            query = query.where(tuple_(DagRun.dag_id, DagRun.run_id).in_(list(focus)))
        if self.options.only_runs is not None:
            query = query.where(tuple_(DagRun.dag_id, DagRun.run_id).in_(list(self.options.only_runs)))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=DagRun)  # several schedulers at once
        runs = list(session.scalars(query.order_by(DagRun.logical_date, DagRun.id)))
        stretch = len(runs) / self.options.full_scan_runs
        if full and stretch > 1 and self._next_full_scan is not None:
            self._next_full_scan += timedelta(seconds=self.options.full_scan_s * (stretch - 1))
        return runs, focus

    def _notice_new_runs(self, session: Session) -> None:
        """Runs other processes created (`dags trigger`) since we last looked: one indexed query per tick,
        so a triggered run starts at once instead of at the next full scan."""
        if self._last_run_id is None:
            self._last_run_id = session.scalar(select(func.max(DagRun.id))) or 0
            return
        rows = session.execute(
            select(DagRun.id, DagRun.dag_id, DagRun.run_id).where(DagRun.id > self._last_run_id)
        ).all()
        for run_pk, dag_id, run_id in rows:
            self._dirty.whole((dag_id, run_id))
            self._last_run_id = max(self._last_run_id, run_pk)

    def _admit(
        self, session: Session, runs: list[DagRun], dags: Mapping[str, SerializedDag], now: datetime
    ) -> list[DagRun]:
        """Running runs, plus queued ones started (oldest first) while their DAG is under max_active_runs."""
        queued = [r for r in runs if r.state == DagRunState.QUEUED]
        if not queued:
            return runs
        query = (
            select(DagRun.dag_id, func.count())
            .where(DagRun.state == DagRunState.RUNNING, DagRun.dag_id.in_({r.dag_id for r in queued}))
            .group_by(DagRun.dag_id)
        )
        owner = self.options.owner
        query = query.where(DagRun.owner.is_(None) if owner is None else DagRun.owner == owner)
        running = dict(session.execute(query).all())
        admitted = [r for r in runs if r.state != DagRunState.QUEUED]
        order = sorted(queued, key=lambda r: (r.logical_date, r.id), reverse=self.options.newest_first)
        for run in order:
            dag = dags.get(run.dag_id)
            limit = self.options.max_active_runs or (dag.max_active_runs if dag else 0)
            if running.get(run.dag_id, 0) >= limit:
                self._run_waiters.add((run.dag_id, run.run_id))
                continue
            running[run.dag_id] = running.get(run.dag_id, 0) + 1
            transition(session, RUN, [run], Change(DagRunState.RUNNING, now, self.actor, "run started"))
            self.on_event(SchedulerEvent("run.state", run.dag_id, run.run_id, DagRunState.RUNNING.value))
            admitted.append(run)
        return admitted

    def _apply_doomed(self, session: Session, plan: RunPlan, now: datetime) -> int:
        groups: dict[tuple[TI, str], list[TIRow]] = {}
        for ti, state, reason in plan.doomed:
            groups.setdefault((state, reason), []).append(ti)
        for (state, reason), tis in groups.items():
            for ti, _ in transition(session, TASK, tis, Change(state, now, self.actor, reason)):
                self.on_event(SchedulerEvent("task.state", ti.dag_id, ti.run_id, state.value, ti.task_id,
                                             ti.map_index, reason))  # fmt: skip
        return len(plan.doomed)

    def _track_timer(self, ref: RunRef, plan: RunPlan) -> None:
        if plan.next_timer is not None:
            self._timers[ref] = min(plan.next_timer, self._timers.get(ref, plan.next_timer))

    def _finish_run(self, session: Session, run: DagRun, outcome: DagRunState, now: datetime,
                    report: TickReport) -> None:  # fmt: skip
        self._dirty.whole_many(self._past_waiters.pop(run.dag_id, set()))
        self._due_runs.forget([run.dag_id])  # a slot under max_active_runs may have opened
        self._dirty.whole_many(self._run_waiters)
        self._run_waiters.clear()
        if run.state == DagRunState.QUEUED:
            transition(session, RUN, [run], Change(DagRunState.RUNNING, now, self.actor, "run started"))
        transition(session, RUN, [run], Change(outcome, now, self.actor, "every task instance finished"))
        report.finished_runs.append((run.dag_id, run.run_id))
        self.finished_runs.append((run.dag_id, run.run_id))
        self.on_event(SchedulerEvent("run.state", run.dag_id, run.run_id, outcome.value))

    # --- queueing ------------------------------------------------------------------------------------

    def _queue(
        self, session: Session, dags: Mapping[str, SerializedDag], now: datetime, report: TickReport
    ) -> list[WorkItem]:
        """Give free slots to the remembered ready instances, highest priority first; the rest wait."""
        if not self._ready or self.stopping:
            return []
        entries = [entry for waiting in self._ready.values() for entry in waiting.values() if entry.ref[0] in dags]
        if self.executor.slots_free > 0:
            limits = self._limits(session, dags, {entry.ref[0] for entry in entries})
            candidates = [
                Candidate(e.ti.id, e.ref[0], e.ti.pool, e.ti.pool_slots, e.ti.priority_weight, (*e.order, e.ti.id))
                for e in entries
            ]
            chosen_ids = {c.key for c in allocate(candidates, limits)[0]}
        else:
            chosen_ids = set()
        chosen = [e for e in entries if e.ti.id in chosen_ids]
        waiting = [e.ti for e in entries if e.ti.id not in chosen_ids and e.ti.state == TI.NONE]
        if waiting:
            reason = "dependencies met; waiting for a free slot"
            transition(session, TASK, waiting, Change(TI.SCHEDULED, now, self.actor, reason))
        if not chosen:
            return []
        for entry in chosen:
            del self._ready[entry.ref][entry.ti.id]
            if not self._ready[entry.ref]:
                del self._ready[entry.ref]
        change = Change(TI.QUEUED, now, self.actor, "dependencies met and a slot was free")
        moved = transition(session, TASK, [e.ti for e in chosen], change, queue_job=self.job_id or 0)
        queued = {ti.id for ti, _ in moved}
        items = []
        for entry in chosen:
            if entry.ti.id not in queued:  # changed by another process since we decided: decide again
                self._dirty.whole(entry.ref)
                continue
            ti = entry.ti
            self.on_event(SchedulerEvent("task.state", ti.dag_id, ti.run_id, TI.QUEUED.value, ti.task_id, ti.map_index))
            items.append(_work_item(entry.facts, dags[ti.dag_id], ti))
        report.queued += len(items)
        return items

    def _limits(self, session: Session, dags: Mapping[str, SerializedDag], dag_ids: set[str]) -> Limits:
        active = list(
            session.execute(
                select(TaskInstance.dag_id, TaskInstance.pool, func.count(), func.sum(TaskInstance.pool_slots))
                .where(TaskInstance.state.in_(OCCUPYING_SLOT))
                .group_by(TaskInstance.dag_id, TaskInstance.pool)
            )
        )
        per_dag: dict[str, int] = {}
        per_pool: dict[str, int] = {}
        for dag_id, pool, count, slots in active:
            per_dag[dag_id] = per_dag.get(dag_id, 0) + count
            per_pool[pool] = per_pool.get(pool, 0) + int(slots or 0)
        pools = session.execute(select(Pool.name, Pool.slots)).all()
        return Limits(
            executor_slots=self.executor.slots_free,
            dag_slots={d: dags[d].max_active_tasks - per_dag.get(d, 0) for d in dag_ids},
            pool_slots={name: slots - per_pool.get(name, 0) for name, slots in pools},
        )

    # --- housekeeping --------------------------------------------------------------------------------

    def _maybe_heartbeat(self, session: Session, now: datetime) -> None:
        if self.job_id is not None and (self._next_heartbeat is None or now >= self._next_heartbeat):
            jobs.heartbeat(session, self.job_id, now)
            self._next_heartbeat = now + timedelta(seconds=self.heartbeat_s)

    def _check_zombies(self, dags: Mapping[str, SerializedDag], now: datetime) -> None:
        """Running tries whose heartbeat stopped and that no live executor of ours holds: fail or retry them."""
        cutoff = now - timedelta(seconds=self.zombie_threshold_s)
        mine = {(key, n) for key, n in self.executor.running()}
        with session_scope(self.engine) as session:
            stale = session.scalars(
                select(TaskInstance).where(TaskInstance.state == TI.RUNNING, TaskInstance.last_heartbeat < cutoff)
            ).all()
            zombies = [
                (TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), ti.try_number)
                for ti in stale
                if (TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), ti.try_number) not in mine
            ]
            if zombies:
                record_lost_tries(session, zombies, dags=dags, now=now, actor=self.actor,
                                  reason=f"no heartbeat for over {self.zombie_threshold_s:g}s (zombie)")  # fmt: skip
                self._dirty.whole_many((k.dag_id, k.run_id) for k, _ in zombies)

    def next_wakeup(self, now: datetime) -> datetime:
        """The latest moment the loop may sleep until: a retry due, a run due, a scan, a heartbeat."""
        candidates = [now + timedelta(seconds=self.heartbeat_s)]
        candidates += [t for t in (self._next_full_scan, self._next_heartbeat) if t is not None]
        candidates += list(self._timers.values())
        look = getattr(self.dag_source, "next_look", None)
        if look is not None:
            candidates.append(look)
        due = self._due_runs.earliest() if self.options.create_runs else None
        if due is not None:
            candidates.append(due)
        return max(now, min(candidates))

    @property
    def has_pending_work(self) -> bool:
        return bool(self._dirty or self._pending_events)

    def wait(self, until: datetime) -> None:
        """Sleep until `until` or until the executor has news (a try ended): that wakes us at once.

        Idle sleeps are capped at a second so a stop request (a signal) is noticed promptly.
        """
        timeout = min(MAX_IDLE_WAIT_S, max(0.0, (until - self.clock.now()).total_seconds()))
        if self._dirty or self._pending_events or self.stopping:
            timeout = 0.0
        self._pending_events.extend(self.executor.events(timeout))


def _run_facts(run: DagRun) -> RunFacts:
    return RunFacts(
        run_type=run.run_type.value,
        logical_date=run.logical_date,
        data_interval_start=run.data_interval_start or run.logical_date,
        data_interval_end=run.data_interval_end or run.logical_date,
        run_after=run.run_after,
        conf=dict(run.conf or {}),
    )


def _work_item(facts: RunFacts, dag: SerializedDag, ti: TIRow) -> WorkItem:
    return WorkItem(
        key=TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index),
        try_number=ti.try_number,
        fileloc=dag.fileloc,
        run=facts,
        queue=ti.queue,
        priority=ti.priority_weight,
        pool_slots=ti.pool_slots,
        queued_by_job_id=ti.queued_by_job_id,
    )
