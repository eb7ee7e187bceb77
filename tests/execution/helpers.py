"""Factories for execution tests: DAG files in a tmp dags folder, runs with queued tries, and reads.

Rows are created the way the scheduler creates them: the run and its task instances through
`audit.record_created_many`, then the chosen instance queued through `audit.transition_task` with its
try_number raised, so every test starts from a state the real system could be in.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from dagrunner.execution.base import Executor, RunFacts, TaskKey, TryEvent, WorkItem
from dagrunner.persistence import audit
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, DagRun, DagRunType, TaskInstance, TaskTry, XCom
from dagrunner.settings import Settings
from dagrunner.states import DagRunState, TaskInstanceState

ACTOR = "tester@host: pytest"
LOGICAL = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def write_dag(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def make_settings(tmp_path: Path, db_url: str, dags_folder: Path, *, parallelism: int = 2) -> Settings:
    return Settings.load(
        overrides={
            "db_url": db_url,
            "dags_folder": str(dags_folder),
            "plugins_folder": str(tmp_path / "plugins"),
            "logs_folder": str(tmp_path / "logs"),
            "parallelism": parallelism,
            "dagbag_import_timeout": 10,
        },
        environ={},
        home=tmp_path,
    )


@dataclass(frozen=True)
class RunSpec:
    dag_id: str
    run_id: str
    logical_date: datetime
    conf: dict[str, Any]


def create_run(
    engine: Engine,
    dag_id: str,
    task_ids: Iterable[str],
    *,
    logical_date: datetime = LOGICAL,
    conf: dict[str, Any] | None = None,
    state: DagRunState = DagRunState.RUNNING,
    run_id: str | None = None,
    max_tries: dict[str, int] | None = None,
) -> RunSpec:
    """A run with one task instance (state none, map_index -1) per task id."""
    run_id = run_id or f"manual__{logical_date.isoformat()}"
    with session_scope(engine) as session:
        run = DagRun(
            dag_id=dag_id,
            run_id=run_id,
            run_type=DagRunType.MANUAL,
            logical_date=logical_date,
            data_interval_start=logical_date,
            data_interval_end=logical_date + timedelta(days=1),
            run_after=logical_date,
            state=state,
            conf=dict(conf or {}),
            start_date=logical_date,
        )
        tis = [
            TaskInstance(dag_id=dag_id, run_id=run_id, task_id=t, max_tries=(max_tries or {}).get(t, 0))
            for t in task_ids
        ]
        audit.record_created(session, [run, *tis], actor=ACTOR, reason="test setup", when=LOGICAL)
    return RunSpec(dag_id, run_id, logical_date, dict(conf or {}))


def queue_try(
    engine: Engine,
    run: RunSpec,
    task_id: str,
    fileloc: Path | str,
    *,
    map_index: int = -1,
    job_id: int | None = None,
) -> WorkItem:
    """Queue the next try of one instance, as the scheduler does, and return its work item."""
    with session_scope(engine) as session:
        ti = get_ti(session, TaskKey(run.dag_id, run.run_id, task_id, map_index))
        ti.try_number += 1
        ti.queued_by_job_id = job_id
        audit.transition(
            session, audit.TASK, [ti], audit.Change(TaskInstanceState.QUEUED, LOGICAL, ACTOR, "test: queued")
        )
        try_number = ti.try_number
    facts = RunFacts(
        run_type="manual",
        logical_date=run.logical_date,
        data_interval_start=run.logical_date,
        data_interval_end=run.logical_date + timedelta(days=1),
        run_after=run.logical_date,
        conf=run.conf,
    )
    return WorkItem(
        key=TaskKey(run.dag_id, run.run_id, task_id, map_index),
        try_number=try_number,
        fileloc=str(fileloc),
        run=facts,
        queued_by_job_id=job_id,
    )


def add_mapped_instances(engine: Engine, run: RunSpec, task_id: str, count: int) -> None:
    """Turn a task's placeholder into map indexes 0..count-1 (what the scheduler's expansion does)."""
    with session_scope(engine) as session:
        ti = get_ti(session, TaskKey(run.dag_id, run.run_id, task_id, -1))
        ti.map_index = 0
        siblings = [
            TaskInstance(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=i) for i in range(1, count)
        ]
        audit.record_created(session, siblings, actor=ACTOR, reason="test: expanded", when=LOGICAL)


def finish_directly(engine: Engine, run: RunSpec, task_id: str, xcoms: dict[str, Any], map_index: int = -1) -> None:
    """Mark an upstream instance successful with XComs, as if it had run (through the audit path)."""
    with session_scope(engine) as session:
        ti = get_ti(session, TaskKey(run.dag_id, run.run_id, task_id, map_index))
        audit.transition(
            session, audit.TASK, [ti], audit.Change(TaskInstanceState.SUCCESS, LOGICAL, ACTOR, "test: marked success")
        )
        for key, value in xcoms.items():
            session.add(
                XCom(
                    ti_id=ti.id,
                    dag_id=ti.dag_id,
                    run_id=ti.run_id,
                    task_id=ti.task_id,
                    map_index=ti.map_index,
                    key=key,
                    value=value,
                    created_at=datetime.now(UTC),
                )
            )


def run_one(executor: Executor, item: WorkItem, *, timeout: float = 60.0) -> TryEvent:
    """Submit one try and wait (bounded) for its finished/lost event."""
    executor.submit(item)
    return wait_event(executor, item.key, timeout=timeout)


def wait_event(executor: Executor, key: TaskKey, *, timeout: float = 60.0) -> TryEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in executor.events(min(1.0, max(0.0, deadline - time.monotonic()))):
            if event.key == key and event.kind in ("finished", "lost"):
                return event
    raise AssertionError(f"no event for {key.label()} within {timeout}s")


# --- reads ---------------------------------------------------------------------------------------------


def get_ti(session: Any, key: TaskKey) -> TaskInstance:
    return session.scalars(
        select(TaskInstance).where(
            TaskInstance.dag_id == key.dag_id,
            TaskInstance.run_id == key.run_id,
            TaskInstance.task_id == key.task_id,
            TaskInstance.map_index == key.map_index,
        )
    ).one()


def ti_row(engine: Engine, key: TaskKey) -> TaskInstance:
    with session_scope(engine, readonly=True) as session:
        return get_ti(session, key)


def tries_of(engine: Engine, key: TaskKey) -> list[TaskTry]:
    with session_scope(engine, readonly=True) as session:
        return list(
            session.scalars(
                select(TaskTry)
                .where(
                    TaskTry.dag_id == key.dag_id,
                    TaskTry.run_id == key.run_id,
                    TaskTry.task_id == key.task_id,
                    TaskTry.map_index == key.map_index,
                )
                .order_by(TaskTry.try_number)
            )
        )


def xcoms_of(engine: Engine, key: TaskKey) -> dict[str, Any]:
    with session_scope(engine, readonly=True) as session:
        rows = session.execute(
            select(XCom.key, XCom.value).where(
                XCom.dag_id == key.dag_id,
                XCom.run_id == key.run_id,
                XCom.task_id == key.task_id,
                XCom.map_index == key.map_index,
            )
        ).all()
    return dict(rows)


def audit_of(engine: Engine, key: TaskKey, event: str | None = None) -> list[AuditLog]:
    with session_scope(engine, readonly=True) as session:
        query = select(AuditLog).where(
            AuditLog.dag_id == key.dag_id, AuditLog.run_id == key.run_id, AuditLog.task_id == key.task_id
        )
        if event is not None:
            query = query.where(AuditLog.event == event)
        return list(session.scalars(query.order_by(AuditLog.id)))


def state_path(engine: Engine, key: TaskKey) -> list[tuple[str | None, str | None]]:
    """(old, new) of every task.state audit row of the instance, in order."""
    return [(row.old_state, row.new_state) for row in audit_of(engine, key, "task.state")]
