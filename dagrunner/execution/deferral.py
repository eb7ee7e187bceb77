"""A human-in-the-loop task's wait, recorded where its try is recorded (`recording.finish_try`).

The try process only knows that the task raised `DeferTask` with what to ask (a `TryOutcome` in state
`deferred` carrying the request). Here, in the same transaction as `running -> deferred`:

- the columns of the wait: `max_tries + 1` (waiting uses no retry, as a sensor's reschedule), the
  `waiting_since` of the first ask (kept across an escalation), and `next_method` / `next_kwargs`
  cleared (consumed by this try);
- a first ask writes the `hitl_request` row (audited `hitl.requested`); an escalation try (woken by the
  scheduler at `escalate_at`, which stamped `escalated_at`) audits `hitl.escalated` with what its
  `on_escalate` callables raised.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from dagrunner.execution.base import WorkItem
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.hitl import describe_wait, replace_request, request_of
from dagrunner.persistence.models import TaskInstance

if TYPE_CHECKING:
    from dagrunner.execution.runner import TryOutcome

Db = Session | Connection
_TI = cast(Table, TaskInstance.__table__)


def wait_values(db: Db, item: WorkItem, outcome: TryOutcome, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """(columns, audit detail) of `running -> deferred` for this try's outcome."""
    asked = dict(outcome.defer or {})
    key = item.key
    row = db.execute(
        select(_TI.c.id, _TI.c.max_tries, _TI.c.waiting_since).where(
            _TI.c.dag_id == key.dag_id, _TI.c.run_id == key.run_id, _TI.c.task_id == key.task_id,
            _TI.c.map_index == key.map_index,
        )
    ).first()  # fmt: skip
    if row is None:  # the instance is gone: the fenced transition finds nothing to change either
        return {}, {"waiting_for": "nothing (the instance is gone)"}
    ti_id, max_tries, waiting_since = row
    escalation = bool(asked.get("escalation"))
    since = (waiting_since or now) if escalation else now
    if escalation:
        request = request_of(db, ti_id)
        users = request.assigned_users if request else []
        timeout_at = request.timeout_at if request else None
    else:
        users = list(asked.get("assigned_users") or [])
        timeout_s = asked.get("timeout_s")
        timeout_at = now + timedelta(seconds=timeout_s) if timeout_s else None
    values = {"max_tries": max_tries + 1, "waiting_since": since, "next_method": None, "next_kwargs": None,
              "next_try_at": None}  # fmt: skip
    detail = {"waiting_for": describe_wait(users, since, timeout_at), "escalation": escalation}
    return values, detail


def record_request(db: Db, ti_id: int, item: WorkItem, outcome: TryOutcome, *, actor: str, now: datetime) -> None:
    """Write the request of a first ask, or audit an escalation (module docstring)."""
    asked = dict(outcome.defer or {})
    key = item.key
    names: dict[str, Any] = {
        "dag_id": key.dag_id,
        "run_id": key.run_id,
        "task_id": key.task_id,
        "map_index": key.map_index,
    }
    if asked.get("escalation"):
        errors = list(asked.get("errors") or [])
        request = request_of(db, ti_id)
        detail: dict[str, Any] = {"assigned_users": request.assigned_users if request else [], "errors": errors}
        reason = "escalated: on_escalate ran" + (f"; {len(errors)} raised" if errors else "")
        record_event(db, "hitl.escalated", actor=actor, when=now, try_number=item.try_number, reason=reason,
                     detail=detail, **names)  # fmt: skip
        return
    request = replace_request(db, ti_id, names, asked, now)
    detail = {
        "subject": request.subject,
        "options": request.options,
        "assigned_users": request.assigned_users,
        "timeout_at": request.timeout_at.isoformat() if request.timeout_at else None,
        "escalate_at": request.escalate_at.isoformat() if request.escalate_at else None,
    }
    record_event(db, "hitl.requested", actor=actor, when=now, try_number=item.try_number,
                 reason=describe_wait(request.assigned_users, now, request.timeout_at), detail=detail, **names)  # fmt: skip
