"""The body of a DAG-callback process: import the DAG file, call its on_success/on_failure callbacks.

The scheduler never imports user code, so when a run with a DAG-level callback finishes it records a
`callback_request` row (in the run's own transaction) and, after the commit, starts a process running
`run_request` (`scheduling.dag_callbacks` does both). This process:

1. reads the request and its run, and counts the attempt (a request still pending after its scheduler
   died is run again by the next one: at least once, so callbacks should be idempotent);
2. imports the DAG file the way a worker does (`DagCache`: the dags and plugins folders on sys.path, the
   import bounded by `dagbag_import_timeout`), with stdout/stderr going to the request's log file
   (`callback_log_path`), secrets masked;
3. calls each callback with Airflow's DAG callback context (`build_dag_context`); one that raises is
   printed to the log and the next still runs;
4. marks the request done, with the errors, and audits `dag_callback.finished` or `dag_callback.failed`.
   A callback's exception never changes the run's state.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pendulum

from dagrunner.authoring import _secrets
from dagrunner.clock import utcnow
from dagrunner.errors import DagRunnerError, ExecutionError
from dagrunner.execution.context import MACROS, ConnectionAccessor, DagRunView, VariableAccessor
from dagrunner.execution.dag_cache import DagCache
from dagrunner.execution.logs import open_log, output_to, write_line
from dagrunner.execution.masking import SecretMasker
from dagrunner.execution.runner import print_traceback, summarize
from dagrunner.execution.secrets import DatabaseSecrets
from dagrunner.execution.worker_config import WorkerConfig

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from dagrunner.persistence.models import CallbackRequest, DagRun

#: The callback kinds a request names: the DAG attributes that list the callbacks.
KINDS = ("on_success_callback", "on_failure_callback")


@dataclass(frozen=True)
class RequestFacts:
    """A request and its run as read from the database, so the callbacks run with no session open."""

    request_id: int
    kind: str
    dag_id: str
    run_id: str
    fileloc: str
    reason: str
    attempt: int
    run: DagRunView


def callback_log_path(logs_folder: Path | str, dag_id: str, run_id: str, kind: str, request_id: int) -> Path:
    """`<logs>/dag_id=D/run_id=R/dag_callback=<kind>/request=<id>.log`, refused if it leaves the log root."""
    root = Path(logs_folder).resolve()
    parts = [f"dag_id={dag_id}", f"run_id={run_id}", f"dag_callback={kind}", f"request={int(request_id)}.log"]
    path = root.joinpath(*parts).resolve()
    if any(sep in part for part in parts for sep in ("/", "\\", "\0")) or not path.is_relative_to(root):
        raise ExecutionError(f"callback log path {path} for {dag_id}/{run_id} leaves the log root {root}; refusing it")
    return path


# --- the process -------------------------------------------------------------------------------------


def run_request(config: WorkerConfig, request_id: int) -> None:
    """Run one callback request to its end (the module docstring's steps). The target of the process."""
    from dagrunner.persistence.engine import make_engine

    engine = make_engine(config.engine_url, busy_timeout=config.busy_timeout)
    try:
        facts = _claim(engine, request_id, actor=config.actor)
        if facts is None:
            return  # done meanwhile (another scheduler ran it), or gone with its run
        path = callback_log_path(config.logs_folder, facts.dag_id, facts.run_id, facts.kind, request_id)
        masker = SecretMasker.from_environ()
        # the callbacks' `Connection.get` / `Variable.get` / `conn` / `var` read the metadata DB too
        secrets = DatabaseSecrets(engine, config.state_folder or Path(".dagrunner"), actor=config.actor)
        _secrets.install(secrets, masker.add)
        fd = open_log(path)
        try:
            write_line(fd, f"[dagrunner] {utcnow().isoformat(timespec='milliseconds')} {facts.kind} of "
                           f"{facts.dag_id}/{facts.run_id} (reason {facts.reason}, attempt {facts.attempt}, pid {os.getpid()})")  # fmt: skip
            with output_to(fd, masker):
                errors = call_dag_callbacks(config, facts, masker)
            write_line(fd, f"[dagrunner] {len(errors)} callback(s) raised" if errors else "[dagrunner] done")
        finally:
            os.close(fd)
        _mark_done(engine, facts, errors, actor=config.actor)
    finally:
        engine.dispose()


def call_dag_callbacks(config: WorkerConfig, facts: RequestFacts, masker: SecretMasker) -> list[str]:
    """Import the DAG and call each of its `facts.kind` callbacks; one line per callback that raised (or
    why none could be called: the file no longer imports, the DAG is gone)."""
    cache = DagCache(
        dags_folder=config.dags_folder, plugins_folder=config.plugins_folder, import_timeout_s=config.import_timeout_s
    )
    try:
        dag = cache.get_dag(facts.fileloc, facts.dag_id)
    except DagRunnerError as exc:
        print(f"[dagrunner] {exc}", file=sys.stderr)
        return [f"{facts.kind}: {summarize(exc, masker)}"]
    callbacks: Sequence[Callable[..., Any]] = getattr(dag, facts.kind, None) or ()
    context = build_dag_context(dag, facts, masker)
    errors = []
    for callback in callbacks:
        name = getattr(callback, "__qualname__", None) or repr(callback)
        try:
            callback(context)
        except Exception as exc:  # noqa: BLE001 - a callback never decides the run's outcome
            print(f"[dagrunner] {facts.kind} {name} raised:", file=sys.stderr)
            print_traceback(exc)
            errors.append(f"{facts.kind} {name}: {summarize(exc, masker)}")
    return errors


def build_dag_context(dag: Any, facts: RequestFacts, masker: SecretMasker) -> dict[str, Any]:
    """Airflow's DAG callback context: the DAG, the run (with its state and dates), why it ended
    (`reason`: success, task_failure, timed_out, all_tasks_deadlocked), and the run's date keys, params
    and conf as a task sees them."""
    run = facts.run
    conf = dict(run.conf)
    logical = run.logical_date
    return {
        "dag": dag,
        "dag_run": run,
        "run_id": facts.run_id,
        "reason": facts.reason,
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": logical.strftime("%Y%m%d"),
        "ts": logical.isoformat(),
        "logical_date": logical,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "params": {**getattr(dag, "params", {}), **conf},
        "conf": conf,
        "macros": MACROS,
        "var": VariableAccessor(masker),
        "conn": ConnectionAccessor(masker),
    }


def _claim(engine: Engine, request_id: int, *, actor: str) -> RequestFacts | None:
    """Count the attempt and read what the callbacks need; None when there is nothing to do."""
    from sqlalchemy import select, update

    from dagrunner.persistence.engine import session_scope
    from dagrunner.persistence.models import CallbackRequest, DagRun

    with session_scope(engine) as session:
        request = session.get(CallbackRequest, request_id)
        if request is None or request.done_at is not None:
            return None
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == request.dag_id, DagRun.run_id == request.run_id)
        ).first()
        if run is None:  # deleted (`db clean`, a reset): mark it done, there is nothing to call back for
            mark_request_done(session, request, ["the run no longer exists"], actor=actor, now=utcnow())
            return None
        session.execute(
            update(CallbackRequest).where(CallbackRequest.id == request_id).values(attempts=request.attempts + 1)
        )
        return _facts(request, run, request.attempts + 1)


def _facts(request: CallbackRequest, run: DagRun, attempt: int) -> RequestFacts:
    logical = _utc(run.logical_date)
    assert logical is not None
    view = DagRunView(
        dag_id=run.dag_id,
        run_id=run.run_id,
        run_type=run.run_type.value,
        logical_date=logical,
        data_interval_start=_utc(run.data_interval_start) or logical,
        data_interval_end=_utc(run.data_interval_end) or logical,
        run_after=_utc(run.run_after) or logical,
        conf=MappingProxyType(dict(run.conf or {})),
        state=run.state.value,
        start_date=_utc(run.start_date),
        end_date=_utc(run.end_date),
    )
    return RequestFacts(request.id, request.kind, request.dag_id, request.run_id, request.fileloc, request.reason,
                        attempt, view)  # fmt: skip


def _mark_done(engine: Engine, facts: RequestFacts, errors: list[str], *, actor: str) -> None:
    from dagrunner.persistence.engine import session_scope
    from dagrunner.persistence.models import CallbackRequest

    with session_scope(engine) as session:
        request = session.get(CallbackRequest, facts.request_id)
        if request is not None:
            mark_request_done(session, request, errors, actor=actor, now=utcnow())


def mark_request_done(
    session: Session, request: CallbackRequest, errors: Sequence[str], *, actor: str, now: datetime
) -> bool:
    """Mark `request` done with its `errors` and audit it (`dag_callback.finished`, or `dag_callback.failed`
    with the errors); False, and nothing audited, when another process marked it meanwhile."""
    from sqlalchemy import update

    from dagrunner.persistence.audit import record_event
    from dagrunner.persistence.models import CallbackRequest

    error = "; ".join(errors) or None
    result = session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request.id, CallbackRequest.done_at.is_(None))
        .values(done_at=now, error=error)
    )
    if not getattr(result, "rowcount", 0):
        return False
    detail = {"request_id": request.id, "kind": request.kind, "reason": request.reason}
    event = "dag_callback.failed" if errors else "dag_callback.finished"
    record_event(session, event, actor=actor, when=now, dag_id=request.dag_id, run_id=request.run_id, reason=error,
                 detail=detail)  # fmt: skip
    return True


def _utc(value: datetime | None) -> pendulum.DateTime | None:
    return None if value is None else pendulum.instance(value).in_timezone("UTC")
