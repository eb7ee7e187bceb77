"""The `hitl_request` table's reads and writes, shared by the worker (a request is made, escalated), the
scheduler (timeouts, escalation moments) and the answering commands. No state changes here: those go
through `audit.transition()` in the callers, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from dagrunner.persistence.models import HITLRequest, TaskInstance
from dagrunner.states import TaskInstanceState

Db = Session | Connection

_T = cast(Table, HITLRequest.__table__)
_TI = cast(Table, TaskInstance.__table__)


class Request(NamedTuple):
    """One request as the rules and the CLI read it."""

    id: int
    ti_id: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    body: str | None
    options: list[str]
    defaults: list[str] | None
    multiple: bool
    params: dict[str, Any]
    assigned_users: list[str]
    created_at: datetime
    timeout_at: datetime | None
    escalate_at: datetime | None
    escalated_at: datetime | None
    response: dict[str, Any] | None
    responded_by: str | None
    responded_at: datetime | None
    comment: str | None


_COLUMNS = tuple(_T.c[name] for name in Request._fields)


def describe_wait(users: Sequence[str], since: datetime | None, timeout_at: datetime | None) -> str:
    """`waiting for approval from maria, bob since T (times out at T2)`: what `tasks why` and the audit say."""
    who = ", ".join(users) if users else "anyone"
    text = f"waiting for approval from {who}"
    if since is not None:
        text += f" since {since.isoformat(timespec='seconds')}"
    if timeout_at is not None:
        text += f" (times out at {timeout_at.isoformat(timespec='seconds')})"
    return text


def request_of(db: Db, ti_id: int, *, lock: bool = False) -> Request | None:
    query = select(*_COLUMNS).where(_T.c.ti_id == ti_id)
    row = db.execute(query.with_for_update() if lock else query).first()
    return None if row is None else Request(*row)


def replace_request(db: Db, ti_id: int, names: Mapping[str, Any], asked: Mapping[str, Any], now: datetime) -> Request:
    """The instance's request becomes `asked` (a task's `request()`), made at `now`: an earlier one (the
    instance was cleared since) is dropped."""
    db.execute(delete(_T).where(_T.c.ti_id == ti_id))
    timeout_s, escalate_s = asked.get("timeout_s"), asked.get("escalate_after_s")
    values = {
        **names,
        "ti_id": ti_id,
        "subject": str(asked["subject"]),
        "body": asked.get("body"),
        "options": list(asked["options"]),
        "defaults": asked.get("defaults"),
        "multiple": bool(asked.get("multiple")),
        "params": dict(asked.get("params") or {}),
        "assigned_users": list(asked.get("assigned_users") or []),
        "created_at": now,
        "timeout_at": now + timedelta(seconds=timeout_s) if timeout_s else None,
        "escalate_at": now + timedelta(seconds=escalate_s) if escalate_s else None,
    }
    db.execute(insert(_T).values(values))
    found = request_of(db, ti_id)
    assert found is not None
    return found


def write_response(db: Db, request_id: int, response: dict[str, Any], *, by: str, comment: str | None,
                   now: datetime) -> bool:  # fmt: skip
    """Record the answer, once: False when the request was answered meanwhile (nothing written)."""
    query = (
        update(_T)
        .where(_T.c.id == request_id, _T.c.responded_at.is_(None))
        .values(response=response, responded_by=by, responded_at=now, comment=comment)
    )
    return bool(getattr(db.execute(query), "rowcount", 0))


def mark_escalated(db: Db, request_id: int, now: datetime) -> bool:
    query = update(_T).where(_T.c.id == request_id, _T.c.escalated_at.is_(None)).values(escalated_at=now)
    return bool(getattr(db.execute(query), "rowcount", 0))


def _open_and_deferred() -> Any:
    return and_(_T.c.responded_at.is_(None), _TI.c.id == _T.c.ti_id, _TI.c.state == TaskInstanceState.DEFERRED)


def due_requests(db: Db, now: datetime) -> list[Request]:
    """Unanswered requests of deferred instances whose timeout or escalation moment has come."""
    escalation_due = and_(_T.c.escalate_at <= now, _T.c.escalated_at.is_(None))
    query = (
        select(*_COLUMNS)
        .select_from(_T.join(_TI, _TI.c.id == _T.c.ti_id))
        .where(_open_and_deferred(), or_(_T.c.timeout_at <= now, escalation_due))
        .order_by(_T.c.id)
    )
    return [Request(*row) for row in db.execute(query)]


def next_due(db: Db) -> datetime | None:
    """The earliest timeout or pending escalation moment of an unanswered request of a deferred instance."""
    pending = _T.c.escalated_at.is_(None)
    timeout = db.execute(select(func.min(_T.c.timeout_at)).where(_open_and_deferred())).scalar()
    escalate = db.execute(select(func.min(_T.c.escalate_at)).where(_open_and_deferred(), pending)).scalar()
    found = [t for t in (timeout, escalate) if t is not None]
    return min(found) if found else None
