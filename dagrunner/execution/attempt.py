"""The steps of one try that every executor shares, between "a work item arrived" and "its event is sent".

1. `load_task`: the live task from the DAG cache (an import failure becomes the try's failure).
2. `begin`: one short write transaction: fenced `queued -> running`, plus the reads the try needs
   (its upstream tasks' XComs, the previous successful run), so user code needs no connection.
3. `prepare`: the concrete per-try operator (unmapped for a map index) and its context.
4. `runner.run_task` in whatever process the executor chose.
5. `finish`: one short write transaction with the outcome, then the callbacks, whose errors are audited.

Steps 1, 3 and 4 also run in the local executor's forker and task processes, which never touch the
database: the database steps import SQLAlchemy and `recording` when first called, so importing this
module does not (every task process is a fork of the forker, and a fork costs in proportion to the
memory of the process forked; SQLAlchemy is half of it).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dagrunner.clock import Clock, SystemClock, utcnow
from dagrunner.errors import DagRunnerError
from dagrunner.execution.asset_context import AssetEventsRead
from dagrunner.execution.base import WorkItem, XComRows
from dagrunner.execution.context import (
    PrevSuccess,
    TaskInstanceView,
    XComSource,
    build_context,
    expanded_count,
    resolve_task,
)
from dagrunner.execution.dag_cache import DagCache
from dagrunner.execution.logs import write_line
from dagrunner.execution.masking import SecretMasker
from dagrunner.execution.retries import RetryPolicy
from dagrunner.execution.run_services import RunServices
from dagrunner.execution.runnable import RunnableTask
from dagrunner.execution.runner import TryOutcome, print_traceback, run_task, summarize
from dagrunner.states import TaskInstanceState

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from dagrunner.authoring._secrets import SecretsBackend

HOSTNAME = socket.gethostname()
ASSET_TRIGGERED = "asset_triggered"  # DagRunType.ASSET_TRIGGERED, without importing the models here
SYSTEM_CLOCK: Clock = SystemClock()

XComLoader = Callable[[list[str]], XComRows]


@dataclass(frozen=True)
class TryStart:
    """What `begin` learned while it started the try."""

    max_tries: int
    xcom_rows: XComRows
    fetched_task_ids: frozenset[str]
    prev_success: PrevSuccess | None
    #: Earlier tries that ended in a sensor's "not yet" (Airflow's `task_reschedule_count`).
    reschedule_count: int = 0
    #: A woken deferred instance: why ("resume", "escalate") and with what (`execution.deferral`).
    next_method: str | None = None
    next_kwargs: dict[str, Any] | None = None
    #: Asset events the try reads (#12): only for an asset-triggered run or a task with inlets.
    asset_events: AssetEventsRead | None = None


@dataclass(frozen=True)
class Prepared:
    """A try ready to run: the operator copy, its context, and values not to render as templates."""

    task: RunnableTask
    context: dict[str, Any]
    protected: dict[str, Any]
    timeout_s: float | None


def load_task(cache: DagCache, item: WorkItem) -> tuple[RunnableTask | None, str | None]:
    """(task, None), or (None, why) when the DAG file cannot give us the task (the try then fails)."""
    try:
        return cache.get_task(item.fileloc, item.key.dag_id, item.key.task_id), None
    except DagRunnerError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def begin(
    bind: Engine | Connection,
    item: WorkItem,
    upstream: Collection[str],
    *,
    log_file: str,
    pid: int,
    actor: str,
    clock: Clock = SYSTEM_CLOCK,
) -> TryStart | str:
    """Record the start (fenced) and read what the try needs: the XComs of the `upstream` task ids and
    the previous successful run. Returns the refusal text when fenced out."""
    from dagrunner.execution import recording

    key = item.key
    upstream = frozenset(upstream)
    now = clock.now()
    with transaction(bind) as conn:
        started = recording.start_try(conn, item, hostname=HOSTNAME, pid=pid, log_path=log_file, now=now, actor=actor)
        if started is None:
            return recording.describe_refusal(conn, item)
        rows = recording.read_xcoms(conn, key.dag_id, key.run_id, upstream) if upstream else {}
        prev = recording.previous_success(conn, key.dag_id, item.run.logical_date)
        assets = _read_asset_events(conn, item)
    return TryStart(started.max_tries, rows, upstream, PrevSuccess(*prev) if prev else None, started.reschedule_count,
                    started.next_method, started.next_kwargs, assets)  # fmt: skip


def _read_asset_events(conn: Connection, item: WorkItem) -> AssetEventsRead | None:
    """The events an asset-triggered run was triggered by and the task's inlets' events; None (and no
    query) for every other try."""
    triggered = item.run.run_type == ASSET_TRIGGERED
    if not triggered and not item.inlets:
        return None
    from dagrunner.execution import asset_reads

    return asset_reads.read_for_try(conn, item.key.dag_id, item.key.run_id, triggered=triggered, inlets=item.inlets)


def prepare(
    task: RunnableTask,
    item: WorkItem,
    start: TryStart,
    masker: SecretMasker,
    loader: XComLoader | None,
    services: RunServices | None = None,
    secrets: SecretsBackend | None = None,
) -> Prepared:
    """The per-try operator and its context (may raise: a mapped input that does not fit, say)."""
    dag = task.dag
    xcoms = XComSource(start.xcom_rows, fetched_task_ids=start.fetched_task_ids, loader=loader)
    ti = TaskInstanceView(
        item.key,
        item.try_number,
        start.max_tries,
        xcoms,
        is_mapped=lambda task_id: bool(getattr(dag.task_dict.get(task_id), "is_mapped", False)),
        reschedule_count=start.reschedule_count,
        next_method=start.next_method,
        next_kwargs=start.next_kwargs,
        services=services,
    )
    concrete, protected = resolve_task(task, item.key.map_index, ti.pull_for_render)
    ti.task = concrete
    context = build_context(task=concrete, ti=ti, run=item.run, prev_success=start.prev_success, masker=masker,
                            asset_events=start.asset_events, secrets=secrets,
                            expanded_ti_count=expanded_count(task, ti.pull_for_render))  # fmt: skip
    return Prepared(concrete, context, protected, timeout_seconds(task))


def finish(
    bind: Engine | Connection,
    item: WorkItem,
    outcome: TryOutcome,
    *,
    policy: RetryPolicy,
    actor: str,
    clock: Clock = SYSTEM_CLOCK,
) -> TaskInstanceState:
    """Record the outcome in one transaction; returns the state the instance is now in."""
    from dagrunner.execution import recording

    with transaction(bind) as conn:
        return recording.finish_try(conn, item, outcome, policy=policy, now=clock.now(), actor=actor)


def audit_callback_errors(
    bind: Engine | Connection, item: WorkItem, errors: list[str], *, actor: str, clock: Clock = SYSTEM_CLOCK
) -> None:
    if not errors:
        return
    from dagrunner.execution import recording

    with transaction(bind) as conn:
        now = clock.now()
        for error in errors:
            recording.record_callback_error(conn, item, error, actor=actor, now=now)


@contextmanager
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A write transaction on a pooled connection of an Engine, or on a Connection the caller keeps open
    across tries (the local worker does: no pool checkout per transaction, and on PostgreSQL no
    liveness ping either)."""
    from sqlalchemy import Connection

    if isinstance(bind, Connection):
        with bind.begin():
            yield bind
    else:
        with bind.begin() as conn:
            yield conn


def upstream_of(task: RunnableTask | None) -> frozenset[str]:
    """The upstream task ids whose XComs `begin` pre-fetches for a try of `task` (None: no task); an undo
    task's (`compensate_with`) is the step it undoes, whose result is its `context["compensation"]`."""
    if task is None:
        return frozenset()
    step = getattr(task, "compensates", None)
    return frozenset(task.upstream_task_ids) | ({step} if step else set())


def policy_of(task: RunnableTask | None) -> RetryPolicy:
    return RetryPolicy.from_task(task) if task is not None else RetryPolicy.none()


def timeout_seconds(task: RunnableTask) -> float | None:
    value = getattr(task, "execution_timeout", None)
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def write_header(fd: int, item: WorkItem, *, pid: int, now: datetime | None = None) -> None:
    when = (now or utcnow()).isoformat(timespec="milliseconds")
    write_line(
        fd,
        f"[dagrunner] {when} try {item.try_number} of {item.key.label()} on {HOSTNAME} "
        f"(pid {pid}, executor process {os.getpid()})",
    )


def write_result(fd: int, item: WorkItem, state: TaskInstanceState, outcome: TryOutcome) -> None:
    detail = f": {outcome.error}" if outcome.error else ""
    write_line(fd, f"[dagrunner] {utcnow().isoformat(timespec='milliseconds')} try {item.try_number} "
                   f"recorded as {state}{detail}")  # fmt: skip


def run_here(
    task: RunnableTask,
    item: WorkItem,
    start: TryStart,
    masker: SecretMasker,
    loader: XComLoader | None,
    services: RunServices | None = None,
    secrets: SecretsBackend | None = None,
) -> tuple[TryOutcome, Prepared | None]:
    """Prepare and run the try in this process (output already pointing at its log); `services` answer
    what the task asks about other DAGs' runs (`execution.run_services`); `secrets`: the metadata DB's
    connections and variables as this process reaches them (None: the environment only)."""
    try:
        prepared = prepare(task, item, start, masker, loader, services=services, secrets=secrets)
    except Exception as exc:  # noqa: BLE001 - e.g. a mapped input that does not fit: the try fails
        print_traceback(exc)
        return TryOutcome.failed(summarize(exc, masker)), None
    outcome = run_task(
        prepared.task,
        prepared.context,
        timeout_s=prepared.timeout_s,
        masker=masker,
        protected=prepared.protected,
    )
    return outcome, prepared


def load_failure(error: str) -> TryOutcome:
    """The outcome of a try whose task could not be loaded (the error is also printed to its log)."""
    print(f"[dagrunner] {error}", file=sys.stderr)
    return TryOutcome.failed(error)
