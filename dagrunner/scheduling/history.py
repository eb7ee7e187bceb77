"""Facts from earlier runs that readiness needs: depends_on_past looks at the previous run's instances."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence import queries
from dagrunner.persistence.models import DagRun
from dagrunner.states import TaskInstanceState


def past_states_for(session: Session, dag: SerializedDag, run: DagRun) -> dict[str, TaskInstanceState | None] | None:
    """task_id -> its state in the DAG's previous run (by logical date), for depends_on_past tasks only.

    None when no task of the DAG uses depends_on_past (no query at all). A task missing from the
    previous run counts as `none` (not done), as in Airflow; with no previous run the rule does not apply.
    """
    task_ids = [t.task_id for t in dag.tasks if t.depends_on_past]
    if not task_ids:
        return None
    previous = queries.previous_run(session, run.dag_id, run.logical_date)
    if previous is None:
        return {task_id: None for task_id in task_ids}
    rows = queries.instance_states(session, run.dag_id, previous.run_id, task_ids)
    found: dict[str, TaskInstanceState] = {}
    for task_id, state in rows:
        # a mapped task passes only when every map index passed: keep the worst state
        if task_id not in found or state not in (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED):
            found[task_id] = state
    return {task_id: found.get(task_id, TaskInstanceState.NONE) for task_id in task_ids}
