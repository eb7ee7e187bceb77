"""The audit log filtered and paged for the API: the filters of `dagrunner audit` plus task, actor, until.

`persistence.queries.audit_rows` serves the CLI (oldest first, newest N); a browser pages back from the newest
through the whole log, so it needs a total and an offset, which this query gives, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from dagrunner.persistence.models import AuditLog
from dagrunner.persistence.views import AuditView
from dagrunner.web.redact import redact


@dataclass(frozen=True)
class AuditFilter:
    """Each given value narrows the list; `event` ending in "." is a prefix (`watcher.`), as in the CLI."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    event: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.event is not None:
            query = query.where(
                AuditLog.event.startswith(self.event, autoescape=True)
                if self.event.endswith(".")
                else AuditLog.event == self.event
            )
        for column, value in (
            (AuditLog.dag_id, self.dag_id),
            (AuditLog.run_id, self.run_id),
            (AuditLog.task_id, self.task_id),
            (AuditLog.actor, self.actor),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.since is not None:
            query = query.where(AuditLog.ts >= self.since)
        if self.until is not None:
            query = query.where(AuditLog.ts <= self.until)
        return query


def audit_page(session: Session, where: AuditFilter, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Records newest first (`AuditView.to_json`, detail redacted) from `offset`, and how many match in all."""
    total = session.scalar(where.apply(select(func.count()).select_from(AuditLog))) or 0
    rows = session.scalars(where.apply(select(AuditLog)).order_by(AuditLog.id.desc()).limit(limit).offset(offset))
    items = []
    for row in rows:
        data = AuditView.of(row).to_json()
        data["detail"] = redact(data["detail"])
        items.append(data)
    return items, int(total)
