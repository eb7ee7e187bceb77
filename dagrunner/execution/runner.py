"""The one place user code runs: render a task's templates, run it, turn what happened into a TryOutcome.

Every executor calls `run_task` (and then `run_callbacks`) in the process that runs the try, with
stdout/stderr already pointing at the try's log. Nothing here touches the database: the outcome is a
frozen, picklable message that the supervising side records (`execution.recording`).

How a try finishes:
- `execute()` returns: success; the value becomes the `return_value` XCom (None pushes nothing, as in
  Airflow), and with `multiple_outputs` each key of the returned dict is its own XCom as well.
- `SkipTask`: skipped. `FailTask` (and a sensor timeout): failed with no retries (`fail_fast`).
- `RescheduleTask` (a `reschedule` sensor's poke said not yet): `up_for_reschedule`, with the sensor's
  `RescheduleAsk`; the recording side decides on its clock whether that is a wait or a timeout
  (`execution.rescheduling`). Nothing the try pushed is kept: the poke that is done pushes its value.
- `DeferTask` (a human-in-the-loop task waits for a person): `deferred`, carrying what to ask; the
  recording side writes the request and the instance waits with no slot (`execution.deferral`).
- `TaskTimeout` (execution_timeout), any other exception, even `SystemExit`: failed, retried if tries
  remain; the traceback goes to the log, a one-line summary naming the user's file:line to the outcome.
- A value that is not JSON: failed with an XComError naming the task and the type.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import sysconfig
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dagrunner.authoring.current_context import running_context
from dagrunner.authoring.location import is_internal
from dagrunner.errors import (
    DeferTask,
    FailTask,
    RescheduleTask,
    SkipTask,
    TaskTimeout,
    XComError,
)
from dagrunner.execution.asset_context import OutletAssetEvent, OutletEventAccessors
from dagrunner.execution.masking import SecretMasker
from dagrunner.execution.rescheduling import RescheduleAsk
from dagrunner.execution.runnable import Callback, RunnableTask, is_branch, is_short_circuit
from dagrunner.states import TaskInstanceState

OutcomeState = Literal["success", "failed", "skipped", "up_for_reschedule", "deferred"]
RETURN_VALUE = "return_value"
_SUMMARY_MAX = 1000


@dataclass(frozen=True)
class TryOutcome:
    """How one try finished, as the process that ran it saw it (picklable; crosses process boundaries)."""

    state: OutcomeState
    fail_fast: bool = False
    #: One line: exception type, message and the user's file:line ("" on success).
    error: str = ""
    exit_code: int | None = None
    #: XCom key -> JSON-able value to store with the outcome.
    xcoms: Mapping[str, Any] = field(default_factory=dict)
    #: Downstream task ids a branch / short-circuit decided to skip.
    skip_task_ids: tuple[str, ...] = ()
    #: on_execute_callback failures (audited, never change the state).
    callback_errors: tuple[str, ...] = ()
    #: The try ran past its execution_timeout (its leftover processes are then killed).
    timed_out: bool = False
    #: Its executor's shutdown (Ctrl-C, SIGTERM) killed it: it did not fail on its own, so a resumed
    #: backfill runs it again (`task_try.interrupted`).
    interrupted: bool = False
    #: A `reschedule` sensor's "not yet" (state `up_for_reschedule`): how long to wait, and its timeout.
    reschedule: RescheduleAsk | None = None
    #: A human-in-the-loop task's wait (state `deferred`): the request to write (JSON).
    defer: Mapping[str, Any] | None = None
    #: The asset events a successful try of a task with outlets records (#12; empty for every other try).
    asset_events: tuple[OutletAssetEvent, ...] = ()

    @classmethod
    def failed(
        cls,
        error: str,
        *,
        fail_fast: bool = False,
        exit_code: int | None = 1,
        timed_out: bool = False,
        interrupted: bool = False,
    ) -> TryOutcome:
        return cls(
            state="failed",
            error=error,
            fail_fast=fail_fast,
            exit_code=exit_code,
            timed_out=timed_out,
            interrupted=interrupted,
        )


def timeout_message(seconds: float) -> str:
    return f"execution_timeout of {seconds:g}s exceeded"


# --- running a task ----------------------------------------------------------------------------------


def run_task(
    task: RunnableTask,
    context: dict[str, Any],
    *,
    timeout_s: float | None = None,
    masker: SecretMasker | None = None,
    protected: Mapping[str, Any] | None = None,
) -> TryOutcome:
    """Render, run and judge one try of `task` (a concrete, per-try copy) in this process.

    `timeout_s` arms SIGALRM (main thread only) to raise TaskTimeout inside the task; `protected` names
    attributes holding values resolved from XCom that must not be rendered as templates (see
    `context.resolve_task`). On failure `context["exception"]` is set, as Airflow's failure callbacks
    expect.
    """
    masker = masker or SecretMasker()
    pushed = getattr(context.get("ti"), "pushed", None)
    callback_errors: list[str] = []
    try:
        with execution_timeout(timeout_s), running_context(context):
            render_task(task, context, protected or {})
            callback_errors += _call_all(task.on_execute_callback, context, "on_execute_callback", masker)
            result = task.execute(context)
        xcoms = {**(pushed or {}), **_return_xcoms(task, result)}
        skip_ids = _skips(task, result)
    except BaseException as exc:  # noqa: BLE001 - the runner is the boundary: anything a task raises
        return _judge(exc, task, context, masker, timeout_s, pushed or {}, tuple(callback_errors))
    return TryOutcome(
        state="success",
        exit_code=0,
        xcoms=xcoms,
        skip_task_ids=tuple(sorted(skip_ids)),
        callback_errors=tuple(callback_errors),
        asset_events=_outlet_events(task, context),
    )


def _outlet_events(task: RunnableTask, context: Mapping[str, Any]) -> tuple[OutletAssetEvent, ...]:
    """The events the task's outlets record; nothing is looked at for a task without outlets."""
    outlets = getattr(task, "outlets", None)
    if not outlets:
        return ()
    accessors: OutletEventAccessors = context["outlet_events"]
    return accessors.events_for(outlets)


def _judge(
    exc: BaseException,
    task: RunnableTask,
    context: dict[str, Any],
    masker: SecretMasker,
    timeout_s: float | None,
    pushed: Mapping[str, Any],
    callback_errors: tuple[str, ...],
) -> TryOutcome:
    """The outcome of a try that raised `exc` (the module docstring lists the rules)."""
    if isinstance(exc, RescheduleTask):
        print(f"[dagrunner] {exc}", file=sys.stderr)
        ask = RescheduleAsk(exc.poke_interval, exc.timeout, exc.soft_fail)
        return TryOutcome("up_for_reschedule", exit_code=0, callback_errors=callback_errors, reschedule=ask)
    if isinstance(exc, DeferTask):
        print(f"[dagrunner] {exc}", file=sys.stderr)
        return TryOutcome("deferred", exit_code=0, callback_errors=callback_errors, defer=exc.request)
    if isinstance(exc, SkipTask):
        print(f"[dagrunner] task skipped itself: {masker.mask(str(exc))}", file=sys.stderr)
        error = summarize(exc, masker, with_type=False)
        return TryOutcome("skipped", error=error, exit_code=0, xcoms=dict(pushed), callback_errors=callback_errors)
    context["exception"] = exc
    print_traceback(exc)
    if isinstance(exc, TaskTimeout):
        with contextlib.suppress(Exception):
            task.on_kill()
        where = _user_frame(exc)
        error = timeout_message(timeout_s or 0) + (f" (at {where})" if where else "")
        return TryOutcome("failed", error=error, exit_code=1, callback_errors=callback_errors, timed_out=True)
    exit_code = getattr(exc, "exit_code", None)  # e.g. BashCommandError's
    return TryOutcome(
        "failed",
        fail_fast=isinstance(exc, FailTask),
        error=summarize(exc, masker),
        exit_code=exit_code if isinstance(exit_code, int) else 1,
        callback_errors=callback_errors,
    )


def render_task(task: RunnableTask, context: dict[str, Any], protected: Mapping[str, Any]) -> None:
    """Render the task's templated fields; `protected` values (attr or `op_kwargs.<name>`) stay as they are."""
    ti = context.get("ti")
    pull: Callable[[str, str], Any] | None = getattr(ti, "pull_for_render", None)
    op_kwargs_kept = {k.split(".", 1)[1]: v for k, v in protected.items() if k.startswith("op_kwargs.")}
    attrs_kept = {k: v for k, v in protected.items() if not k.startswith("op_kwargs.")}
    holder: Any = task  # "op_kwargs.<name>" is only protected on a task that has op_kwargs (a PythonOperator)
    if op_kwargs_kept:
        holder.op_kwargs = {k: v for k, v in holder.op_kwargs.items() if k not in op_kwargs_kept}
    for name in attrs_kept:
        setattr(task, name, None)
    try:
        task.render_template_fields(context, pull=pull)
    finally:
        if op_kwargs_kept:
            holder.op_kwargs = {**holder.op_kwargs, **op_kwargs_kept}
        for name, value in attrs_kept.items():
            setattr(task, name, value)


def _return_xcoms(task: RunnableTask, result: Any) -> dict[str, Any]:
    """The XComs a return value makes (checked to be JSON), or raise XComError."""
    if result is None or not getattr(task, "do_xcom_push", True):
        return {}
    xcoms: dict[str, Any] = {}
    if getattr(task, "multiple_outputs", False):
        if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
            raise XComError(
                f"task {task.task_id!r} has multiple_outputs=True but returned a {type(result).__name__}; "
                "it must return a dict with string keys"
            )
        for name, value in result.items():
            check_json(value, task_id=task.task_id, key=name)
            xcoms[name] = value
    check_json(result, task_id=task.task_id, key=RETURN_VALUE)
    xcoms[RETURN_VALUE] = result
    return xcoms


def check_json(value: Any, *, task_id: str, key: str) -> None:
    """Raise XComError naming the task, the key and the offending type when `value` is not strict JSON."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise XComError(
            f"task {task_id!r}: XCom {key!r} cannot be stored: {exc} (a {type(value).__name__}); XComs must be "
            "JSON (str, int, float, bool, None, lists, dicts with str keys): convert the value, or set "
            "do_xcom_push=False"
        ) from None


def _skips(task: RunnableTask, result: Any) -> set[str]:
    if is_branch(task):
        return set(task.branches_to_skip(result))
    if is_short_circuit(task):
        return set(task.tasks_to_skip(bool(result)))
    return set()


# --- callbacks ---------------------------------------------------------------------------------------


def run_callbacks(
    task: RunnableTask, state: TaskInstanceState | str, context: dict[str, Any], *, masker: SecretMasker | None = None
) -> list[str]:
    """Run the callbacks for the *recorded* state; return one line per callback that raised.

    success -> on_success_callback, failed -> on_failure_callback, up_for_retry -> on_retry_callback,
    skipped (the task raised SkipTask: only a try that ran is called back) -> on_skipped_callback.
    A raising callback is printed to the log and reported, never re-raised: it must not change the state.
    """
    recorded = TaskInstanceState(state)
    if recorded is TaskInstanceState.SUCCESS:
        name, callbacks = "on_success_callback", task.on_success_callback
    elif recorded is TaskInstanceState.FAILED:
        name, callbacks = "on_failure_callback", task.on_failure_callback
    elif recorded is TaskInstanceState.UP_FOR_RETRY:
        name, callbacks = "on_retry_callback", task.on_retry_callback
    elif recorded is TaskInstanceState.SKIPPED:
        name, callbacks = "on_skipped_callback", task.on_skipped_callback
    else:
        return []
    return _call_all(callbacks, context, name, masker or SecretMasker())


def _call_all(callbacks: Sequence[Callback], context: dict[str, Any], what: str, masker: SecretMasker) -> list[str]:
    errors = []
    for callback in callbacks:
        try:
            callback(context)
        except Exception as exc:  # noqa: BLE001 - a callback never decides the task's outcome
            print(f"[dagrunner] {what} {_callable_name(callback)} raised:", file=sys.stderr)
            print_traceback(exc)
            errors.append(f"{what} {_callable_name(callback)}: {summarize(exc, masker)}")
    return errors


def _callable_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


# --- execution_timeout ---------------------------------------------------------------------------------


def execution_timeout(seconds: float | None) -> contextlib.AbstractContextManager[None]:
    """Raise TaskTimeout in the running code after `seconds` (SIGALRM: only on the main thread).

    Elsewhere (a thread) this does nothing; the local executor's worker also kills the try's process
    group a little later, for code stuck where no Python signal handler can run.
    """
    return alarm(seconds, lambda: TaskTimeout(timeout_message(seconds or 0)))


@contextlib.contextmanager
def alarm(seconds: float | None, make_error: Callable[[], BaseException]) -> Iterator[None]:
    """Raise `make_error()` wherever the code is after `seconds`; a no-op off the main thread or for None."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise make_error()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- error summaries -----------------------------------------------------------------------------------

_LIBRARY_DIRS = tuple(
    {
        os.path.realpath(p) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_path(key))
    }
)


def _user_frame(exc: BaseException) -> str | None:
    """`file:line` of the deepest traceback frame in user code: not dagrunner, and not a library when
    a user frame exists (a ValueError raised inside `json` is blamed on the DAG line that called it)."""
    user = other = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if is_internal(frame.filename):
            continue
        where = f"{frame.filename}:{frame.lineno}"
        other = where
        if not frame.filename.startswith("<") and not os.path.realpath(frame.filename).startswith(_LIBRARY_DIRS):
            user = where
    return user or other


def summarize(exc: BaseException, masker: SecretMasker, *, with_type: bool = True) -> str:
    """`Type: first line of the message (at file:line)`, masked and clipped."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if len(text.splitlines()) > 1:
        first += " ..."
    summary = f"{type(exc).__name__}: {first}" if with_type else first
    where = _user_frame(exc)
    if where and with_type:
        summary += f" (at {where})"
    summary = masker.mask(summary)
    return summary if len(summary) <= _SUMMARY_MAX else summary[: _SUMMARY_MAX - 1] + "…"


def print_traceback(exc: BaseException) -> None:
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    with contextlib.suppress(Exception):
        sys.stderr.flush()
