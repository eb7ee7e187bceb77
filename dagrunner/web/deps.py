"""What every endpoint shares: the app's state (settings, metadata DB, clock), the caller and their role.

Endpoints declare what they need as FastAPI dependencies: `Viewer`, `Operator`, `Admin` (the caller, with at
least that role: 401 without credentials, 403 with too low a role), `Web` (the app's state) and `PageArgs`
(limit/offset). Writes take `Operator` or `Admin`; those dependencies also check the CSRF token when the caller
is a browser session (a bearer token needs none: a browser never sends one by itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dagrunner.roles import Role
from dagrunner.settings import Settings

#: The most items one page of a list returns; `limit` above it is refused (422).
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
#: The header a browser session sends with every write, holding the session's CSRF token.
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "dagrunner_session"


@dataclass
class WebState:
    """What the app was built with; one per app, on `app.state.web`."""

    settings: Settings
    engine: Engine
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: never takes SQLite's write lock (lists, details, logs)."""
        from dagrunner.persistence.engine import session_scope

        with session_scope(self.engine, readonly=True) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        from dagrunner.persistence.engine import session_scope

        with session_scope(self.engine) as session:
            yield session


@dataclass(frozen=True)
class Principal:
    """The caller of a request: who, with which role, and how they proved it ("token" or "session")."""

    username: str
    role: Role
    via: str
    csrf_token: str | None = None  # the session's, for a browser

    @property
    def actor(self) -> str:
        """The audit log's actor for what this caller changes."""
        return f"api:{self.username}"


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def current_user(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <token>` or the session cookie; 401 when neither is valid."""
    from dagrunner.web.auth import authenticate

    principal = authenticate(request, web_state(request))
    if principal is None:
        raise HTTPException(401, "not signed in: log in, or send Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return principal


def require(role: Role) -> Callable[[Request], Principal]:
    """A dependency: the caller, who must have at least `role`; a write by a browser session must also carry
    the session's CSRF token in the X-CSRF-Token header (403 otherwise)."""

    def dependency(request: Request) -> Principal:
        principal = current_user(request)
        if not principal.role.allows(role):
            raise HTTPException(
                403, f"this needs the {role.value} role; {principal.username} is a {principal.role.value}"
            )
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            from dagrunner.web.auth import check_csrf

            check_csrf(request, principal)
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Web = Annotated[WebState, Depends(web_state)]


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int

    def page(self, items: Sequence[Any], total: int) -> dict[str, Any]:
        """The envelope of every list: {"items": [...], "total": N, "limit": L, "offset": O}."""
        return {"items": list(items), "total": total, "limit": self.limit, "offset": self.offset}


def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many items.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Skip this many items first.")] = 0,
) -> Paging:
    return Paging(limit, offset)


PageArgs = Annotated[Paging, Depends(paging)]
