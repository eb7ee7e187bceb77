"""`DbRunServices`: the database side of what a task may ask about other DAGs' runs (see run_services).

A trigger is `run_creation.trigger_run`, the call `dagrunner dags trigger` makes, in its own transaction,
audited with the triggering task as the actor (`task:<dag>.<task>[run]`). `reset_dag_run` on an existing
run puts its finished task instances back to `none` with a fresh set of retries and re-queues the run,
as `tasks clear` does for a whole run (instances still running are left alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dagrunner.clock import Clock, SystemClock
from dagrunner.errors import DuplicateRunError, ExecutionError, NotFoundError
from dagrunner.execution.base import TaskKey
from dagrunner.execution.run_creation import trigger_run
from dagrunner.execution.run_services import TriggeredRun
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import RUN, TASK, Change, transition
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import Dag, DagFile, DagRun, TaskInstance
from dagrunner.persistence.queries import get_run
from dagrunner.states import OCCUPYING_SLOT, RUN_FINISHED, DagRunState, TaskInstanceState

#: A run's `created_by` holds 512 characters; a label of long ids is clipped to fit.
ACTOR_MAX = 512


class DbRunServices:
    """RunServices on `engine`, for the try `key` (its label is the audit actor of what it writes)."""

    def __init__(
        self, engine: Engine, key: TaskKey, *, clock: Clock | None = None, runs_progress_while_waiting: bool = True
    ) -> None:
        self.engine = engine
        #: False for the inline executor, whose tries run in the scheduler's thread.
        self.runs_progress_while_waiting = runs_progress_while_waiting
        self.actor = f"task:{key.label()}"[:ACTOR_MAX]
        self.clock = clock or SystemClock()

    def trigger_dag_run(
        self,
        *,
        dag_id: str,
        run_id: str | None,
        logical_date: datetime | None,
        conf: dict[str, Any] | None,
        reset_dag_run: bool,
    ) -> TriggeredRun:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            dag = serialized_dag(session, dag_id)
            existing = _existing_run(session, dag_id, run_id) if run_id else None
            if existing is not None:
                if not reset_dag_run:
                    raise DuplicateRunError(
                        f"DAG {dag_id!r} already has a run {run_id!r}; set reset_dag_run=True to run it again"
                    )
                reset_run(session, dag, existing, actor=self.actor, now=now)
                return TriggeredRun(dag_id, existing.run_id, existing.logical_date, reset=True)
            run = trigger_run(session, dag, actor=self.actor, now=now, conf=conf, logical_date=logical_date,
                              run_id=run_id)  # fmt: skip
            return TriggeredRun(dag_id, run.run_id, run.logical_date)

    def dagrun_state(self, *, dag_id: str, run_id: str) -> str:
        with session_scope(self.engine, readonly=True) as session:
            return str(get_run(session, dag_id, run_id).state.value)

    def dr_count(
        self,
        *,
        dag_id: str,
        logical_dates: Sequence[datetime] | None = None,
        run_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
    ) -> int:
        query = select(func.count()).select_from(DagRun).where(DagRun.dag_id == dag_id)
        if logical_dates is not None:
            query = query.where(DagRun.logical_date.in_(list(logical_dates)))
        if run_ids is not None:
            query = query.where(DagRun.run_id.in_(list(run_ids)))
        if states is not None:
            query = query.where(DagRun.state.in_([DagRunState(s) for s in states]))
        with session_scope(self.engine, readonly=True) as session:
            return int(session.scalar(query) or 0)

    def ti_count(
        self,
        *,
        dag_id: str,
        task_ids: Sequence[str] | None = None,
        logical_dates: Sequence[datetime] | None = None,
        run_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
    ) -> int:
        query = (
            select(func.count())
            .select_from(TaskInstance)
            .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
            .where(TaskInstance.dag_id == dag_id)
        )
        if task_ids is not None:
            query = query.where(TaskInstance.task_id.in_(list(task_ids)))
        if logical_dates is not None:
            query = query.where(DagRun.logical_date.in_(list(logical_dates)))
        if run_ids is not None:
            query = query.where(DagRun.run_id.in_(list(run_ids)))
        if states is not None:
            query = query.where(TaskInstance.state.in_([TaskInstanceState(s) for s in states]))
        with session_scope(self.engine, readonly=True) as session:
            return int(session.scalar(query) or 0)


class ReadOnlyRunServices(DbRunServices):
    """For `dagrunner tasks test`, which changes nothing: reads are answered, a trigger is refused."""

    def trigger_dag_run(self, **_: Any) -> TriggeredRun:  # type: ignore[override]
        raise ExecutionError(
            "`dagrunner tasks test` changes nothing, so it creates no run of another DAG; "
            "use `dagrunner dags test` to run the trigger"
        )


def serialized_dag(session: Session, dag_id: str) -> SerializedDag:
    """The DAG as last parsed, or NotFoundError saying why a run of it cannot be created."""
    row = session.get(Dag, dag_id)
    file = session.get(DagFile, row.fileloc) if row is not None and row.is_active else None
    data = (file.serialized or {}).get(dag_id) if file is not None else None
    if not data:
        raise NotFoundError(
            f"no DAG {dag_id!r} to trigger: no parsed DAG file defines it (`dagrunner dags list` shows the DAGs)"
        )
    return SerializedDag.from_dict(data)


def _existing_run(session: Session, dag_id: str, run_id: str) -> DagRun | None:
    return session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one_or_none()


def reset_run(session: Session, dag: SerializedDag, run: DagRun, *, actor: str, now: datetime) -> None:
    """Every finished instance of `run` back to none (fresh retries), and the run re-queued."""
    tis = session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
    ).all()
    todo = [ti for ti in tis if ti.state not in OCCUPYING_SLOT and ti.state != TaskInstanceState.NONE]
    for ti in todo:
        spec = dag.task_dict.get(ti.task_id)
        ti.max_tries = ti.try_number + (spec.retries if spec is not None else 0)
        ti.next_try_at = None
        ti.next_method = ti.next_kwargs = None
    why = "reset by TriggerDagRunOperator (reset_dag_run=True)"
    if todo:
        transition(session, TASK, todo, Change(TaskInstanceState.NONE, now, actor, why))
    if run.state in RUN_FINISHED:
        transition(session, RUN, [run], Change(DagRunState.QUEUED, now, actor, why))
