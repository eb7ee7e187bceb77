"""Facts from earlier runs that readiness needs: depends_on_past looks at the previous run's instances."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.models import DagRun, TaskInstance
from dagrunner.states import TaskInstanceState as TI


def past_states_for(session: Session, dag: SerializedDag, run: DagRun) -> dict[str, TI | None] | None:
    """task_id -> its state in the DAG's previous run (by logical date), for depends_on_past tasks only.

    None when no task of the DAG uses depends_on_past (no query at all). A task missing from the
    previous run counts as `none` (not done), as in Airflow; with no previous run the rule does not apply.
    """
    task_ids = [t.task_id for t in dag.tasks if t.depends_on_past]
    if not task_ids:
        return None
    previous = session.scalars(
        select(DagRun)
        .where(DagRun.dag_id == run.dag_id, DagRun.logical_date < run.logical_date)
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    ).first()
    if previous is None:
        return {task_id: None for task_id in task_ids}
    rows = session.execute(
        select(TaskInstance.task_id, TaskInstance.state).where(
            TaskInstance.dag_id == run.dag_id,
            TaskInstance.run_id == previous.run_id,
            TaskInstance.task_id.in_(task_ids),
        )
    ).all()
    found: dict[str, TI] = {}
    for task_id, state in rows:
        # a mapped task passes only when every map index passed: keep the worst state
        if task_id not in found or TI(state) not in (TI.SUCCESS, TI.SKIPPED):
            found[task_id] = TI(state)
    return {task_id: found.get(task_id, TI.NONE) for task_id in task_ids}
