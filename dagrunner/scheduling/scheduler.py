"""The scheduler: `tick(now)` does one round of work; `run()` loops ticks, woken by executor events.

One tick: take the executor's events (which runs changed), take the DAGs of the latest finished parse of
the folder (parsing itself never happens in the tick: `dag_source`), create due runs, then in one short
write transaction decide the runs that changed (cascade upstream_failed/skipped, expand mapped tasks,
queue what is ready within the limits, finish runs), and after the commit hand the queued tries to the
executor. Time is always an argument, so tests drive `tick()` with a fake clock.

Two things keep a tick's cost proportional to what changed rather than to what is active: a finished
try marks only its own task and its downstream for deciding again, and instances that are ready but
found no free slot are remembered, so a freed slot is given out without deciding their runs again. A
full scan every `full_scan_s` rebuilds both from the database, which is how changes made by other
processes (`tasks clear`, another scheduler) are picked up. That memory, and its rules, is
`bookkeeping.Bookkeeping`; the SQL is in `persistence.queries`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from dagrunner.clock import Clock
from dagrunner.execution.base import Executor, RunFacts, TaskKey, TryEvent, WorkItem
from dagrunner.execution.worker_config import WorkerConfig
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence import queries
from dagrunner.persistence.audit import RUN, TASK, Change, TIRow, load_ti_rows, transition
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRun, JobType
from dagrunner.scheduling import dag_callbacks, deadlocks, jobs, run_timeouts
from dagrunner.scheduling.approvals import Approvals
from dagrunner.scheduling.bookkeeping import Bookkeeping, FinishedRuns, ReadyTry
from dagrunner.scheduling.breakers import PoolGates, admit_probes, gate_pools
from dagrunner.scheduling.compensation import compensate
from dagrunner.scheduling.dag_source import DagSource
from dagrunner.scheduling.dagruns import add_instances, continue_from, create_due_runs
from dagrunner.scheduling.due_runs import DueLookups
from dagrunner.scheduling.evaluation import RunPlan, plan_run
from dagrunner.scheduling.expansion import expand_mapped
from dagrunner.scheduling.focus import RunRef
from dagrunner.scheduling.history import past_states_for
from dagrunner.scheduling.readiness import Candidate, Limits, allocate
from dagrunner.scheduling.recovery import adopt_dead_jobs, fail_lost_tries, recover_orphans
from dagrunner.states import FINISHED, DagRunState, TaskInstanceState

__all__ = ["ReadyTry", "RunRef", "Scheduler", "SchedulerEvent", "SchedulerOptions", "TickReport"]

log = logging.getLogger(__name__)
MAX_IDLE_WAIT_S = 1.0
#: When another scheduler holds the queueing lock (PostgreSQL), try queueing again this much later.
QUEUEING_LOCK_RETRY_S = 0.05
#: PostgreSQL's deadlock_detected: it rolled our transaction back, so it may simply be tried again.
PG_DEADLOCK = "40P01"
#: Why a try an executor reported lost failed, when the executor's event says nothing more.
LOST_TRY_REASON = "the worker process running it died"


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


@dataclass
class TickReport:
    created_runs: int = 0
    queued: int = 0
    decided: int = 0
    finished_runs: list[RunRef] = field(default_factory=list)
    events: int = 0
    #: Queueing was put off because another scheduler held the queueing lock (PostgreSQL).
    queueing_deferred: bool = False

    @property
    def did_work(self) -> bool:
        return bool(
            self.created_runs
            or self.queued
            or self.decided
            or self.finished_runs
            or self.events
            or self.queueing_deferred
        )


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
        zombie_threshold_s: float = 300.0,
        heartbeat_s: float = 5.0,
        adopt_after_s: float = 30.0,
        options: SchedulerOptions | None = None,
        on_event: Callable[[SchedulerEvent], None] | None = None,
        db_unreachable_timeout_s: float = 300.0,
        callbacks: WorkerConfig | None = None,
    ) -> None:
        """How many tries run at once is the executor's business (its `slots_free`), not the scheduler's.
        `db_unreachable_timeout_s`: how long the loop retries ticks through a database outage.
        `callbacks`: how to run DAG-level callbacks (None: requested, but left to another scheduler).
        `adopt_after_s`: another job silent this long is declared dead and its work adopted (`recovery`)."""
        self.engine = engine
        self.executor = executor
        self.dag_source = dag_source
        self.clock = clock
        self.actor = actor
        self.zombie_threshold_s = zombie_threshold_s
        self.heartbeat_s = heartbeat_s
        self.adopt_after_s = adopt_after_s
        self.options = options or SchedulerOptions()
        self.on_event = on_event or (lambda _event: None)
        self.db_unreachable_timeout_s = db_unreachable_timeout_s
        self.job_id: int | None = None
        self.dag_callbacks = dag_callbacks.DagCallbacks(callbacks, actor=actor)
        self.finished_runs = FinishedRuns()
        self.bookkeeping = Bookkeeping(full_scan_s=self.options.full_scan_s, full_scan_runs=self.options.full_scan_runs)
        self._next_zombie_check: datetime | None = None
        self._next_adopt_check: datetime | None = None
        self._tick_failed = False
        self._next_heartbeat: datetime | None = None
        self._queue_again_at: datetime | None = None
        self._stop = threading.Event()
        self.approvals = Approvals(actor=actor, rescan_s=self.options.full_scan_s)  # approval timeouts

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Register this job, take over what dead schedulers left behind, and start the executor."""
        now = self.clock.now()
        with session_scope(self.engine) as session:
            self.job_id = jobs.register_job(session, self.options.job_type, now, actor=self.actor).id
        with session_scope(self.engine) as session:
            recover_orphans(session, now=now, my_job_id=self.job_id, actor=self.actor,
                            zombie_threshold_s=self.zombie_threshold_s, dags=self.dag_source.dags())  # fmt: skip
            self.dag_callbacks.adopt(session, self.job_id, now)
        self.executor.start()
        self._next_heartbeat = now + timedelta(seconds=self.heartbeat_s)

    def request_stop(self) -> None:
        self._stop.set()

    def nudge(self) -> None:
        """Another process created runs (a message became an asset event): end the current wait at once,
        so the next tick's `_notice_new_runs` finds them and their first tasks start now. Thread-safe."""
        self.executor.wake()

    def pause(self, seconds: float) -> None:
        """Wait `seconds` (cut short by a stop request) without taking executor events: the loop's wait
        between retries of a tick that a database outage failed."""
        self._stop.wait(seconds)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def shutdown(self, grace_s: float) -> list[tuple[TaskKey, int]]:
        """Stop the executor (waiting up to `grace_s` for running tries) and record what was left."""
        self.dag_source.close()
        left = self.executor.shutdown(grace_s)
        self.dag_callbacks.shutdown(grace_s)
        self.bookkeeping.add_events(self.executor.events(0))
        now = self.clock.now()
        with session_scope(self.engine) as session:
            self._apply_events(session, now, self.dag_source.dags(), self.bookkeeping.take_events())
            if left:
                reason = f"the scheduler stopped and killed it after a {grace_s:g}s grace period"
                fail_lost_tries(session, left, dags=self.dag_source.dags(), now=now, actor=self.actor, reason=reason,
                                interrupted=True)  # fmt: skip
            if self.job_id is not None:
                jobs.end_job(session, self.job_id, now, actor=self.actor, reason="stopped")
        return left

    # --- one tick ------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickReport:
        """Apply what happened, create due runs, decide the runs that changed, hand out free slots.

        When the transaction fails (the database connection was lost) nothing of it happened: its events
        are kept to apply again, the next tick is a full scan (`Bookkeeping.rolled_back`), and no queued
        try is handed to the executor, so the loop may simply tick again."""
        now = now or self.clock.now()
        report = TickReport()
        self._queue_again_at = None
        self.bookkeeping.add_events(self.executor.events(0))
        self.dag_source.refresh(now)  # never waits for an import: takes the latest finished parse
        dags = self.dag_source.dags()
        events = self.bookkeeping.take_events()
        try:
            with session_scope(self.engine) as session:
                report.events = self._apply_events(session, now, dags, events)
                if self.options.create_runs and not self.stopping:
                    report.created_runs = self._create_runs(session, dags, now)
                self.bookkeeping.decide_again(self.approvals.tick(session, now))
                items = self._schedule(session, dags, now, report)
                self._maybe_heartbeat(session, now)
        except BaseException:
            self.bookkeeping.rolled_back(events)
            self._tick_failed = True
            raise
        if self._tick_failed:  # after an outage every job's heartbeat is old: give the others time to beat
            self._tick_failed = False
            self._next_adopt_check = now + timedelta(seconds=self.adopt_after_s)
        for ref in report.finished_runs:  # counted once committed: a rolled-back finish is decided again
            self.finished_runs.add(ref)
        for item in items:
            self.executor.submit(item)
        self.dag_callbacks.dispatch(self.engine, self.job_id, now)
        self._maybe_check_zombies(dags, now)
        self._maybe_adopt(dags, now)
        return report

    def _apply_events(
        self, session: Session, now: datetime, dags: Mapping[str, SerializedDag], events: list[TryEvent]
    ) -> int:
        """Mark what each executor event may have changed; record the tries whose worker died, each with
        its executor's explanation. Returns how many events there were."""
        lost: list[tuple[TaskKey, int, str]] = []
        for event in events:
            key = event.key
            dag = dags.get(key.dag_id)
            spec = dag.task_dict.get(key.task_id) if dag is not None else None
            # a finished try changes what its downstream may do; anything else may change the whole run
            tasks = (key.task_id, *spec.downstream_task_ids) if event.kind == "finished" and spec else None
            self.bookkeeping.try_changed((key.dag_id, key.run_id), tasks)
            if event.kind == "lost":
                lost.append((key, event.try_number, event.detail or LOST_TRY_REASON))
            elif event.kind == "finished" and event.state:
                self.on_event(SchedulerEvent("task.state", key.dag_id, key.run_id, event.state, key.task_id,
                                             key.map_index, event.detail))  # fmt: skip
        for reason in dict.fromkeys(why for _, _, why in lost):  # the executor's own explanation, in order
            tries = [(key, try_number) for key, try_number, why in lost if why == reason]
            fail_lost_tries(session, tries, dags=self.dag_source.dags(), now=now, actor=self.actor, reason=reason)
        return len(events)

    def _create_runs(self, session: Session, dags: Mapping[str, SerializedDag], now: datetime) -> int:
        lookups = DueLookups(partial(continue_from, session), partial(queries.paused_dag_ids, session))
        due = self.bookkeeping.due_dags(dags, now, lookups)
        if not due:
            return 0
        # A bounded batch per tick: one long write transaction would hold SQLite's lock against the
        # workers; the rest stay due and the next tick (at once) takes the next batch.
        due = dict(sorted(due.items())[: self.options.max_dags_per_tick])
        mine = queries.lock_dags_for_run_creation(session, due)
        if len(mine) < len(due):  # another scheduler is creating runs of the others: they stay due
            self._queue_again_at = now + timedelta(seconds=QUEUEING_LOCK_RETRY_S)
            due = {dag_id: dag for dag_id, dag in due.items() if dag_id in mine}
        created = create_due_runs(session, due, now=now, actor=self.actor)
        self.bookkeeping.recompute_due(due)
        # max_active_runs reached: wait until one of their runs finishes
        self.bookkeeping.hold_due(self.bookkeeping.due_dags(due, now, lookups))
        self.bookkeeping.decide_again((run.dag_id, run.run_id) for run in created)
        for run in created:
            self.on_event(SchedulerEvent("run.created", run.dag_id, run.run_id, run.state.value))
        return len(created)

    # --- deciding ------------------------------------------------------------------------------------

    def _schedule(
        self, session: Session, dags: Mapping[str, SerializedDag], now: datetime, report: TickReport
    ) -> list[WorkItem]:
        """Find the runs to decide, start the queued ones allowed to start, decide them, then queue."""
        runs, focus = self._runs_to_decide(session, now)
        runs = self._admit(session, runs, dags, now, report)
        self._decide(session, runs, focus, dags, now, report)
        return self._queue(session, dags, now, report)

    def _runs_to_decide(self, session: Session, now: datetime) -> tuple[list[DagRun], dict[RunRef, set[str] | None]]:
        """The runs that changed (events, new runs, due timers) and which of their tasks to decide; or
        every active run, each whole, on a full scan."""
        full = self.bookkeeping.start_tick(now)
        self._notice_new_runs(session)
        if not full and not self.bookkeeping.has_runs_to_decide:
            return [], {}
        focus = self.bookkeeping.take_focus(full)
        owner, only = self.options.owner, self.options.only_runs
        runs = queries.runs_to_decide(session, owner=owner, refs=None if full else list(focus), only=only)
        if full:
            self.bookkeeping.full_scan_found(len(runs))
        return runs, focus

    def _notice_new_runs(self, session: Session) -> None:
        """Runs other processes created (`dags trigger`) since we last looked: one indexed query per tick,
        so a triggered run starts at once instead of at the next full scan."""
        watermark = self.bookkeeping.run_watermark
        if watermark is None:
            self.bookkeeping.watch_runs_after(queries.newest_run_pk(session))
        else:
            self.bookkeeping.runs_seen(queries.runs_created_after(session, watermark))

    def _admit(
        self, session: Session, runs: list[DagRun], dags: Mapping[str, SerializedDag], now: datetime,
        report: TickReport,
    ) -> list[DagRun]:  # fmt: skip
        """Running runs, plus queued ones started (oldest first) while their DAG is under max_active_runs.

        On PostgreSQL the count and the starts happen under the queueing lock, so that several schedulers
        together keep max_active_runs (as they keep pool slots in `_choose`)."""
        queued = [r for r in runs if r.state == DagRunState.QUEUED]
        if not queued:
            return runs
        if not queries.try_lock_queueing(session):  # another scheduler is counting runs: start them later
            self.bookkeeping.decide_again((r.dag_id, r.run_id) for r in queued)
            self._defer(now, report)
            return [r for r in runs if r.state != DagRunState.QUEUED]
        running = queries.running_run_counts(session, {r.dag_id for r in queued}, owner=self.options.owner)
        admitted = [r for r in runs if r.state != DagRunState.QUEUED]
        for run in sorted(queued, key=lambda r: (r.logical_date, r.id), reverse=self.options.newest_first):
            dag = dags.get(run.dag_id)
            limit = self.options.max_active_runs or (dag.max_active_runs if dag else 0)
            if running.get(run.dag_id, 0) >= limit:
                self.bookkeeping.hold_run((run.dag_id, run.run_id))
                continue
            running[run.dag_id] = running.get(run.dag_id, 0) + 1
            transition(session, RUN, [run], Change(DagRunState.RUNNING, now, self.actor, "run started"))
            self.on_event(SchedulerEvent("run.state", run.dag_id, run.run_id, DagRunState.RUNNING.value))
            admitted.append(run)
        return admitted

    def _defer(self, now: datetime, report: TickReport) -> None:
        """Another scheduler holds the queueing lock (PostgreSQL): this tick starts and queues nothing more,
        and the loop comes back in a moment rather than at its next event."""
        self._queue_again_at = now + timedelta(seconds=QUEUEING_LOCK_RETRY_S)
        report.queueing_deferred = True

    def _decide(self, session: Session, runs: list[DagRun], focus: Mapping[RunRef, set[str] | None],
                dags: Mapping[str, SerializedDag], now: datetime, report: TickReport) -> None:  # fmt: skip
        """Decide each run (its focused tasks only, when it has a focus) from one load of their instances."""
        tis_by_run = load_ti_rows(session, [(r.dag_id, r.run_id) for r in runs]) if runs else {}
        for run in runs:
            dag = dags.get(run.dag_id)
            if dag is None:
                continue  # its file is gone or broken: leave the run as it is until the DAG is back
            ref = (run.dag_id, run.run_id)
            self._decide_run(session, dag, run, tis_by_run.get(ref, []), focus.get(ref), now, report)

    def _decide_run(self, session: Session, dag: SerializedDag, run: DagRun, tis: list[TIRow],
                    tasks: set[str] | None, now: datetime, report: TickReport) -> None:  # fmt: skip
        """Plan one run and carry the plan out: expand, doom, remember what waits, finish the run."""
        if self._follow_dag_changes(session, dag, run, tis, now):
            return  # instances were added: decided whole next tick, with them
        if (timed_out := run_timeouts.overdue(dag, run, now)) is not None:
            self._time_out(session, dag, run, tis, timed_out, now, report)
            return
        plan = plan_run(dag, tis, now=now, past_states=past_states_for(session, dag, run), focus=tasks)
        plan.next_timer = run_timeouts.earliest(plan.next_timer, run_timeouts.deadline(dag, run))
        if dag.compensation_task_ids and compensate(session, dag, run, tis, plan, now=now, actor=self.actor):
            self.bookkeeping.decide_again([(run.dag_id, run.run_id)])  # the rollback began: decide it with them
        if plan.to_expand:
            expand_mapped(session, dag, run, plan.to_expand, actor=self.actor, now=now)
        report.decided += self._apply_doomed(session, plan, now)
        ref = (run.dag_id, run.run_id)
        facts = _run_facts(run) if plan.ready else None
        self.bookkeeping.planned(ref, tasks, plan, order=(run.logical_date, run.id), facts=facts)
        if plan.outcome is not None and not plan.to_expand:
            self._finish_run(session, run, plan.outcome, now, report, dag=dag)
        elif (stuck := deadlocks.find_deadlock(session, dag, run, tis, plan, now=now, focus=tasks)) is not None:
            for state, reason, blocked in stuck.moves():
                self._move_instances(session, blocked, state, reason, now)
            if dag.compensation_task_ids:  # the run has failed: decided again, its rollback begins
                self.bookkeeping.decide_again([ref])
                return
            self._finish_run(session, run, stuck.ending.state, now, report, dag=dag, ending=stuck.ending)

    def _time_out(self, session: Session, dag: SerializedDag, run: DagRun, tis: list[TIRow], ending: dag_callbacks.RunEnding,
                  now: datetime, report: TickReport) -> None:  # fmt: skip
        """A run past its dagrun_timeout: skip what it had not finished and fail it, after rolling back the
        steps that succeeded when its DAG has compensations (a timed-out run has failed for good, and its
        compensations are not timed out: they are how it ends)."""
        undo_tasks = dag.compensation_task_ids
        unfinished = [ti for ti in run_timeouts.unfinished(tis) if ti.task_id not in undo_tasks]
        self._move_instances(session, unfinished, TaskInstanceState.SKIPPED, ending.reason, now)
        if undo_tasks:
            plan = RunPlan(outcome=DagRunState.FAILED)
            if compensate(session, dag, run, tis, plan, now=now, actor=self.actor):
                self.bookkeeping.decide_again([(run.dag_id, run.run_id)])
                return
            if plan.outcome is None:  # the rollback goes on: queue the compensation that may run now
                facts = _run_facts(run) if plan.ready else None
                self.bookkeeping.planned((run.dag_id, run.run_id), None, plan, order=(run.logical_date, run.id),
                                         facts=facts)  # fmt: skip
                return
        self._finish_run(session, run, ending.state, now, report, dag=dag, ending=ending)

    def _follow_dag_changes(
        self, session: Session, dag: SerializedDag, run: DagRun, tis: list[TIRow], now: datetime
    ) -> bool:
        """Bring an unfinished run in line with the DAG's current version, as Airflow does: unfinished
        instances of tasks no longer in the DAG become `removed` (finished, neither failing nor succeeding
        the run; a queued or running try of one is fenced out when it reports), a removed instance whose
        task is back waits again (`none`), and tasks added to the DAG get an instance. `tis` is updated in
        place. Returns whether instances were added (the run is then decided again next tick)."""
        tasks = dag.task_dict
        present: set[str] = set()
        gone: list[TIRow] = []
        back: list[TIRow] = []
        for ti in tis:
            present.add(ti.task_id)
            if ti.task_id not in tasks:
                if ti.state not in FINISHED:
                    gone.append(ti)
            elif ti.state == TaskInstanceState.REMOVED:
                back.append(ti)
        self._move_instances(session, gone, TaskInstanceState.REMOVED, "the task is no longer in the DAG", now)
        self._move_instances(session, back, TaskInstanceState.NONE, "the task is back in the DAG", now)
        missing = [t for t in dag.run_tasks if t.task_id not in present]  # undo tasks wait for a failure
        if not missing:
            return False
        add_instances(session, run, missing, actor=self.actor, now=now)
        self.bookkeeping.decide_again([(run.dag_id, run.run_id)])
        return True

    def _move_instances(
        self, session: Session, tis: list[TIRow], state: TaskInstanceState, reason: str, now: datetime
    ) -> None:
        if tis:
            for ti, _ in transition(session, TASK, tis, Change(state, now, self.actor, reason)):
                self.on_event(SchedulerEvent("task.state", ti.dag_id, ti.run_id, state.value, ti.task_id,
                                             ti.map_index, reason))  # fmt: skip

    def _apply_doomed(self, session: Session, plan: RunPlan, now: datetime) -> int:
        groups: dict[tuple[TaskInstanceState, str], list[TIRow]] = {}
        for ti, state, reason in plan.doomed:
            groups.setdefault((state, reason), []).append(ti)
        for (state, reason), tis in groups.items():
            for ti, _ in transition(session, TASK, tis, Change(state, now, self.actor, reason)):
                self.on_event(SchedulerEvent("task.state", ti.dag_id, ti.run_id, state.value, ti.task_id,
                                             ti.map_index, reason))  # fmt: skip
        return len(plan.doomed)

    def _finish_run(self, session: Session, run: DagRun, outcome: DagRunState, now: datetime,
                    report: TickReport, *, dag: SerializedDag | None = None,
                    ending: dag_callbacks.RunEnding | None = None) -> None:  # fmt: skip
        """End the run (`ending`: why, when not because every instance finished) and request its DAG
        callback, if `dag` has one for how it ended."""
        ending = ending or dag_callbacks.RunEnding.finished(outcome)
        ref = (run.dag_id, run.run_id)
        self.bookkeeping.run_finished(ref)
        if run.state == DagRunState.QUEUED:
            transition(session, RUN, [run], Change(DagRunState.RUNNING, now, self.actor, "run started"))
        transition(session, RUN, [run], Change(outcome, now, self.actor, ending.reason))
        if dag is not None and dag_callbacks.request(session, dag, run, ending, job_id=self.job_id, now=now,
                                                     actor=self.actor) is not None:  # fmt: skip
            self.dag_callbacks.requested()
        report.finished_runs.append(ref)
        self.on_event(SchedulerEvent("run.state", run.dag_id, run.run_id, outcome.value))

    # --- queueing ------------------------------------------------------------------------------------

    def _queue(
        self, session: Session, dags: Mapping[str, SerializedDag], now: datetime, report: TickReport
    ) -> list[WorkItem]:
        """Give free slots to the remembered ready instances, highest priority first; the rest wait."""
        if not self.bookkeeping.has_ready or self.stopping:
            return []
        entries = self.bookkeeping.ready_of(dags)
        if not entries:
            return []
        chosen = self._choose(session, dags, entries, now)
        if chosen is None:  # another scheduler is queueing: leave everything as it is and come back soon
            self._defer(now, report)
            return []
        chosen_ids = {e.ti.id for e in chosen}
        self._mark_waiting(
            session, [e.ti for e in entries if e.ti.id not in chosen_ids and e.ti.state == TaskInstanceState.NONE], now
        )
        if not chosen:
            return []
        self.bookkeeping.take_ready(chosen)
        change = Change(TaskInstanceState.QUEUED, now, self.actor, "dependencies met and a slot was free")
        moved = transition(session, TASK, [e.ti for e in chosen], change, queue_job=self.job_id or 0)
        queued = {ti.id for ti, _ in moved}
        items = []
        for entry in chosen:
            if entry.ti.id not in queued:  # changed by another process since we decided: decide again
                self.bookkeeping.decide_again([entry.ref])
                continue
            ti = entry.ti
            self.on_event(
                SchedulerEvent(
                    "task.state", ti.dag_id, ti.run_id, TaskInstanceState.QUEUED.value, ti.task_id, ti.map_index
                )
            )
            items.append(_work_item(entry.facts, dags[ti.dag_id], ti))
        report.queued += len(items)
        return items

    def _choose(
        self, session: Session, dags: Mapping[str, SerializedDag], entries: list[ReadyTry], now: datetime
    ) -> list[ReadyTry] | None:
        """The entries that get a slot now, by the executor's free slots, the DAGs' and the pools' limits;
        None when another scheduler holds the queueing lock (its counts would be stale by its commit)."""
        if self.executor.slots_free <= 0:
            return []
        if not queries.try_lock_queueing(session):
            return None
        limits, gates = self._limits(session, dags, {entry.ref[0] for entry in entries}, now)
        candidates = [
            Candidate(e.ti.id, e.ref[0], e.ti.pool, e.ti.pool_slots, e.ti.priority_weight, (*e.order, e.ti.id))
            for e in entries
        ]
        labels: dict[object, str] = {e.ti.id: e.ti.label() for e in entries}
        chosen = admit_probes(session, allocate(candidates, limits)[0], gates, label=labels.__getitem__,
                              actor=self.actor, now=now)  # fmt: skip
        self.bookkeeping.wake_at(gates.wake)  # an open circuit's cool-down end
        chosen_ids = {c.key for c in chosen}
        return [e for e in entries if e.ti.id in chosen_ids]

    def _mark_waiting(self, session: Session, tis: list[TIRow], now: datetime) -> None:
        """Ready instances left without a slot show as `scheduled` (once: later ticks find them so)."""
        if tis:
            reason = "dependencies met; waiting for a free slot"
            transition(session, TASK, tis, Change(TaskInstanceState.SCHEDULED, now, self.actor, reason))

    def _limits(
        self, session: Session, dags: Mapping[str, SerializedDag], dag_ids: set[str], now: datetime
    ) -> tuple[Limits, PoolGates]:
        per_dag, per_pool = queries.slots_in_use(session)
        limits = Limits(
            executor_slots=self.executor.slots_free,
            dag_slots={d: dags[d].max_active_tasks - per_dag.get(d, 0) for d in dag_ids},
            pool_slots={name: slots - per_pool.get(name, 0) for name, slots in queries.pool_sizes(session).items()},
        )
        return limits, gate_pools(session, limits, per_pool, now)

    # --- housekeeping --------------------------------------------------------------------------------

    def _maybe_heartbeat(self, session: Session, now: datetime) -> None:
        if self.job_id is None or (self._next_heartbeat is not None and now < self._next_heartbeat):
            return
        self._next_heartbeat = now + timedelta(seconds=self.heartbeat_s)
        if not jobs.heartbeat(session, self.job_id, now):
            self._rejoin(session, now)

    def _rejoin(self, session: Session, now: datetime) -> None:
        """Another scheduler declared this job dead (it was silent past `adopt_after_s`: a stall, a long
        outage) and took over its queued tries, which are fenced against us now. Go on as a new job rather
        than stop: the tries our executor runs record their own outcomes, and a full scan follows."""
        old = self.job_id
        self.job_id = jobs.register_job(session, self.options.job_type, now, actor=self.actor).id
        log.warning("scheduler job %s was declared dead by another scheduler; continuing as job %s", old, self.job_id)
        self.bookkeeping.rescan()  # what it remembers may be stale: decide everything again

    def _maybe_adopt(self, dags: Mapping[str, SerializedDag], now: datetime) -> None:
        """Every heartbeat: take over the work of schedulers (and other jobs) found dead, in one transaction.
        Daemons only: a backfill or `dags test` is short-lived and would leave adopted callbacks behind."""
        if self.options.job_type != JobType.SCHEDULER or self.job_id is None:
            return
        if self._next_adopt_check is not None and now < self._next_adopt_check:
            return
        self._next_adopt_check = now + timedelta(seconds=self.heartbeat_s)
        try:
            with session_scope(self.engine) as session:
                adopted = adopt_dead_jobs(session, now=now, my_job_id=self.job_id, adopt_after_s=self.adopt_after_s,
                                          zombie_threshold_s=self.zombie_threshold_s, actor=self.actor, dags=dags)  # fmt: skip
                if adopted:
                    self.dag_callbacks.adopt(session, self.job_id, now)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != PG_DEADLOCK:
                raise
            log.info("adoption rolled back (deadlock with another scheduler's tick); trying again next heartbeat")
            return
        for adoption in adopted:
            log.warning("adopted the work of dead %s job %s (pid %s on %s): %s", adoption.job_type,
                        adoption.job_id, adoption.pid, adoption.host, adoption.settled.counts)  # fmt: skip
            self.bookkeeping.decide_again(adoption.settled.runs)

    def _maybe_check_zombies(self, dags: Mapping[str, SerializedDag], now: datetime) -> None:
        if self._next_zombie_check is None or now >= self._next_zombie_check:
            self._next_zombie_check = now + timedelta(seconds=self.options.zombie_check_s)
            self._check_zombies(dags, now)

    def _check_zombies(self, dags: Mapping[str, SerializedDag], now: datetime) -> None:
        """Running tries whose heartbeat stopped and that no live executor of ours holds: fail or retry them."""
        cutoff = now - timedelta(seconds=self.zombie_threshold_s)
        mine = {(key, n) for key, n in self.executor.running()}
        with session_scope(self.engine) as session:
            stale = queries.stale_running_instances(session, cutoff)
            tries = [(TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), ti.try_number) for ti in stale]
            zombies = [t for t in tries if t not in mine]
            if zombies:
                fail_lost_tries(session, zombies, dags=dags, now=now, actor=self.actor,
                                  reason=f"no heartbeat for over {self.zombie_threshold_s:g}s (zombie)")  # fmt: skip
                self.bookkeeping.decide_again((k.dag_id, k.run_id) for k, _ in zombies)

    def next_wakeup(self, now: datetime) -> datetime:
        """The latest moment the loop may sleep until: a retry due, a run due, a scan, a heartbeat, a look
        at the DAG folder."""
        candidates = [now + timedelta(seconds=self.heartbeat_s)]
        candidates += [t for t in (self._next_heartbeat, self.dag_source.next_look, self._queue_again_at) if t]
        candidates += [self.approvals.next_check] if self.approvals.next_check else []
        candidates += self.bookkeeping.next_wakeups(with_due_runs=self.options.create_runs)
        return max(now, min(candidates))

    @property
    def has_pending_work(self) -> bool:
        """Something to decide or apply, or a parse of the DAG folder still running (it may add DAGs)."""
        return self.bookkeeping.has_pending_work or self.dag_source.parsing

    def wait(self, until: datetime) -> None:
        """Sleep until `until` or until the executor has news (a try ended): that wakes us at once.

        Idle sleeps are capped at a second so a stop request (a signal) is noticed promptly.
        """
        timeout = min(MAX_IDLE_WAIT_S, max(0.0, (until - self.clock.now()).total_seconds()))
        if self.bookkeeping.has_pending_work or self.stopping:
            timeout = 0.0
        self.bookkeeping.add_events(self.executor.events(timeout))


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
        inlets=_inlet_names(dag, ti.task_id),
    )


def _inlet_names(dag: SerializedDag, task_id: str) -> tuple[str, ...]:
    spec = dag.task_dict.get(task_id)
    return tuple(node["name"] for node in spec.inlets if node.get("type") == "asset") if spec is not None else ()
