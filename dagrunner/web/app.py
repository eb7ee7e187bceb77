"""The FastAPI app: the REST API under /api/v1, the UI's static files, /health, errors as JSON."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from dagrunner import __version__
from dagrunner.errors import (
    DagNotFoundError,
    DagRunnerError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    DuplicateRunError,
    IllegalTransitionError,
    NotFoundError,
    TaskNotFoundError,
)
from dagrunner.settings import Settings
from dagrunner.web.api import ROUTER_MODULES
from dagrunner.web.deps import Viewer, WebState
from dagrunner.web.security import SECURITY_HEADERS, SecurityHeaders
from dagrunner.web.ui import mount_ui

API_PREFIX = "/api/v1"

#: Our errors as HTTP statuses: the first class that matches wins; any other DagRunnerError is a 400.
_STATUS: tuple[tuple[type[DagRunnerError], int], ...] = (
    (NotFoundError, 404),
    (DagNotFoundError, 404),
    (TaskNotFoundError, 404),
    (DuplicateRunError, 409),
    (IllegalTransitionError, 409),
    (DatabaseLockedError, 503),
    (DatabaseUnavailableError, 503),
)


def status_for(exc: DagRunnerError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)


def create_app(
    settings: Settings, *, engine: Engine | None = None, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The api-server's app on `settings`' metadata DB (migrated on first use, as the CLI does)."""
    if engine is None:
        from dagrunner.persistence.engine import make_engine
        from dagrunner.persistence.schema import ensure_schema

        engine = make_engine(settings.db_url, busy_timeout=settings.sqlite_busy_timeout)
        ensure_schema(engine, auto_init=True)
    from dagrunner.loading.plugins import load_plugins

    load_plugins(settings.plugins_folder)  # custom timetables, which the stored DAGs name (next run, detail)
    state = WebState(settings, engine) if clock is None else WebState(settings, engine, clock)
    app = FastAPI(
        title="dagrunner",
        version=__version__,
        openapi_url=None,  # served below, behind the viewer role like every endpoint but /health
        docs_url=None,  # Swagger UI loads its scripts from a CDN and inline: our CSP forbids both
        redoc_url=None,
    )
    app.state.web = state

    @app.exception_handler(DagRunnerError)
    async def our_error(_request: Request, exc: DagRunnerError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette answers an unhandled exception from its outermost middleware, outside SecurityHeaders:
        # this answer carries the headers itself, and says nothing of the exception (uvicorn logs it).
        return JSONResponse({"detail": "internal error; the api-server's log has the traceback"},
                            status_code=500, headers=dict(SECURITY_HEADERS))  # fmt: skip

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    def openapi(_user: Viewer) -> dict[str, Any]:
        return app.openapi()

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Whether the server is up; the only endpoint that needs no credentials."""
        return {"status": "ok", "version": __version__}

    for name in ROUTER_MODULES:
        module = importlib.import_module(f"dagrunner.web.api.{name}")
        app.include_router(module.router, prefix=API_PREFIX)
    mount_ui(app)
    app.add_middleware(SecurityHeaders)  # type: ignore[arg-type]
    return app
