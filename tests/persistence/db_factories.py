"""Small builders for rows the persistence tests need (plain functions: no hidden session state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from dagrunner.persistence import audit
from dagrunner.persistence.models import Dag, DagRun, DagRunType, TaskInstance
from dagrunner.states import DagRunState, TaskInstanceState

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
ACTOR = "tester@host: pytest"


def new_run(
    dag_id: str = "etl",
    *,
    day: int = 0,
    state: DagRunState = DagRunState.QUEUED,
    run_type: DagRunType = DagRunType.SCHEDULED,
    run_id: str | None = None,
) -> DagRun:
    when = T0 + timedelta(days=day)
    return DagRun(
        dag_id=dag_id,
        run_id=run_id or f"{run_type}__{when.isoformat()}",
        run_type=run_type,
        logical_date=when,
        data_interval_start=when,
        data_interval_end=when,
        run_after=when,
        state=state,
        conf={},
    )


def new_ti(
    run: DagRun,
    task_id: str = "load",
    *,
    state: TaskInstanceState = TaskInstanceState.NONE,
    map_index: int = -1,
) -> TaskInstance:
    return TaskInstance(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=map_index, state=state)


def add_run_with_tasks(
    session: Session, task_ids: list[str], *, dag_id: str = "etl", day: int = 0
) -> tuple[DagRun, list[TaskInstance]]:
    """A queued run and its task instances in state none, created through the audit path."""
    run = new_run(dag_id, day=day)
    tis = [new_ti(run, task_id) for task_id in task_ids]
    audit.record_created(session, [run, *tis], actor=ACTOR, reason="test setup", when=T0)
    return run, tis


def add_dag(session: Session, dag_id: str = "etl", *, paused: bool = False) -> Dag:
    dag = Dag(dag_id=dag_id, fileloc=f"/dags/{dag_id}.py", is_paused=paused)
    session.add(dag)
    session.flush()
    return dag
