"""What a running task may ask of the database about *other* DAGs' runs, without a connection of its own.

Airflow 3's task SDK gives a task's `ti` a few calls that go through its Execution API: the state of a run
(`get_dagrun_state`), how many runs or task instances are in some states (`get_dr_count`, `get_ti_count`)
and, for TriggerDagRunOperator, creating a run. Ours go through a `RunServices`:

- `DbRunServices` (execution.external_runs) answers them on an engine: the inline executor, `tasks test`;
- `PipeRunServices` asks the local worker over the task process's pipe (a task process has no database
  connection, see `forker._xcom_loader`); the worker answers with a `DbRunServices` of its own.

This module imports no SQLAlchemy (lean forkers import it). Every call is a `ServiceCall`: a method name
and keyword arguments, all picklable; errors come back as the dagrunner error that was raised.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from dagrunner.errors import DagRunnerError, ExecutionError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


@dataclass(frozen=True)
class TriggeredRun:
    """The run a `trigger_dag_run` created (or reset)."""

    dag_id: str
    run_id: str
    logical_date: datetime
    reset: bool = False


class RunServices(Protocol):
    def trigger_dag_run(
        self,
        *,
        dag_id: str,
        run_id: str | None,
        logical_date: datetime | None,
        conf: dict[str, Any] | None,
        reset_dag_run: bool,
    ) -> TriggeredRun: ...

    def dagrun_state(self, *, dag_id: str, run_id: str) -> str: ...

    def dr_count(
        self, *, dag_id: str, logical_dates: Sequence[datetime] | None, run_ids: Sequence[str] | None,
        states: Sequence[str] | None,
    ) -> int: ...  # fmt: skip

    def ti_count(
        self, *, dag_id: str, task_ids: Sequence[str] | None, logical_dates: Sequence[datetime] | None,
        run_ids: Sequence[str] | None, states: Sequence[str] | None,
    ) -> int: ...  # fmt: skip


METHODS = frozenset({"trigger_dag_run", "dagrun_state", "dr_count", "ti_count"})


@dataclass(frozen=True, slots=True)
class ServiceCall:
    """Task process -> worker: call `method` of the worker's RunServices with `kwargs`."""

    method: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """Worker -> task process: what the call returned, or the error it raised (`error` set)."""

    value: Any = None
    error: DagRunnerError | None = None


def answer(services: RunServices, call: ServiceCall) -> ServiceAnswer:
    """Run `call` on `services` (the worker's side); an unexpected error becomes an ExecutionError."""
    if call.method not in METHODS:
        return ServiceAnswer(error=ExecutionError(f"unknown service call {call.method!r}"))
    try:
        return ServiceAnswer(getattr(services, call.method)(**call.kwargs))
    except DagRunnerError as exc:
        return ServiceAnswer(error=type(exc)(str(exc)))
    except Exception as exc:  # noqa: BLE001 - the task's call fails with it, not the worker
        return ServiceAnswer(error=ExecutionError(f"{call.method} failed in the worker: {type(exc).__name__}: {exc}"))


class PipeRunServices:
    """RunServices for a task process: each call is sent to the worker and its answer awaited."""

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock  # shared with the XCom loader: one request and its answer at a time

    def _call(self, method: str, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send(ServiceCall(method, kwargs))
            reply = self._conn.recv()
        if not isinstance(reply, ServiceAnswer):
            raise ExecutionError(f"the worker answered a {method} call with {type(reply).__name__}")
        if reply.error is not None:
            raise reply.error
        return reply.value

    def trigger_dag_run(self, **kwargs: Any) -> TriggeredRun:
        return self._call("trigger_dag_run", **kwargs)  # type: ignore[no-any-return]

    def dagrun_state(self, **kwargs: Any) -> str:
        return self._call("dagrun_state", **kwargs)  # type: ignore[no-any-return]

    def dr_count(self, **kwargs: Any) -> int:
        return self._call("dr_count", **kwargs)  # type: ignore[no-any-return]

    def ti_count(self, **kwargs: Any) -> int:
        return self._call("ti_count", **kwargs)  # type: ignore[no-any-return]


class NoRunServices:
    """Where no database is at hand (`tasks test` without one): every call is one clear error."""

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise ExecutionError(
            "this try has no database to ask about other DAGs' runs (`dagrunner tasks test` without a database: "
            "run `dagrunner db migrate`)"
        )

    trigger_dag_run = dagrun_state = dr_count = ti_count = _refuse
