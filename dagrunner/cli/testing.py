"""`dags test`: create one run owned by this process and drive it to the end with a private scheduler."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from dagrunner.cli.context import CliContext
from dagrunner.cli.live import print_event
from dagrunner.errors import DuplicateRunError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.models import JobType
from dagrunner.persistence.views import RunWithTasks, run_with_tasks
from dagrunner.scheduling.dag_source import FixedDagSource
from dagrunner.scheduling.loop import StopOnSignals, StopWhen, run_loop
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.scheduler import SchedulerOptions
from dagrunner.timetables import make_run_id


def run_dag_test(
    cli: CliContext,
    dag: SerializedDag,
    *,
    logical_date: datetime | None,
    conf: dict[str, Any],
    quiet: bool,
) -> RunWithTasks:
    """Trigger the run, drive it to the end here, and return it with its task instances (upstream first)."""
    from dagrunner.cli.scheduler import build_scheduler

    now = datetime.now(UTC)
    owner = f"dags-test-{uuid.uuid4().hex[:12]}"
    run_id = _create_run(cli, dag, logical_date or now, conf, owner, now)
    ref = (dag.dag_id, run_id)
    options = SchedulerOptions(create_runs=False, owner=owner, only_runs={ref}, job_type=JobType.DAGS_TEST)
    sched = build_scheduler(
        cli, dag_source=FixedDagSource({dag.dag_id: dag}), options=options, on_event=None if quiet else print_event
    )
    with StopOnSignals(sched):
        run_loop(sched, StopWhen(runs_done=frozenset({ref})), grace_s=5.0)
    with cli.read_session() as session:
        return run_with_tasks(session, dag.dag_id, run_id, order=dag.topological_order)


def _create_run(cli: CliContext, dag: SerializedDag, when: datetime, conf: dict[str, Any], owner: str,
                now: datetime) -> str:  # fmt: skip
    """manual__<date>, or manual__<date>.N when that date was tested before (earlier runs stay as they are)."""
    base = make_run_id("manual", when)
    for attempt in range(1, 1000):
        run_id = base if attempt == 1 else f"{base}.{attempt}"
        try:
            with cli.session() as session:
                trigger_run(session, dag, actor=cli.actor, now=now, conf=conf, logical_date=when, run_id=run_id,
                            owner=owner)  # fmt: skip
            return run_id
        except DuplicateRunError:
            continue
    raise DuplicateRunError(f"too many test runs of {dag.dag_id} at {when.isoformat()}")
