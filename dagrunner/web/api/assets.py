"""/api/v1 endpoints: assets: what DAGs produce and are scheduled on, their events, and sending one by hand
(`dagrunner assets list|events|emit`). An event sent here goes through `record_asset_event`, the one way
every event enters, so it creates the asset-triggered runs it causes and is audited (`asset.event`).

Assets are the ones the scheduler registered when it parsed the DAG files: unlike `assets emit`, the
api-server never imports DAG files itself."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from dagrunner.errors import UnknownAssetError
from dagrunner.web.deps import Operator, PageArgs, Viewer, Web
from dagrunner.web.inputs import NO_NUL, check_json
from dagrunner.web.pages import Page
from dagrunner.web.redact import redact

router = APIRouter(tags=["assets"])

#: A name or a URI (which may hold slashes: `s3://bucket/key`).
AssetName = Annotated[str, Path(min_length=1, max_length=1500, pattern=NO_NUL, description="The asset's name or URI.")]


class AssetItem(BaseModel):
    """An asset or alias (`assets list --json`): who consumes, produces and reads it, its watchers, events."""

    name: str
    uri: str
    group: str
    consumers: list[str]
    producers: list[str]
    readers: list[str]
    watchers: list[dict[str, Any]]
    events: int
    last_event: str | None
    kind: str


class AssetEventItem(BaseModel):
    """One event (`assets events --json`), extra redacted; `triggered_runs`: how many runs it helped create."""

    id: int
    asset: str
    uri: str
    timestamp: str
    extra: dict[str, Any]
    source: dict[str, Any]
    alias: str | None
    triggered_runs: int


class Emit(BaseModel):
    extra: Annotated[dict[str, Any], Field(max_length=100, description="The event's extra, a JSON object.")] = {}


class RunRef(BaseModel):
    dag_id: str
    run_id: str


class Emitted(BaseModel):
    """The event recorded and the asset-triggered runs it created (`assets emit --json`)."""

    id: int
    asset: str
    created_runs: list[RunRef]


@router.get("/assets", response_model=Page[AssetItem])
def list_assets(_user: Viewer, state: Web, paging: PageArgs) -> dict[str, Any]:
    """Every active asset (then alias) by name, with its event count and last event time."""
    from dagrunner.persistence.assets import list_assets as read

    with state.read() as session:
        views = [v.to_json() for v in read(session)]
    items = [{**v, "watchers": redact(v["watchers"])} for v in views[paging.offset : paging.offset + paging.limit]]
    return paging.page(items, len(views))


def _event_count(session: Any, name: str) -> int:
    from dagrunner.persistence.models import Asset, AssetEvent

    query = (
        select(func.count())
        .select_from(AssetEvent)
        .join(Asset, Asset.id == AssetEvent.asset_id)
        .where((Asset.name == name) | (Asset.uri == name))
    )
    return int(session.scalar(query) or 0)


@router.get("/assets/{name:path}/events", response_model=Page[AssetEventItem])
def list_events(name: AssetName, _user: Viewer, state: Web, paging: PageArgs) -> dict[str, Any]:
    """The asset's events (by name or URI), newest first; 404 for an asset no DAG declares."""
    from dagrunner.persistence.assets import asset_exists
    from dagrunner.persistence.assets import list_events as read

    with state.read() as session:
        if not asset_exists(session, name):
            raise HTTPException(404, f"no asset {name!r}; GET /api/v1/assets lists those the DAG files declare")
        rows = read(session, name, limit=paging.offset + paging.limit)[paging.offset :]
        total = _event_count(session, name)
    return paging.page([{**r.to_json(), "extra": redact(r.extra)} for r in rows], total)


@router.post("/assets/{name:path}/events", response_model=Emitted, status_code=201)
def emit(name: AssetName, body: Emit, user: Operator, state: Web) -> dict[str, Any]:
    """Record an event of the asset now (as `assets emit`) and create the asset-triggered runs it causes."""
    from dagrunner.execution.asset_events import record_asset_event

    extra = check_json(body.extra, "extra")
    try:
        with state.write() as session:
            done = record_asset_event(session, name, extra=extra, source={"kind": "api", "user": user.username},
                                      actor=user.actor, when=state.now())  # fmt: skip
    except UnknownAssetError as exc:
        raise HTTPException(404, str(exc)) from None
    assert done is not None  # no dedupe key: always recorded
    runs = [{"dag_id": d, "run_id": r} for d, r in done.created_runs]
    return {"id": done.id, "asset": done.asset, "created_runs": runs}
