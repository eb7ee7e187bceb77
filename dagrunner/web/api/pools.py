"""/api/v1 endpoints: pools: slots shared by every task that names one, and their circuit breakers
(`dagrunner pools list|set|delete`). Changes go through `scheduling.pools`, audited as from the CLI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from dagrunner.web.deps import Operator, PageArgs, Viewer, Web
from dagrunner.web.inputs import NO_NUL
from dagrunner.web.pages import Page

router = APIRouter(tags=["pools"])

MAX_INT = 2**31 - 1
PoolName = Annotated[str, Path(min_length=1, max_length=256, pattern=NO_NUL, description="The pool's name.")]


class Breaker(BaseModel):
    state: str | None
    consecutive_failures: int
    threshold: int
    cooldown_s: float
    open_until: str | None


class PoolItem(BaseModel):
    """A pool as `pools list --json` prints it."""

    name: str
    slots: int
    used: int
    queued: int
    scheduled: int
    open_slots: int
    description: str | None
    breaker: Breaker | None


class PoolValues(BaseModel):
    """What to set; a value left out (null) stays as the pool has it. A new pool needs `slots`."""

    slots: Annotated[int | None, Field(ge=1, le=MAX_INT)] = None
    description: Annotated[str | None, Field(max_length=10_000, pattern=NO_NUL)] = None
    breaker_failures: Annotated[int | None, Field(ge=1, le=MAX_INT, description="Open after N failed tries.")] = None
    breaker_cooldown_s: Annotated[float | None, Field(gt=0, le=10**9, allow_inf_nan=False)] = None
    no_breaker: bool = False


class ValueChange(BaseModel):
    old: Any
    new: Any


class PoolChanged(BaseModel):
    """What PUT did (`pools set --json`), and the pool as it is now."""

    pool: str
    created: bool
    changed: dict[str, ValueChange]
    item: PoolItem


def _pool(session: Any, name: str) -> dict[str, Any]:
    from dagrunner.persistence.views import pool_views

    return next(p.to_json() for p in pool_views(session) if p.name == name)


@router.get("/pools", response_model=Page[PoolItem])
def list_pools(_user: Viewer, state: Web, paging: PageArgs) -> dict[str, Any]:
    """Every pool by name: slots, slots in use, waiting instances, and its circuit breaker."""
    from dagrunner.persistence.views import pool_views

    with state.read() as session:
        rows = [p.to_json() for p in pool_views(session)]
    return paging.page(rows[paging.offset : paging.offset + paging.limit], len(rows))


@router.put(
    "/pools/{name}", response_model=PoolChanged, responses={201: {"model": PoolChanged, "description": "Created"}}
)
def set_pool(name: PoolName, body: PoolValues, user: Operator, state: Web, response: Response) -> dict[str, Any]:
    """Create pool `name` (201; needs slots) or change the values given (200); audited pool.created/updated."""
    from dagrunner.scheduling.pools import set_pool as set_pool_in_db
    from dagrunner.settings import PoolSpec

    spec = PoolSpec(name, body.slots, body.description, body.breaker_failures, body.breaker_cooldown_s)
    with state.write() as session:
        change = set_pool_in_db(session, spec, no_breaker=body.no_breaker, actor=user.actor, now=state.now())
        item = _pool(session, name)
    response.status_code = 201 if change.created else 200
    return {"pool": change.name, "created": change.created, "item": item,
            "changed": {k: {"old": old, "new": new} for k, (old, new) in change.changed.items()}}  # fmt: skip


@router.delete("/pools/{name}", status_code=204)
def delete_pool(name: PoolName, user: Operator, state: Web) -> Response:
    """Delete a pool (not default_pool, nor one a queued or running try holds: 400); audited pool.deleted."""
    from dagrunner.scheduling.pools import delete_pool as delete_pool_in_db

    with state.write() as session:
        delete_pool_in_db(session, name, actor=user.actor, now=state.now())
    return Response(status_code=204)
