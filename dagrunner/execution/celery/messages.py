"""What crosses the broker, as JSON: a try to run (`TryMessage`), a try's end (`EventMessage`), a kill.

Broker messages are untrusted input (anyone who can publish to the broker can write one): they are JSON,
never pickle, and `decode_*` checks every field's type and shape before anything is built from them. A
message that fails the check is refused with `MessageError` and runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagrunner.errors import ExecutionError
from dagrunner.execution.base import RunFacts, TaskKey, TryEvent, WorkItem

#: The Celery task name of "run this try" (the worker registers it; the executor sends it).
RUN_TRY_TASK = "dagrunner.run_try"
#: The version of the message shape; a worker refuses a version it does not know.
VERSION = 1
#: The exchange every worker binds a queue of its own to, for kill requests.
CONTROL_EXCHANGE = "dagrunner.control"
_MAX_TEXT = 10_000
_EVENT_KINDS = ("started", "finished", "lost")


class MessageError(ExecutionError):
    """A broker message that is not a well-formed dagrunner message."""


@dataclass(frozen=True)
class TryMessage:
    """A try, where to report on it, and the DAG file's content hash the scheduler has (None: unknown)."""

    item: WorkItem
    reply_to: str
    file_hash: str | None


def encode_try(item: WorkItem, *, reply_to: str, file_hash: str | None) -> dict[str, Any]:
    run = item.run
    return {
        "v": VERSION,
        "key": _key(item.key),
        "try_number": item.try_number,
        "fileloc": item.fileloc,
        "run": {
            "run_type": run.run_type,
            "logical_date": run.logical_date.isoformat(),
            "data_interval_start": run.data_interval_start.isoformat(),
            "data_interval_end": run.data_interval_end.isoformat(),
            "run_after": run.run_after.isoformat(),
            "conf": run.conf,
        },
        "queue": item.queue,
        "priority": item.priority,
        "pool_slots": item.pool_slots,
        "queued_by_job_id": item.queued_by_job_id,
        "inlets": list(item.inlets),
        "reply_to": reply_to,
        "file_hash": file_hash,
    }


def decode_try(data: object) -> TryMessage:
    """The try a message asks for; MessageError when it is not exactly the shape `encode_try` makes."""
    body = _dict(data, "message")
    if body.get("v") != VERSION:
        raise MessageError(f"unknown message version {body.get('v')!r} (this worker speaks {VERSION})")
    run = _dict(body.get("run"), "run")
    conf = run.get("conf")
    if not isinstance(conf, dict):
        raise MessageError("run.conf must be an object")
    job = body.get("queued_by_job_id")
    if job is not None and not _is_int(job):
        raise MessageError("queued_by_job_id must be an integer or null")
    inlets = body.get("inlets")
    if not isinstance(inlets, list) or not all(isinstance(n, str) for n in inlets):
        raise MessageError("inlets must be a list of strings")
    file_hash = body.get("file_hash")
    if file_hash is not None and (not isinstance(file_hash, str) or len(file_hash) > 128):
        raise MessageError("file_hash must be a string or null")
    item = WorkItem(
        key=_decode_key(body.get("key")),
        try_number=_int(body, "try_number", minimum=1),
        fileloc=_text(body, "fileloc"),
        run=RunFacts(
            run_type=_text(run, "run_type"),
            logical_date=_date(run, "logical_date"),
            data_interval_start=_date(run, "data_interval_start"),
            data_interval_end=_date(run, "data_interval_end"),
            run_after=_date(run, "run_after"),
            conf=conf,
        ),
        queue=_text(body, "queue"),
        priority=_int(body, "priority"),
        pool_slots=_int(body, "pool_slots", minimum=1),
        queued_by_job_id=job,
        inlets=tuple(inlets),
    )
    return TryMessage(item, _text(body, "reply_to"), file_hash)


def encode_event(event: TryEvent) -> dict[str, Any]:
    return {"v": VERSION, "key": _key(event.key), "try_number": event.try_number, "kind": event.kind,
            "state": event.state, "detail": event.detail[:_MAX_TEXT]}  # fmt: skip


def decode_event(data: object) -> TryEvent:
    body = _dict(data, "event")
    kind = body.get("kind")
    if kind not in _EVENT_KINDS:
        raise MessageError(f"event kind must be one of {', '.join(_EVENT_KINDS)}")
    state = body.get("state")
    if state is not None and not isinstance(state, str):
        raise MessageError("event state must be a string or null")
    detail = body.get("detail", "")
    if not isinstance(detail, str):
        raise MessageError("event detail must be a string")
    return TryEvent(_decode_key(body.get("key")), _int(body, "try_number", minimum=1), kind, state, detail)


def encode_kill(key: TaskKey, try_number: int, reason: str) -> dict[str, Any]:
    return {"v": VERSION, "kill": _key(key), "try_number": try_number, "reason": reason[:_MAX_TEXT]}


def decode_kill(data: object) -> tuple[TaskKey, int, str]:
    body = _dict(data, "kill request")
    return _decode_key(body.get("kill")), _int(body, "try_number", minimum=1), _text(body, "reason")


# --- checks --------------------------------------------------------------------------------------------


def _key(key: TaskKey) -> dict[str, Any]:
    return {"dag_id": key.dag_id, "run_id": key.run_id, "task_id": key.task_id, "map_index": key.map_index}


def _decode_key(data: object) -> TaskKey:
    body = _dict(data, "key")
    return TaskKey(
        _text(body, "dag_id"), _text(body, "run_id"), _text(body, "task_id"), _int(body, "map_index", minimum=-1)
    )


def _dict(data: object, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MessageError(f"{what} must be a JSON object, not {type(data).__name__}")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(body: dict[str, Any], name: str, *, minimum: int | None = None) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        raise MessageError(f"{name} must be an integer" + (f" >= {minimum}" if minimum is not None else ""))
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or "\0" in value:
        raise MessageError(f"{name} must be a non-empty string")
    return value


def _date(body: dict[str, Any], name: str) -> datetime:
    text = _text(body, name)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MessageError(f"{name} is not an ISO date: {text!r}") from exc
    if value.tzinfo is None:
        raise MessageError(f"{name} must carry a time zone")
    return value
