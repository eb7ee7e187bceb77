"""/api/v1 endpoints: audit: who changed what, when and why, newest first (`dagrunner audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from dagrunner.web.audit_search import AuditFilter, audit_page
from dagrunner.web.deps import PageArgs, Viewer, Web
from dagrunner.web.inputs import MAX_TEXT, NO_NUL, utc
from dagrunner.web.pages import Page

router = APIRouter(tags=["audit"])


class AuditRecord(BaseModel):
    """One audit record, as `dagrunner audit --json` prints it (detail redacted)."""

    ts: str
    actor: str
    event: str
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    map_index: int | None
    try_number: int | None
    old_state: str | None
    new_state: str | None
    reason: str | None
    detail: dict[str, Any] | None


def _text(description: str) -> Any:
    return Query(max_length=MAX_TEXT, pattern=NO_NUL, description=description)


@router.get("/audit", response_model=Page[AuditRecord])
def list_audit(
    _user: Viewer,
    state: Web,
    paging: PageArgs,
    dag_id: Annotated[str | None, _text("Only this DAG.")] = None,
    run_id: Annotated[str | None, _text("Only this run.")] = None,
    task_id: Annotated[str | None, _text("Only this task.")] = None,
    event: Annotated[
        str | None, _text("This event (task.state), or every one it begins when it ends in a dot.")
    ] = None,
    actor: Annotated[str | None, _text("Only what this actor did (api:<user>, scheduler@host, ...).")] = None,
    since: Annotated[
        datetime | None, Query(description="Only records at or after this ISO time (UTC if naive).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Only records at or before this ISO time (UTC if naive).")
    ] = None,
) -> dict[str, Any]:
    """The audit trail, newest first: every state change and event, filtered."""
    where = AuditFilter(dag_id, run_id, task_id, event, actor, utc(since, "since"), utc(until, "until"))
    with state.read() as session:
        items, total = audit_page(session, where, limit=paging.limit, offset=paging.offset)
    return paging.page(items, total)
