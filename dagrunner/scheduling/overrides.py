"""Administrative overrides: Airflow's "mark success / mark failed", for task instances and for runs.

Every change goes through `audit.transition()` with the person's actor and reason, all in the caller's one
transaction: a plan is made first (`plan_task_state`, `plan_run_state`: what would change, for the
confirmation prompt), then carried out (`apply_task_state`, `apply_run_state`). A move that makes no sense
is refused with one line naming the value, before anything is written: a run that does not exist, a task
the DAG lacks, a state the instance is in already, a move `states.TASK_TRANSITIONS` forbids.

Tasks (`dagrunner tasks set-state ... success|failed|skipped`), as in Airflow:
- the named instance (every map index, unless one is given) and, with `--downstream` / `--upstream`, every
  instance of the tasks below / above it in the run (transitively) move to the state; relatives already in
  it are left out, relatives the state machine will not move (a `removed` one) are left alone and listed;
- marking success or skipped resumes what the failure held up: instances downstream of the marked ones (and
  not marked themselves) that are `failed` or `upstream_failed` are cleared (`none`, a fresh set of retries)
  so the scheduler decides them again (Airflow clears them the same way);
- a finished run with something changed is queued again, so the scheduler decides its outcome anew by the
  usual rule (marking the failed leaf of a failed run success makes the run succeed).

Runs (`dagrunner runs set-state ... success|failed`), as Airflow's mark run success / failed:
- success: every instance not `success`, `skipped` or `removed` becomes `success` (failed ones too: the
  person says the run's work is done), then the run;
- failed: `running` instances become `failed`, every other unfinished one `skipped` (a `restarting` one,
  which may not be skipped, `failed`), finished ones stay; then the run.

A try that is running when its instance is marked is stopped: its worker's next heartbeat finds the
instance no longer running that try and kills its process group; its late outcome is fenced out and its
`task_try` row closed with a `try.closed` audit row (`execution.recording`). A queued try never starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import networkx as nx
from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.errors import IllegalTransitionError, InvalidOverrideError, NotFoundError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import RUN, TASK, Change, record_event, transition
from dagrunner.persistence.models import DagRun, TaskInstance
from dagrunner.persistence.queries import get_run
from dagrunner.states import FAILED_STATES, FINISHED, RUN_FINISHED, DagRunState, TaskInstanceState

TASK_STATES = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED, TaskInstanceState.SKIPPED)
RUN_STATES = (DagRunState.SUCCESS, DagRunState.FAILED)
_RESUMING = (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED)


@dataclass(frozen=True)
class Move:
    """One instance to move: from the state it is in now to `new`."""

    ti: TaskInstance
    new: TaskInstanceState
    old: TaskInstanceState = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "old", TaskInstanceState(self.ti.state))  # kept: applying moves `ti`

    def describe(self) -> str:
        suffix = " (cleared, runs again)" if self.new == TaskInstanceState.NONE else ""
        return f"{_label(self.ti)}: {self.old.value} -> {self.new.value}{suffix}"

    def to_json(self) -> dict[str, object]:
        return {
            "task_id": self.ti.task_id,
            "map_index": self.ti.map_index,
            "old": self.old.value,
            "new": self.new.value,
        }


@dataclass
class OverridePlan:
    """What an override will change (shown before asking, applied as it is)."""

    run: DagRun
    moves: list[Move]
    #: Downstream instances a success/skip mark clears so they run again (-> none).
    resumed: list[Move] = field(default_factory=list)
    #: Relatives the state machine will not move, with why.
    left: list[tuple[TaskInstance, str]] = field(default_factory=list)
    #: The run's own change (`runs set-state`), or None.
    run_state: DagRunState | None = None
    run_was: DagRunState = field(init=False)

    def __post_init__(self) -> None:
        self.run_was = DagRunState(self.run.state)

    @property
    def requeues_run(self) -> bool:
        """A finished run whose instances change is decided again (`tasks set-state`)."""
        return self.run_state is None and self.run_was in RUN_FINISHED and bool(self.moves or self.resumed)

    def lines(self) -> list[str]:
        """What will change, one line each, for the confirmation prompt and the command's report."""
        out = [m.describe() for m in (*self.moves, *self.resumed)]
        out += [f"{_label(ti)}: left {ti.state.value} ({why})" for ti, why in self.left]
        if self.run_state is not None:
            out.append(f"run {self.run.run_id}: {self.run_was.value} -> {self.run_state.value}")
        elif self.requeues_run:
            out.append(f"run {self.run.run_id}: {self.run_was.value} -> queued (decided again)")
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "dag_id": self.run.dag_id, "run_id": self.run.run_id,
            "changed": [m.to_json() for m in self.moves], "cleared": [m.to_json() for m in self.resumed],
            "left": [{"task_id": ti.task_id, "map_index": ti.map_index, "state": ti.state.value, "why": why}
                     for ti, why in self.left],
            "run": {"old": self.run_was.value, "new": self.run_state.value if self.run_state is not None else
                    (DagRunState.QUEUED.value if self.requeues_run else self.run_was.value)},
        }  # fmt: skip


# --- tasks ---------------------------------------------------------------------------------------------


def plan_task_state(
    session: Session, dag: SerializedDag, run_id: str, task_id: str, state: TaskInstanceState | str, *,
    map_index: int | None = None, downstream: bool = False, upstream: bool = False,
) -> OverridePlan:  # fmt: skip
    """What `tasks set-state` would change (see the module docstring); refused with InvalidOverrideError
    (or NotFoundError / TaskNotFoundError) naming the value when it makes no sense."""
    new = _task_state(state)
    run = get_run(session, dag.dag_id, run_id)
    dag.task(task_id)  # TaskNotFoundError naming the known tasks
    tis = _instances(session, run)
    named = [ti for ti in tis if ti.task_id == task_id and (map_index is None or ti.map_index == map_index)]
    if not named:
        which = f" with map index {map_index}" if map_index is not None else ""
        raise NotFoundError(f"run {run_id} of DAG {dag.dag_id} has no instance of {task_id}{which}")
    for ti in named:
        _check_move(ti, new)
    relatives: set[str] = set()
    if downstream:
        relatives |= nx.descendants(dag.graph, task_id)
    if upstream:
        relatives |= nx.ancestors(dag.graph, task_id)
    plan = OverridePlan(run, [Move(ti, new) for ti in named if ti.state != new])
    for ti in tis:
        if ti.task_id in relatives and ti.state != new:
            why = _refusal(ti, new)
            if why is None:
                plan.moves.append(Move(ti, new))
            else:
                plan.left.append((ti, why))
    if not plan.moves:
        states = sorted({ti.state.value for ti in named})
        raise InvalidOverrideError(f"{task_id} in run {run_id} is {', '.join(states)} already; nothing to change")
    if new in _RESUMING:
        plan.resumed = _held_up(dag, tis, plan.moves)
    return plan


def apply_task_state(
    session: Session, dag: SerializedDag, plan: OverridePlan, *, reason: str, actor: str, now: datetime
) -> OverridePlan:
    """Carry out a `plan_task_state` plan in the caller's transaction (audited with `actor` and `reason`)."""
    reason = _reason(reason)
    _move_all(session, plan.moves, reason=f"marked by hand: {reason}", actor=actor, now=now)
    for move in plan.resumed:
        move.ti.max_tries = move.ti.try_number + dag.task(move.ti.task_id).retries  # a full set of retries, as a clear
        move.ti.next_try_at = None
    _move_all(session, plan.resumed, reason=f"cleared to run again: its upstream was marked by hand: {reason}",
              actor=actor, now=now)  # fmt: skip
    if plan.requeues_run:
        _expect(transition(session, RUN, [plan.run], Change(DagRunState.QUEUED, now, actor,
                f"task instances marked by hand: {reason}")), [plan.run])  # fmt: skip
    record_event(session, "tasks.marked", actor=actor, when=now, dag_id=plan.run.dag_id, run_id=plan.run.run_id,
                 reason=reason, detail=plan.to_json())  # fmt: skip
    return plan


def _held_up(dag: SerializedDag, tis: Sequence[TaskInstance], moves: Sequence[Move]) -> list[Move]:
    """Instances below the marked ones, not marked themselves, that failed or were held by a failure."""
    marked = {id(m.ti) for m in moves}
    below: set[str] = set()
    for task_id in {m.ti.task_id for m in moves}:
        below |= nx.descendants(dag.graph, task_id)
    return [
        Move(ti, TaskInstanceState.NONE)
        for ti in tis
        if ti.task_id in below and id(ti) not in marked and ti.state in FAILED_STATES
    ]


# --- runs ----------------------------------------------------------------------------------------------


def plan_run_state(session: Session, dag_id: str, run_id: str, state: DagRunState | str) -> OverridePlan:
    """What `runs set-state` would change (see the module docstring)."""
    try:
        new = DagRunState(state)
    except ValueError:
        raise InvalidOverrideError(f"a run can be set to success or failed, not {state!r}") from None
    if new not in RUN_STATES:
        raise InvalidOverrideError(f"a run can be set to success or failed, not {new.value!r}")
    run = get_run(session, dag_id, run_id)
    if run.state == new:
        raise InvalidOverrideError(f"run {run_id} of DAG {dag_id} is {new.value} already; nothing to change")
    plan = OverridePlan(run, [], run_state=new)
    for ti in _instances(session, run):
        target = _run_mark(ti.state, new)
        if target is not None:
            plan.moves.append(Move(ti, target))
    return plan


def _run_mark(state: TaskInstanceState, run_state: DagRunState) -> TaskInstanceState | None:
    """Where an instance goes when its run is marked `run_state` (None: it stays)."""
    if run_state == DagRunState.SUCCESS:
        keep = (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED, TaskInstanceState.REMOVED)
        return None if state in keep else TaskInstanceState.SUCCESS
    if state in FINISHED:
        return None
    if state in (TaskInstanceState.RUNNING, TaskInstanceState.RESTARTING):
        return TaskInstanceState.FAILED
    return TaskInstanceState.SKIPPED


def apply_run_state(session: Session, plan: OverridePlan, *, reason: str, actor: str, now: datetime) -> OverridePlan:
    """Carry out a `plan_run_state` plan in the caller's transaction (audited with `actor` and `reason`)."""
    assert plan.run_state is not None, "a run's plan names the run's new state"
    reason = _reason(reason)
    why = f"its run was marked {plan.run_state.value} by hand: {reason}"
    _move_all(session, plan.moves, reason=why, actor=actor, now=now)
    change = Change(plan.run_state, now, actor, f"marked by hand: {reason}")
    _expect(transition(session, RUN, [plan.run], change), [plan.run])
    return plan


# --- helpers ---------------------------------------------------------------------------------------------


def _task_state(state: TaskInstanceState | str) -> TaskInstanceState:
    try:
        new = TaskInstanceState(state)
    except ValueError:
        new = None
    if new not in TASK_STATES:
        raise InvalidOverrideError(f"a task instance can be set to success, failed or skipped, not {str(state)!r}")
    return new


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidOverrideError("--reason is empty; say why, for the audit log")
    return reason


def _instances(session: Session, run: DagRun) -> list[TaskInstance]:
    query = select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
    return list(session.scalars(query.order_by(TaskInstance.task_id, TaskInstance.map_index).with_for_update()))


def _refusal(ti: TaskInstance, new: TaskInstanceState) -> str | None:
    try:
        TASK.check(ti, new)
    except IllegalTransitionError:
        return f"{ti.state.value} may not become {new.value}"
    return None


def _check_move(ti: TaskInstance, new: TaskInstanceState) -> None:
    if ti.state == new:
        return
    try:
        TASK.check(ti, new)
    except IllegalTransitionError as exc:
        raise InvalidOverrideError(f"cannot mark {_label(ti)} {new.value}: {exc}") from None


def _move_all(session: Session, moves: Sequence[Move], *, reason: str, actor: str, now: datetime) -> None:
    by_state: dict[TaskInstanceState, list[TaskInstance]] = {}
    for move in moves:
        by_state.setdefault(move.new, []).append(move.ti)
    for new, tis in by_state.items():
        _expect(transition(session, TASK, tis, Change(new, now, actor, reason)), tis)


def _expect(moved: Sequence[object], asked: Iterable[object]) -> None:
    """Every row asked for moved, or the whole override is refused (the caller's transaction rolls back):
    another process changed one meanwhile, so the plan the person confirmed no longer holds."""
    if len(moved) != len(list(asked)):
        raise InvalidOverrideError("a task instance or run changed while it was being marked (a try ended, or "
                                   "the scheduler moved it); nothing was changed: run the command again")  # fmt: skip


def _label(ti: TaskInstance) -> str:
    return f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id
