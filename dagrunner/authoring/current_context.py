"""`get_current_context()` and `Context`: the run context of the try running in this thread, for code that
was not handed it (a helper a @task calls, a library function), as Airflow's `get_current_context`.

The runner sets it for the span of one try (`running_context`), around rendering and `execute`; outside a
try, asking for it is a `NoCurrentContextError` (a RuntimeError, as Airflow raises). It is kept in a
context variable, so two tries running at once in one process never see each other's; a thread the task
starts itself (a thread pool) has a fresh context, and gets the process's one running try, as in Airflow,
where the context is process-wide. With several tries running in the process such a thread gets an error
rather than a guess.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypedDict

from dagrunner.errors import NoCurrentContextError

_CURRENT: ContextVar[tuple[Mapping[str, Any], ...]] = ContextVar("dagrunner_current_context", default=())
_RUNNING: list[Mapping[str, Any]] = []  # every try running in this process (appended and removed under the GIL)


class Context(TypedDict, total=False):
    """The type of the run context a task receives (`def execute(self, context: Context)`), Airflow's
    `Context`. A plain dict at run time; the keys are listed in `authoring/context_keys.py` (DESIGN.md,
    "Template context"), typed loosely here because their values come from the execution layer."""

    conf: Any
    dag: Any
    dag_run: Any
    data_interval_end: Any
    data_interval_start: Any
    ds: str
    ds_nodash: str
    exception: BaseException | None
    inlet_events: Any
    inlets: list[Any]
    logical_date: Any
    macros: Any
    map_index: int
    outlet_events: Any
    outlets: list[Any]
    params: dict[str, Any]
    prev_data_interval_end_success: Any
    prev_data_interval_start_success: Any
    prev_start_date_success: Any
    run_id: str
    task: Any
    task_instance: Any
    task_reschedule_count: int
    templates_dict: dict[str, Any] | None
    ti: Any
    triggering_asset_events: Any
    ts: str
    ts_nodash: str
    ts_nodash_with_tz: str
    var: Any


def get_current_context() -> Context:
    """The context of the try running now (the same dict `execute` and the task's callable receive)."""
    stack = _CURRENT.get() or tuple(_RUNNING[-1:] if len(_RUNNING) == 1 else ())
    if not stack:
        raise NoCurrentContextError(
            "get_current_context() was called outside a running task: it works only while a task's "
            "execute() (or its @task function) runs; pass the context in from there instead"
        )
    context: Context = stack[-1]  # type: ignore[assignment]
    return context


@contextmanager
def running_context(context: Mapping[str, Any]) -> Iterator[None]:
    """Make `context` what `get_current_context()` returns until the block ends (the runner's side)."""
    token = _CURRENT.set((*_CURRENT.get(), context))
    _RUNNING.append(context)
    try:
        yield
    finally:
        _RUNNING.remove(context)
        _CURRENT.reset(token)
