"""/api/v1 endpoints: jobs: the processes that registered themselves (schedulers, triggerers, backfills,
workers) and their heartbeats (`dagrunner jobs list`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dagrunner.web.deps import PageArgs, Viewer, Web
from dagrunner.web.pages import Page

router = APIRouter(tags=["jobs"])


class JobItem(BaseModel):
    """A job as `jobs list --json` prints it; `heartbeat_age_s` only while it runs."""

    id: int
    type: str = Field(description="scheduler, triggerer, backfill, dags_test, ...")
    host: str
    pid: int
    state: str
    started_at: str | None
    latest_heartbeat: str | None
    heartbeat_age_s: float | None
    ended_at: str | None


@router.get("/jobs", response_model=Page[JobItem])
def list_jobs(
    _user: Viewer,
    state: Web,
    paging: PageArgs,
    all: Annotated[bool, Query(description="Also jobs that ended more than an hour ago.")] = False,
) -> dict[str, Any]:
    """Running jobs and those ended in the last hour (every one with all=true), newest first."""
    from dagrunner.persistence.views import job_views

    with state.read() as session:
        rows = [j.to_json() for j in job_views(session, state.now(), include_all=all)]
    return paging.page(rows[paging.offset : paging.offset + paging.limit], len(rows))
