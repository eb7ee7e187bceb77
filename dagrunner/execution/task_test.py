"""`dagrunner tasks test` / `tasks render`: one task in this process, its log (or its rendered fields)
handed back, nothing written anywhere.

The task runs as one try would (templates rendered, context built, callbacks called), but no state,
try, XCom or audit row is written. `xcom_pull` reads the XComs of an existing run with that logical date
when the database has one (read-only); otherwise it finds nothing and returns None. A missing SQLite
file is not created.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from dagrunner.errors import DagRunnerError, ExecutionError
from dagrunner.execution import attempt, runner
from dagrunner.execution.base import RunFacts, TaskKey, WorkItem
from dagrunner.execution.context import PrevSuccess, TaskInstanceView, XComSource, expanded_count
from dagrunner.execution.external_runs import ReadOnlyRunServices
from dagrunner.execution.logs import output_to, write_line
from dagrunner.execution.masking import SecretMasker
from dagrunner.execution.recording import XComRows, final_state, previous_success, read_xcoms
from dagrunner.execution.retries import RetryPolicy
from dagrunner.execution.run_services import RunServices
from dagrunner.execution.runner import run_callbacks
from dagrunner.execution.secrets import DatabaseSecrets
from dagrunner.persistence.engine import make_engine, session_scope, sqlite_path
from dagrunner.persistence.models import DagRun
from dagrunner.settings import Settings
from dagrunner.states import TaskInstanceState

if TYPE_CHECKING:
    from dagrunner.authoring.dag import DAG
    from dagrunner.execution.attempt import XComLoader
    from dagrunner.execution.runnable import RunnableTask


def test_task(
    settings: Settings,
    dag: Any,  # a DAG; `Any` while cli.tasks._live_dag returns `object`
    task_id: str,
    logical_date: datetime,
    *,
    map_index: int = -1,
    conf: dict[str, Any] | None = None,
) -> tuple[TaskInstanceState, str]:
    """Run `task_id` of the live `dag` for `logical_date`; (the state it would get, its log text)."""
    with _pretend_try(settings, dag, task_id, logical_date, map_index, conf) as pretend:
        return _run(*pretend)


def render_task(
    settings: Settings,
    dag: Any,  # a DAG; `Any` while cli.tasks._live_dag returns `object`
    task_id: str,
    logical_date: datetime,
    *,
    map_index: int = -1,
    conf: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`task_id`'s templated fields rendered for `logical_date` (field -> value, secrets masked), without
    running it: what `dagrunner tasks render` shows."""
    with _pretend_try(settings, dag, task_id, logical_date, map_index, conf) as (item, task, start, loader, _, secrets):
        masker = SecretMasker.from_environ()
        prepared = attempt.prepare(task, item, start, masker, loader, secrets=secrets)
        runner.render_task(prepared.task, prepared.context, prepared.protected)
        return {name: _masked(getattr(prepared.task, name), masker) for name in prepared.task.template_fields}


def mapped_count(settings: Settings, dag: Any, task_id: str, logical_date: datetime) -> int:
    """How many instances mapped `task_id` expands into for `logical_date`: literal inputs by their length,
    XCom inputs by the upstream values of the stored run with that date. ExecutionError when an upstream
    value is missing (no run, or its upstream has not run yet)."""
    with _pretend_try(settings, dag, task_id, logical_date, 0, None) as (item, task, start, loader, _, _secrets):
        xcoms = XComSource(start.xcom_rows, fetched_task_ids=start.fetched_task_ids, loader=loader)
        ti = TaskInstanceView(item.key, 1, start.max_tries, xcoms)
        count = expanded_count(task, ti.pull_for_render)
    if count is None:
        raise ExecutionError(
            f"task {task_id!r} is mapped over an upstream task's XCom, which no run at {logical_date.isoformat()} "
            "holds yet: run the upstream tasks for that date first, or pick one instance with --map-index"
        )
    return count


@contextlib.contextmanager
def _pretend_try(
    settings: Settings, dag: DAG, task_id: str, logical_date: datetime, map_index: int, conf: dict[str, Any] | None
) -> Iterator[
    tuple[WorkItem, RunnableTask, attempt.TryStart, XComLoader | None, RunServices | None, DatabaseSecrets | None]
]:
    """The work item, task, start facts, XCom loader, run services (reads only) and the DB's connections and
    variables (None: no DB yet, the environment only) of a try that is never recorded."""
    task: RunnableTask = dag.get_task(task_id)
    if task.is_mapped and map_index < 0:
        raise ExecutionError(f"task {task_id!r} is mapped: say which instance to test with a map index (0, 1, ...)")
    engine = _engine_if_database_exists(settings)
    try:
        run_id, facts, start = _facts(engine, dag, task, logical_date, conf)
        item = WorkItem(TaskKey(dag.dag_id, run_id, task_id, map_index), 1, dag.fileloc, facts)
        services = ReadOnlyRunServices(engine, item.key) if engine is not None else None
        secrets = None if engine is None else DatabaseSecrets(engine, settings.state_folder, actor="tasks test")
        yield item, task, start, _loader(engine, item), services, secrets
    finally:
        if engine is not None:
            engine.dispose()


def _masked(value: Any, masker: SecretMasker) -> Any:
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, list | tuple):
        return type(value)(_masked(v, masker) for v in value)
    if isinstance(value, dict):
        return {k: _masked(v, masker) for k, v in value.items()}
    return value


test_task.__test__ = False  # type: ignore[attr-defined]  # a pytest collecting this name must not run it


def _run(
    item: WorkItem,
    task: RunnableTask,
    start: attempt.TryStart,
    loader: XComLoader | None,
    services: RunServices | None,
    secrets: DatabaseSecrets | None,
) -> tuple[TaskInstanceState, str]:
    masker = SecretMasker.from_environ()
    fd, path = tempfile.mkstemp(prefix="dagrunner-task-test-", suffix=".log")
    try:
        attempt.write_header(fd, item, pid=os.getpid())
        with output_to(fd, masker):
            outcome, prepared = attempt.run_here(task, item, start, masker, loader, services=services, secrets=secrets)
        state = final_state(outcome.state, True, 1, 0, RetryPolicy.none())
        _describe(fd, state, outcome.error, masker.mask_value(dict(outcome.xcoms)), outcome.skip_task_ids)
        if prepared is not None:
            with output_to(fd, masker):
                run_callbacks(prepared.task, state, prepared.context, masker=masker)
        os.close(fd)
        fd = -1
        with open(path, encoding="utf-8", errors="replace") as handle:
            return state, handle.read()
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)


def _describe(fd: int, state: TaskInstanceState, error: str, xcoms: Mapping[str, Any], skips: tuple[str, ...]) -> None:
    """The test's verdict, written to the log straight (not through the masking pipe): `xcoms` come masked."""
    write_line(fd, f"[dagrunner] the task ended {state}" + (f": {error}" if error else "") + " (nothing recorded)")
    for key, value in xcoms.items():
        write_line(fd, f"[dagrunner] XCom {key!r}: {json.dumps(value)[:2000]}")
    if skips:
        write_line(fd, f"[dagrunner] it would skip: {', '.join(skips)}")


def _engine_if_database_exists(settings: Settings) -> Engine | None:
    path = sqlite_path(settings.db_url) if settings.is_sqlite else None
    if settings.is_sqlite and (path is None or not path.exists()):
        return None
    try:
        return make_engine(settings.db_url, busy_timeout=settings.sqlite_busy_timeout)
    except DagRunnerError:
        return None


def _facts(
    engine: Engine | None, dag: DAG, task: RunnableTask, logical_date: datetime, conf: dict[str, Any] | None
) -> tuple[str, RunFacts, attempt.TryStart]:
    """The run to pretend to be in: the stored one for that date if any, else a manual one."""
    run, rows, prev = _stored(engine, dag.dag_id, logical_date, task)
    if run is not None:
        facts = RunFacts(
            run_type=str(run.run_type),
            logical_date=run.logical_date,
            data_interval_start=run.data_interval_start or run.logical_date,
            data_interval_end=run.data_interval_end or run.logical_date,
            run_after=run.run_after,
            conf={**(run.conf or {}), **(conf or {})},
        )
        run_id = run.run_id
    else:
        info = dag.timetable.manual_run_info(logical_date)
        facts = RunFacts("manual", info.logical_date, info.data_interval_start, info.data_interval_end,
                         info.run_after, dict(conf or {}))  # fmt: skip
        run_id = f"test__{info.logical_date.isoformat()}"
    upstream = frozenset(task.upstream_task_ids) if run is not None else frozenset()
    return run_id, facts, attempt.TryStart(task.retries, rows, upstream, prev)


def _stored(
    engine: Engine | None, dag_id: str, logical_date: datetime, task: RunnableTask
) -> tuple[DagRun | None, XComRows, PrevSuccess | None]:
    if engine is None:
        return None, {}, None
    try:
        with session_scope(engine, readonly=True) as session:
            run = session.scalars(
                select(DagRun)
                .where(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)
                .order_by(DagRun.id.desc())
                .limit(1)
            ).first()
            prev = previous_success(session, dag_id, logical_date)
            rows = read_xcoms(session, dag_id, run.run_id, task.upstream_task_ids) if run is not None else {}
    except Exception:  # noqa: BLE001 - no schema yet, or unreachable: test without stored facts
        return None, {}, None
    prev_success = PrevSuccess(*prev) if prev else None
    return run, rows, prev_success


def _loader(engine: Engine | None, item: WorkItem) -> XComLoader | None:
    if engine is None:
        return None

    def load(task_ids: list[str]) -> XComRows:
        try:
            with session_scope(engine, readonly=True) as session:
                return read_xcoms(session, item.key.dag_id, item.key.run_id, task_ids)
        except Exception:  # noqa: BLE001 - reading is best effort in a test
            return {}

    return load
